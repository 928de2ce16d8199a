"""Aggregate LIVE-C runs over training seeds: mean +- sd, bootstrap 95 % CIs, paired differences.

    python studies/livec_seeds.py runs/livec_s0 runs/livec_s1 runs/livec_s2 [--ridge runs/livec_s0] \
        --out studies/results/livec_seeds.json

Each run folder holds the summary.json that ``edgeiqa distill`` writes (per-image test scores included)
and optionally the baseline_ridge.json of ``edgeiqa baseline`` (the frozen-feature floor). All runs
share the data split (``data.split_seed``), so every comparison is paired on the same test photos.

``--baseline R0 R1 R2`` names the same seeds trained without a change under test (one run per seed, in the
order of ``runs``): each seed's distilled student (and teacher) is then paired against the baseline's, so a
preset change is judged by per-seed paired intervals rather than by two means.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgeiqa.report.intervals import paired_srcc_difference, srcc_interval

MODELS = ("teacher", "student", "student_only")


def _run(folder: Path) -> dict:
    summary = json.loads((folder / "summary.json").read_text())
    scores = summary["scores"]
    out = {"seed": summary["seed"], "n": summary["n"]}
    for name in MODELS:
        interval = srcc_interval(scores[name], scores["mos"])
        out[name] = {
            "srcc": summary[name]["srcc"],
            "plcc": summary[name]["plcc"],
            "srcc_ci95": [interval.low, interval.high],
        }
    paired = {
        "distilled_minus_alone": paired_srcc_difference(scores["student"], scores["student_only"], scores["mos"], 0.0),
        "distilled_minus_teacher": paired_srcc_difference(scores["student"], scores["teacher"], scores["mos"], 0.0),
        "teacher_minus_alone": paired_srcc_difference(scores["teacher"], scores["student_only"], scores["mos"], 0.0),
    }
    out["paired"] = {k: v.to_dict() for k, v in paired.items()}
    out["distilled_over_teacher"] = summary["student"]["srcc"] / summary["teacher"]["srcc"]
    return out


def _vs_baseline(run: Path, baseline: Path) -> dict:
    new, old = (json.loads((folder / "summary.json").read_text())["scores"] for folder in (run, baseline))
    if new["paths"] != old["paths"]:
        raise SystemExit(f"{run} and {baseline} scored different test photos; they cannot be paired")
    paired = paired_srcc_difference(new["student"], old["student"], new["mos"], 0.0)
    teacher = paired_srcc_difference(new["teacher"], old["teacher"], new["mos"], 0.0)
    return {
        "run": str(run),
        "baseline": str(baseline),
        "distilled_minus_baseline": paired.to_dict(),
        "teacher_minus_baseline": teacher.to_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--ridge", type=Path, help="run folder holding baseline_ridge.json")
    parser.add_argument("--baseline", nargs="+", type=Path, help="the same seeds without the change under test")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.baseline and len(args.baseline) != len(args.runs):
        parser.error(f"--baseline needs one run per seed: {len(args.runs)} runs, {len(args.baseline)} baselines")
    runs = [_run(folder) for folder in args.runs]
    agg = {}
    for name in MODELS:
        values = np.array([r[name]["srcc"] for r in runs])
        agg[name] = {
            "srcc_mean": float(values.mean()),
            "srcc_sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "plcc_mean": float(np.mean([r[name]["plcc"] for r in runs])),
        }
    gaps = np.array([r["student"]["srcc"] - r["student_only"]["srcc"] for r in runs])
    agg["distilled_minus_alone"] = {"mean": float(gaps.mean()), "per_seed": gaps.tolist()}
    agg["distilled_over_teacher"] = float(np.mean([r["distilled_over_teacher"] for r in runs]))
    result = {"runs": runs, "aggregate": agg}
    if args.ridge:
        ridge = json.loads((args.ridge / "baseline_ridge.json").read_text())
        result["ridge_floor"] = {k: ridge[k] for k in ("model", "srcc", "plcc", "srcc_ci95", "n")}
        summary = json.loads((args.runs[0] / "summary.json").read_text())
        if ridge["scores"]["paths"] == summary["scores"]["paths"]:
            result["ridge_floor"]["paired_vs_seed0"] = {
                name: paired_srcc_difference(
                    summary["scores"][name], ridge["scores"]["ridge"], summary["scores"]["mos"], 0.0
                ).to_dict()
                for name in MODELS
            }
    if args.baseline:
        result["vs_baseline"] = [_vs_baseline(run, base) for run, base in zip(args.runs, args.baseline)]
        result["aggregate"]["distilled_minus_baseline"] = {
            "mean": float(
                np.mean([row["distilled_minus_baseline"]["difference"]["value"] for row in result["vs_baseline"]])
            ),
            "per_seed": [row["distilled_minus_baseline"]["difference"]["value"] for row in result["vs_baseline"]],
        }
        result["aggregate"]["teacher_minus_baseline"] = {
            "mean": float(
                np.mean([row["teacher_minus_baseline"]["difference"]["value"] for row in result["vs_baseline"]])
            ),
            "per_seed": [row["teacher_minus_baseline"]["difference"]["value"] for row in result["vs_baseline"]],
        }
    print(json.dumps(result["aggregate"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
