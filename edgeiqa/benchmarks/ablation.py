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

ABLATION_MODELS = ("distilled", "student_only", "teacher")
# Each ablation model and the keys it may have: the converted name first, then summary.json's.
_ALIASES = {"distilled": ("distilled", "student"), "student_only": ("student_only",), "teacher": ("teacher",)}


def ablation_from_summary(summary: Any, source: str) -> dict[str, Any]:
    """The ablation block from a training ``summary.json`` (or an already-converted ablation dict)."""
    if not isinstance(summary, dict):
        raise ConfigError(f"{source}: an ablation summary must be a JSON object")
    models = {}
    for name, aliases in _ALIASES.items():
        value = next((summary[a] for a in aliases if isinstance(summary.get(a), dict)), None)
        if value is not None:
            models[name] = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if "distilled" not in models or "student_only" not in models:
        raise ConfigError(f"{source}: no 'student' (distilled) and 'student_only' metrics to compare "
                          "(expected the summary.json that 'edgeiqa distill' writes after both runs)")
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
    return ablation_from_summary(data, str(path))
