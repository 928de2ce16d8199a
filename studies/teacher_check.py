"""Is the teacher worth distilling? Per LIVE-C split: its test SRCC beside the frozen-feature ridge floor on
the same photos, and (with ``--uhd-set``) whether it orders graded UHD distortions of photos it never saw.

    python studies/teacher_check.py --config configs/livec.yaml --splits 0 1 2 --root runs/transfer \\
        [--uhd-set runs/graded/check/graded.csv] --out studies/results/teacher_check.json

It reads the teachers ``transfer_ladder.py`` trains (``<root>/s<split>/teacher``) and trains none itself;
a split whose teacher is missing is skipped. The ridge floor is read from ``<root>/s<split>/baseline_ridge.json``
when a run already wrote it. Each split is written as soon as it is measured, and a measured split is not
measured again. Transfer pays only from a teacher clearly stronger and broader than its students: this is
the check to run before spending it on a pool (DESIGN.md §2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from transfer_ladder import pooled_difference, ridge, split_config
from uhd_check import score_model

from edgeiqa.bench.device_info import cpu_model
from edgeiqa.data.graded import ordering_by_type, read_graded
from edgeiqa.distill.ensemble import load_ensemble
from edgeiqa.distill.runs import load_splits
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.fileio import atomic_write_text
from edgeiqa.metrics import bootstrap_ci, srcc


def check_split(base: ExperimentConfig, split: int, root: Path, uhd_set: str | None) -> dict[str, Any] | None:
    cfg = split_config(base, split, root)
    folder = Path(cfg.out) / "teacher"
    if not folder.exists():
        return None
    test = load_splits(cfg.data).test
    teacher = load_ensemble(folder)
    mean, _, members = teacher.score(test)
    pred, mos = teacher.to_mos(mean), np.array([r.mos for r in test], dtype=np.float64)
    floor = ridge(cfg)
    row: dict[str, Any] = {
        "n": len(test),
        "teacher_srcc": srcc(pred, mos),
        "teacher_srcc_ci95": list(bootstrap_ci(pred, mos, "srcc", seed=0)),
        "members": len(members),
        "ridge_srcc": floor["srcc"],
        "teacher_minus_ridge": pooled_difference([(pred, np.asarray(floor["scores"]["ridge"]), mos)]),
    }
    if uhd_set:
        rows = read_graded(Path(uhd_set))
        ordering = ordering_by_type([it for _, it in rows], score_model(folder, [p for p, _ in rows]))
        row.update({f"uhd_{kind}": value for kind, value in sorted(ordering.items())})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--root", required=True)
    parser.add_argument("--uhd-set", help="graded.csv of the UHD check (edgeiqa data graded --check-half DIR)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    base = ExperimentConfig.load(args.config)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    result.update(
        {
            "what": "LIVE-C teacher per random split: test SRCC vs the frozen-feature ridge, and its UHD check",
            "config": args.config,
            "device": {"cpu_model": cpu_model()},
        }
    )
    rows = result.setdefault("rows", {})
    for split in args.splits:
        if f"split {split}" in rows:
            continue
        row = check_split(base, split, Path(args.root), args.uhd_set)
        if row is not None:
            rows[f"split {split}"] = row
            atomic_write_text(out, json.dumps(result, indent=1, sort_keys=True))
            print(f"split {split}", json.dumps(row))


if __name__ == "__main__":
    main()
