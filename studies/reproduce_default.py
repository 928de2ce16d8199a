"""Same recipe, same quality? A fresh training of the bundled model's recipe against the bundled weights.

    edgeiqa run --config configs/livec.yaml --out RUN        # the preset, from nothing (about an hour here)
    python studies/reproduce_default.py --run RUN [--model eqcnet_lite0_livec] \\
        --out studies/results/default_reproduce.json

Both models score the fresh run's test photos (``RUN/summary.json`` lists them, with their MOS and the
fresh student's scores). The bundled model is scored twice: its half-precision checkpoint through torch
(like for like with the fresh ``student/final``) and its shipped artifact (what ``edgeiqa predict`` runs).
The fresh run must hold out the split the bundled model held out (same dataset, split rule and seed):
on any other split the bundled model would be scored on photos it trained on, and the study refuses.

Reported: each model's test SRCC with its bootstrap interval; fresh - bundled, paired (photos resampled
together); how closely the two rank the photos (SRCC between their scores); the config settings in
which the two trainings differ (``out`` aside); and the verdict: the bundled weights reproduce when
|fresh - bundled| <= ``--tolerance`` (0.02 SRCC: well inside the ±0.05 that 125 test photos allow, so a
pass means the recipe, not luck, gives the shipped quality).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.bench.device_info import cpu_model
from edgeiqa.fileio import atomic_write_text
from edgeiqa.metrics import bootstrap_ci, srcc

sys.path.insert(0, str(Path(__file__).parent))  # the other studies, beside this one
from transfer_ladder import pooled_difference  # noqa: E402
from uhd_check import score_model  # noqa: E402

TOLERANCE = 0.02
# What decides which photos a run holds out; everything else may differ between the two trainings.
SPLIT_KEYS = ("data.dataset", "data.split", "data.split_seed", "data.fractions")


def flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: a config as dotted keys, to compare two of them."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        out.update(flat(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def settings_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    """Dotted keys whose values differ between two configs (``out`` aside), as ``[a's, b's]``."""
    fa, fb = flat(a), flat(b)
    keys = sorted(k for k in set(fa) | set(fb) if k != "out" and fa.get(k) != fb.get(k))
    return {k: [fa.get(k), fb.get(k)] for k in keys}


def check_same_split(fresh: dict[str, Any], bundled: dict[str, Any], run: Path) -> None:
    """Stop unless both configs hold out the same photos (:data:`SPLIT_KEYS`)."""
    fa, fb = flat(fresh), flat(bundled)
    for key in SPLIT_KEYS:
        if fa.get(key) != fb.get(key):
            raise SystemExit(
                f"{run}: {key} is {fa.get(key)!r}, the bundled model held out {key} {fb.get(key)!r}; "
                "its test photos would include photos the bundled model trained on"
            )


def compare(fresh: np.ndarray, bundled: np.ndarray, mos: np.ndarray, tolerance: float) -> dict[str, Any]:
    """Fresh vs bundled scores of the same photos: each one's SRCC, the paired difference, the verdict."""

    difference = pooled_difference([(fresh, bundled, mos)])
    return {
        "fresh_srcc": srcc(fresh, mos),
        "fresh_srcc_ci95": list(bootstrap_ci(fresh, mos)),
        "bundled_srcc": srcc(bundled, mos),
        "bundled_srcc_ci95": list(bootstrap_ci(bundled, mos)),
        "fresh_minus_bundled": difference,
        "fresh_vs_bundled_srcc": srcc(fresh, bundled),
        "mean_abs_score_diff": float(np.mean(np.abs(fresh - bundled))),
        "tolerance": tolerance,
        "reproduces": bool(abs(difference["value"]) <= tolerance),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="a fresh run of the bundled model's recipe")
    parser.add_argument("--model", default=None, help="bundled model name (default: the default model)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="largest |fresh - bundled| test SRCC")
    args = parser.parse_args()
    import yaml

    from edgeiqa.runtime.zoo import bundled

    model = bundled(args.model)
    summary = json.loads((args.run / "summary.json").read_text())
    fresh_config = yaml.safe_load((args.run / "config.yaml").read_text())
    bundled_config = model.card["provenance"]["config"]
    check_same_split(fresh_config, bundled_config, args.run)
    scores = summary["scores"]
    paths = [Path(p) for p in scores["paths"]]
    mos = np.asarray(scores["mos"], dtype=np.float64)
    fresh = np.asarray(scores["student"], dtype=np.float64)
    result = {
        "what": f"a fresh training of {model.name}'s recipe vs the bundled weights, on the held-out test photos",
        "run": str(args.run),
        "model": model.name,
        "photos": len(paths),
        "device": {"cpu_model": cpu_model()},
        "settings_differ": settings_diff(fresh_config, bundled_config),
        "rows": {},
    }
    for label, path in (("checkpoint", model.checkpoint), ("artifact", model.artifact)):
        bundled_scores = score_model(path, paths)
        result["rows"][label] = compare(fresh, bundled_scores, mos, args.tolerance)
        atomic_write_text(args.out, json.dumps(result, indent=1, sort_keys=True))
        print(label, json.dumps(result["rows"][label], indent=1))


if __name__ == "__main__":
    main()
