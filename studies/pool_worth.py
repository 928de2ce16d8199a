"""What does the unlabelled pool add? The default student distilled with and without it, paired.

    python studies/pool_worth.py --config configs/livec.yaml --splits 0 [1 2] --root /work/runs23 \\
        --without ../shared/data/unlabelled --out studies/results/pool_worth.json

Per split it reuses what ``studies/transfer_ladder.py`` trained into ``<root>/s<split>``: the teacher's
label table and the distilled default student. The variant is the same student distilled from the same
table with every row under ``--without`` dropped (so it pre-trains on the teacher's labels of the
training photos and the graded set only), trained into ``<root>/s<split>/no_pool``. Both are scored on
the split's test photos; the paired bootstrap of SRCC(with) - SRCC(without) pools the splits. Resumable:
a split already in ``--out`` is kept, and the training resumes from its last epoch.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
from pathlib import Path

import numpy as np

from edgeiqa.configs import from_dict, to_dict
from edgeiqa.distill.config import PseudoLabelTable
from edgeiqa.distill.labels import sidecar
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.fileio import atomic_write_text


def _ladder():
    spec = importlib.util.spec_from_file_location("transfer_ladder", Path(__file__).with_name("transfer_ladder.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_without(table: Path, folder: Path, out: Path) -> int:
    """``table`` less every row whose image lies under ``folder``; returns the rows dropped."""
    root = os.path.abspath(folder) + os.sep
    with open(table, newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [rows[0]] + [r for r in rows[1:] if not os.path.abspath(r[0]).startswith(root)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(kept)
    return len(rows) - len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--splits", type=int, nargs="+", default=[0])
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--without", required=True, type=Path, help="the pool folder to leave out")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    from edgeiqa.distill.api import run_distill

    ladder = _ladder()
    base = ExperimentConfig.load(args.config)
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result.update({"what": f"the default student distilled with and without {args.without}, paired per split"})
    splits = result.setdefault("splits", {})
    for split in args.splits:
        if str(split) in splits:
            continue
        main_out = args.root / f"s{split}"
        with_pool = json.loads((main_out / "summary.json").read_text())
        table = main_out / "labels" / "teacher.csv"
        reduced = main_out / "no_pool" / "labels_without_pool.csv"
        dropped = table_without(table, args.without, reduced)
        mos_range = json.loads(sidecar(table).read_text())["mos_range"]  # the reduced table has no sidecar
        cfg = ladder.split_config(base, split, args.root)
        cfg.out = str(main_out / "no_pool")
        cfg.data.pseudo_pool = []
        cfg.data.pseudo_labels = [PseudoLabelTable(str(reduced), list(mos_range))]
        cfg = from_dict(ExperimentConfig, to_dict(cfg))
        without = run_distill(cfg).summary
        splits[str(split)] = {
            "rows_dropped": dropped,
            "with_pool": with_pool["student"]["srcc"],
            "without_pool": without["student"]["srcc"],
            "scores": {"with": with_pool["scores"]["student"], "without": without["scores"]["student"]},
            "mos": with_pool["scores"]["mos"],
        }
        pairs = [
            tuple(np.asarray(v, dtype=np.float64) for v in (s["scores"]["with"], s["scores"]["without"], s["mos"]))
            for s in splits.values()
        ]
        result["rows"] = {
            "default student": {
                "splits": len(splits),
                "with_pool": sum(s["with_pool"] for s in splits.values()) / len(splits),
                "without_pool": sum(s["without_pool"] for s in splits.values()) / len(splits),
                "with_minus_without": ladder.pooled_difference(pairs),
            }
        }
        atomic_write_text(args.out, json.dumps(result, indent=1, sort_keys=True))
        print(json.dumps(result["rows"], indent=1))


if __name__ == "__main__":
    main()
