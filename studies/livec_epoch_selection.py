"""Best-on-validation epoch or last epoch? Test SRCC of both checkpoints of every model of finished runs.

    python studies/livec_epoch_selection.py runs/livec_s0 runs/livec_s1 runs/livec_s2 \
        --out studies/results/livec_epoch_selection.json

Each stage keeps its best-on-val checkpoint and its last one. On LIVE-C the validation split has 63
photos, whose SRCC moves by about +-0.05 between equally good models, so "best" may pick an under-trained
early epoch. This scores both checkpoints of the teacher, the fine-tuned distilled student and the student
alone on the test split (raw outputs: the score calibration is strictly increasing and leaves SRCC as it
is) and pairs them by a bootstrap on the same photos. Run folders may link teacher/ or student_only/ to
another run's; a model whose folder was already scored is scored once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgeiqa.distill.checkpoint import latest_checkpoint
from edgeiqa.metrics import srcc
from edgeiqa.report.intervals import paired_srcc_difference
from edgeiqa.runtime.predictor import Predictor

STAGES = {"teacher": "teacher", "student": "student/finetune", "student_only": "student_only/finetune"}


def _scores(folder: Path, paths: list[str]) -> list[float]:
    with Predictor.load(folder) as predictor:
        return [float(s) for s in predictor(paths)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cache: dict[Path, list[float]] = {}
    rows: list[dict[str, Any]] = []
    for run in args.runs:
        summary = json.loads((run / "summary.json").read_text())
        paths, mos = summary["scores"]["paths"], summary["scores"]["mos"]
        for model, stage in STAGES.items():
            best, last = (
                latest_checkpoint(run / stage, "best", verify=False),
                latest_checkpoint(run / stage, "last", verify=False),
            )
            if best is None or last is None:
                continue
            scores = {}
            for which, ckpt in (("best", best), ("last", last)):
                key = ckpt.folder.resolve()
                if key not in cache:
                    cache[key] = _scores(ckpt.folder, paths)
                scores[which] = cache[key]
            paired = paired_srcc_difference(scores["last"], scores["best"], mos, 0.0)
            row = {
                "run": str(run),
                "model": model,
                "best_epoch": best.epoch,
                "last_epoch": last.epoch,
                "best_srcc": srcc(scores["best"], mos),
                "last_srcc": srcc(scores["last"], mos),
                "last_minus_best": paired.to_dict(),
            }
            rows.append(row)
            d = row["last_minus_best"]["difference"]
            print(
                f"{run.name:14s} {model:13s} best epoch {best.epoch} SRCC {row['best_srcc']:.4f}  "
                f"last epoch {last.epoch} SRCC {row['last_srcc']:.4f}  last - best {d['value']:+.4f} "
                f"[{d['low']:+.3f}, {d['high']:+.3f}]",
                flush=True,
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"runs": [str(r) for r in args.runs], "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
