"""The distilled-vs-student-alone ablation a training run leaves in its ``summary.json``.

``edgeiqa distill`` writes ``{"split", "n", "dataset", "teacher": {...}, "student": {...},
"student_only": {...}}``; a benchmark result carries it as ``{"distilled", "student_only", "teacher"}``
(plus where it came from) so a report can show what distillation bought next to what it costs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeiqa.errors import ConfigError

# ridge_floor: frozen ImageNet features + ridge on the same split (``edgeiqa baseline``), the floor a
# trained model must beat to have learned anything beyond ImageNet.
ABLATION_MODELS = ("distilled", "student_only", "teacher", "ridge_floor")
# Each ablation model and the keys it may have: the converted name first, then summary.json's.
_ALIASES = {
    "distilled": ("distilled", "student"),
    "student_only": ("student_only",),
    "teacher": ("teacher",),
    "ridge_floor": ("ridge_floor",),
}
RIDGE_FILE = "baseline_ridge.json"


def ablation_from_summary(summary: Any, source: str) -> dict[str, Any]:
    """The ablation block from a training ``summary.json`` (or an already-converted ablation dict)."""
    if not isinstance(summary, dict):
        raise ConfigError(f"{source}: an ablation summary must be a JSON object")
    models = {}
    for name, aliases in _ALIASES.items():
        value = next((summary[a] for a in aliases if isinstance(summary.get(a), dict)), None)
        if value is not None:
            models[name] = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            interval = value.get("srcc_ci95")
            if isinstance(interval, list) and len(interval) == 2:  # the bootstrap interval summary.json records
                models[name].update(srcc_low=float(interval[0]), srcc_high=float(interval[1]))
    if "distilled" not in models or "student_only" not in models:
        raise ConfigError(
            f"{source}: no 'student' (distilled) and 'student_only' metrics to compare "
            "(expected the summary.json that 'edgeiqa distill' writes after both runs)"
        )
    meta = {k: summary[k] for k in ("split", "n", "dataset", "seed") if k in summary}
    return {**models, **meta, "source": source}


def load_ablation(path: str | Path) -> dict[str, Any]:
    """Read a training run's ``summary.json`` as an ablation block; errors name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: ablation summary not found") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the ablation summary ({exc})") from exc
    ridge = path.parent / RIDGE_FILE
    if isinstance(data, dict) and ridge.is_file():  # the run's frozen-feature floor, on the same split
        try:
            data["ridge_floor"] = json.loads(ridge.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{ridge}: cannot read the ridge floor ({exc})") from exc
    return ablation_from_summary(data, str(path))
