"""Does a model see what goes wrong at UHD? Graded distortions of real 2.5-6K photos, ordered per photo.

    python studies/uhd_check.py --set GRADED_CSV --model NAME=PATH [--model ...] --out studies/results/X.json

The graded set comes from ``edgeiqa.data.graded`` (``check_items`` on photos no model trained on: the
check half of ``split_sources``): each photo at native resolution, and JPEG, noise, blur and upscaling
at four severities. For every model (an ensemble or single teacher folder, a student checkpoint folder or
an exported artifact) the study scores every image and reports, per distortion type, the mean over photos
of SRCC(score, -level): 1.0 means every step of severity lowers the score. Results are written after each
model, and a model already in ``--out`` is not scored again (delete its entry to redo it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeiqa.bench.device_info import cpu_model
from edgeiqa.data.graded import GradedItem, ordering_by_type, read_graded
from edgeiqa.data.records import ImageRecord

sys.path.insert(0, str(Path(__file__).parent))  # the other studies, beside this one
from model_results import measure_models  # noqa: E402


def score_model(path: Path, images: list[Path]) -> np.ndarray:
    """MOS-scale scores of ``images``: a teacher folder through its ensemble, anything else through Predictor."""
    from edgeiqa.distill.checkpoint import resolve_checkpoint
    from edgeiqa.distill.ensemble import is_ensemble, load_ensemble

    if path.is_dir() and (is_ensemble(path) or resolve_checkpoint(path, verify=False).state.get("kind") == "teacher"):
        teacher = load_ensemble(path)
        mean, _, _ = teacher.score([ImageRecord(path=Path(os.path.abspath(p)), mos=0.0) for p in images])
        return teacher.to_mos(mean)
    from edgeiqa.runtime.predictor import Predictor

    with Predictor.load(path) as predictor:
        return np.asarray(predictor(images), dtype=np.float64)


def ordering(rows: Sequence[tuple[Path, GradedItem]], model: Path) -> dict[str, float]:
    """``model``'s within-photo ordering per distortion type on a graded set's ``rows`` (:func:`read_graded`)."""
    return ordering_by_type([it for _, it in rows], score_model(model, [p for p, _ in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", required=True, help="graded.csv of the check set")
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH (teacher, checkpoint or artifact)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows = read_graded(Path(args.set))
    header = {
        "what": "within-photo ordering of graded distortions made at native resolution (UHD check)",
        "set": args.set,
        "photos": len({it.source for _, it in rows}),
        "images": len(rows),
        "device": {"cpu_model": cpu_model()},
    }

    def measure(path: str) -> dict:
        return {"ordering": ordering(rows, Path(path))}

    measure_models(Path(args.out), header, args.model, measure, lambda entry: entry["ordering"])


if __name__ == "__main__":
    main()
