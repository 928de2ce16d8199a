"""Does strong-to-weak transfer pay? Per LIVE-C split: the teacher, and each student of the ladder
distilled from its labels and trained on labels alone, beside the frozen-feature ridge floor.

    python studies/transfer_ladder.py --config configs/livec.yaml --splits 0 1 2 --root runs/transfer \\
        --out studies/results/transfer_ladder.json [--students eqcnet_lite0 eqcnet_lite0_s ...] [--uhd-set graded.csv]

Per split ``s`` (``data.split_seed = s``, training seed 0): the config's teacher (an ensemble) is trained
into ``<root>/s<s>``, labels the pool once (``<root>/s<s>/labels/teacher.csv``), the config's student is
distilled and trained alone there; every other ladder student is distilled from the same table and
trained alone in ``<root>/s<s>/<student>``. Every step resumes, and the results file is rewritten after
each split, so the study can be stopped and continued. With ``--uhd-set``, each model's within-photo
ordering of graded UHD distortions is added (``studies/uhd_check.py``'s measure).

The summary pools the splits: per student, mean test SRCC distilled and alone, and a paired bootstrap of
the mean (over splits) of SRCC(distilled) - SRCC(alone), test photos resampled within each split.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.configs import from_dict, to_dict
from edgeiqa.distill.config import PseudoLabelTable
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.fileio import atomic_write_text

N_BOOT = 2000


def split_config(base: ExperimentConfig, split: int, root: Path, student: str | None = None) -> ExperimentConfig:
    cfg = copy.deepcopy(base)
    cfg.data.split_seed = split
    cfg.out = str(root / f"s{split}")
    if student is not None and student != base.student.model:
        cfg.student.model = student
        cfg.out = str(root / f"s{split}" / student)
        cfg.data.pseudo_pool = []
        cfg.data.pseudo_labels = [PseudoLabelTable(str(root / f"s{split}" / "labels" / "teacher.csv"))]
    return from_dict(ExperimentConfig, to_dict(cfg))


def train_split(base: ExperimentConfig, split: int, root: Path, students: list[str]) -> dict[str, Any]:
    from edgeiqa.distill.api import run_distill, run_teacher

    timings: dict[str, float] = {}
    main = split_config(base, split, root)
    start = time.perf_counter()
    run_teacher(main)
    timings["teacher"] = time.perf_counter() - start
    summaries = {}
    for student in students:
        cfg = split_config(base, split, root, student)
        start = time.perf_counter()
        run_distill(cfg, evaluate_after=False)
        timings[f"{student}/distilled"] = time.perf_counter() - start
        start = time.perf_counter()
        summaries[student] = run_distill(cfg, student_only=True).summary
        timings[f"{student}/alone"] = time.perf_counter() - start
    return {"summaries": summaries, "seconds": {k: round(v, 1) for k, v in timings.items()}}


def ridge(cfg: ExperimentConfig) -> dict[str, Any]:
    from edgeiqa.distill.ridge_floor import ridge_floor

    return ridge_floor(cfg, progress=False)


def pooled_difference(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], seed: int = 0) -> dict[str, float]:
    """Mean over splits of SRCC(a) - SRCC(b), with a paired bootstrap resampling photos within each split."""
    from edgeiqa.metrics import bootstrap_indices, srcc_rows

    points, boots = [], []
    for k, (a, b, mos) in enumerate(pairs):
        idx = bootstrap_indices(len(mos), N_BOOT, seed + k)
        points.append(srcc_rows(a[None], mos[None])[0] - srcc_rows(b[None], mos[None])[0])
        boots.append(srcc_rows(a[idx], mos[idx]) - srcc_rows(b[idx], mos[idx]))
    mean_boot = np.mean(boots, axis=0)
    low, high = np.quantile(mean_boot, [0.025, 0.975])
    return {"difference": float(np.mean(points)), "ci95": [float(low), float(high)], "splits": len(pairs)}


def summarise(result: dict[str, Any], students: list[str]) -> dict[str, Any]:
    splits = result["splits"]
    summary: dict[str, Any] = {}
    for student in students:
        rows = [(s, sp) for s, sp in splits.items() if student in sp.get("summaries", {})]
        if not rows:
            continue
        per = [sp["summaries"][student] for _, sp in rows]
        entry: dict[str, Any] = {"splits": [s for s, _ in rows]}
        for name in ("student", "student_only", "teacher"):
            if all(name in p for p in per):
                entry[name] = {
                    "mean_srcc": float(np.mean([p[name]["srcc"] for p in per])),
                    "srcc": [p[name]["srcc"] for p in per],
                }
        pairs = [
            tuple(np.asarray(p["scores"][k], dtype=np.float64) for k in ("student", "student_only", "mos")) for p in per
        ]
        entry["distilled_minus_alone"] = pooled_difference(pairs)  # type: ignore[arg-type]
        summary[student] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--root", required=True)
    parser.add_argument("--students", nargs="+", default=None, help="ladder (default: the config's student)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    base = ExperimentConfig.load(args.config)
    students = args.students or [base.student.model]
    if base.student.model in students:  # the config's student first: it labels the pool for the others
        students.remove(base.student.model)
    students.insert(0, base.student.model)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    result.update(
        {
            "what": "LIVE-C: teacher vs ladder students distilled and alone, per random split",
            "config": args.config,
            "students": students,
        }
    )
    result.setdefault("splits", {})
    for split in args.splits:
        entry = train_split(base, split, Path(args.root), students)
        entry["ridge"] = ridge(split_config(base, split, Path(args.root)))
        result["splits"][str(split)] = entry
        result["summary"] = summarise(result, students)
        atomic_write_text(out, json.dumps(result, indent=1, sort_keys=True))
        print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
