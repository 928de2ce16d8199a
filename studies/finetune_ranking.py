"""Does ordering graded UHD groups while fine-tuning keep what the teacher's labels taught the student?

    python studies/finetune_ranking.py --root /work/runs23 --split 0 --ranking-set runs/graded/train/graded.csv \\
        --uhd-set runs/graded/check/graded.csv --out studies/results/finetune_ranking.json

The variant starts from the pre-trained student ``studies/transfer_ladder.py`` left in ``<root>/s<split>``
(its ``student/pretrain``, copied) and fine-tunes it as the split's config does, plus the
``distortion_rank`` loss (weight 1) on ``--ranking-set`` groups of 3 levels, into ``<root>/s<split>_rankft``.
Both students are scored on the split's test photos (paired bootstrap of the difference) and on the UHD
check (within-photo ordering per distortion type). Resumable: a finished variant is only evaluated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from edgeiqa.bench.device_info import cpu_model
from edgeiqa.configs import from_dict, to_dict
from edgeiqa.distill.config import PseudoLabelTable
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.fileio import atomic_write_text

sys.path.insert(0, str(Path(__file__).parent))  # the other studies, beside this one
from transfer_ladder import pooled_difference, uhd_ordering  # noqa: E402


def variant_config(split_out: Path, out: Path, ranking_set: str) -> ExperimentConfig:
    cfg = ExperimentConfig.load(split_out / "config.yaml")
    cfg.out = str(out)
    cfg.data.pseudo_pool = []  # the split's own table: labelled once, by the same teacher
    cfg.data.pseudo_labels = [PseudoLabelTable(str(split_out / "labels" / "teacher.csv"))]  # its sidecar's range
    cfg.student.finetune.losses["distortion_rank"] = 1.0
    cfg.student.finetune.ranking_set = ranking_set
    cfg.student.finetune.ranking_group = 3
    return from_dict(ExperimentConfig, to_dict(cfg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--split", type=int, default=0)
    parser.add_argument("--ranking-set", required=True)
    parser.add_argument("--uhd-set", required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    from edgeiqa.distill.api import run_distill

    split_out = args.root / f"s{args.split}"
    out = args.root / f"s{args.split}_rankft"
    if ExperimentConfig.load(split_out / "config.yaml").student.finetune.losses.get("distortion_rank"):
        raise SystemExit(
            f"{split_out}: its student already fine-tunes with distortion_rank (configs/livec.yaml does since this "
            "study); the baseline here is a split trained with the fine-tune on MOS alone"
        )
    if not (out / "student" / "pretrain").exists():
        shutil.copytree(split_out / "student" / "pretrain", out / "student" / "pretrain")
    summary = run_distill(variant_config(split_out, out, args.ranking_set)).summary
    base = json.loads((split_out / "summary.json").read_text())
    if base["scores"]["paths"] != summary["scores"]["paths"]:
        raise SystemExit("the two runs scored different test photos")
    mos = np.asarray(base["scores"]["mos"])
    with_rank, without = (np.asarray(s["scores"]["student"]) for s in (summary, base))
    rows = {
        "distilled, fine-tuned on MOS": {
            "srcc": base["student"]["srcc"],
            **{f"uhd_{k}": v for k, v in uhd_ordering(args.uhd_set, split_out / "student" / "final").items()},
        },
        "distilled, fine-tuned on MOS + distortion_rank": {
            "srcc": summary["student"]["srcc"],
            "minus_mos_only": pooled_difference([(with_rank, without, mos)]),
            **{f"uhd_{k}": v for k, v in uhd_ordering(args.uhd_set, out / "student" / "final").items()},
        },
    }
    result = {
        "what": f"LIVE-C split {args.split}: the default student fine-tuned with and without the distortion_rank "
        "loss on graded UHD groups, same pre-trained start; test SRCC (paired) and the UHD check",
        "device": {"cpu_model": cpu_model()},
        "ranking_set": args.ranking_set,
        "uhd_set": args.uhd_set,
        "rows": rows,
    }
    atomic_write_text(args.out, json.dumps(result, indent=1, sort_keys=True))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
