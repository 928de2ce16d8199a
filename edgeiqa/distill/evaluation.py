"""Test-split metrics of every model a run folder holds, into ``summary.json`` (see :func:`evaluate`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from edgeiqa.distill.checkpoint import latest_checkpoint
from edgeiqa.distill.ensemble import is_ensemble, load_ensemble
from edgeiqa.distill.modules import student_forward
from edgeiqa.distill.runs import predict
from edgeiqa.distill.saved_model import load_model
from edgeiqa.distill.stages import QAT_FINAL_FOLDER, Run
from edgeiqa.fileio import atomic_write_text
from edgeiqa.metrics import bootstrap_ci, iqa_metrics

# summary.json name -> (run subfolder, final folder) of every score-calibrated student a run may hold.
_FINAL_STUDENTS = {
    "student": ("student", "final"),
    "student_only": ("student_only", "final"),
    "student_qat": ("student", QAT_FINAL_FOLDER),
}


def evaluate(run: Run) -> dict[str, Any]:
    """Test-split metrics of every trained model in the run folder, written to summary.json.

    ``student_qat`` is the fake-quantized QAT student (``student/qat_final``) scored in torch, when the
    run has one. Each model gets its metrics, a bootstrap 95 % interval of its SRCC and its per-image scores (in
    ``summary["scores"]``, beside the MOS and image paths), so runs can be compared by a paired
    bootstrap on the same images instead of by single numbers that are +-0.1 wide on ~125 photos.
    """
    records = run.splits.test or run.splits.val
    split = "test" if run.splits.test else "val"
    low, high = run.splits.mos_range
    summary: dict[str, Any] = {"split": split, "n": len(records), "dataset": run.cfg.data.root, "seed": run.cfg.seed}
    scores: dict[str, Any] = {"paths": [str(r.path) for r in records]}
    if is_ensemble(run.out / "teacher") or latest_checkpoint(run.out / "teacher", "best") is not None:
        ensemble = load_ensemble(run.out / "teacher")
        pred, _, members = ensemble.score(records, run.dist.device, workers=run.cfg.data.workers)
        scores["teacher"] = pred * (high - low) + low
        if len(members) > 1:
            scores.update({f"teacher/{name}": p * (high - low) + low for name, p in members.items()})
    for name, (subfolder, final_folder) in _FINAL_STUDENTS.items():
        final = run.out / subfolder / final_folder
        if (final / "last.json").exists():
            model = load_model(final).model.to(run.dist.device)
            loader = run.eval_loader(run.dataset(records, student=model), 32)
            scores[name], _ = predict(
                lambda b, model=model: student_forward(model, b["student"]), loader, run.dist.device
            )
    if len(scores) > 1:
        scores["mos"] = np.array([r.mos for r in records], dtype=np.float64)
    for name in scores:
        if name not in ("paths", "mos"):
            summary[name] = dict(
                iqa_metrics(scores[name], scores["mos"]),
                srcc_ci95=list(bootstrap_ci(scores[name], scores["mos"], "srcc", seed=run.cfg.seed)),
            )
    summary["scores"] = {k: [float(x) for x in v] if k != "paths" else v for k, v in scores.items()}
    summary = json.loads(json.dumps(summary, default=float))
    if run.dist.is_main:
        atomic_write_text(run.out / "summary.json", json.dumps(summary, indent=1))
    return summary
