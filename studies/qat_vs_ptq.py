"""What quantization-aware training buys over post-training INT8, measured on a run's test split.

    python studies/qat_vs_ptq.py runs/livec [--qat-epochs 2] [--lr-scale 0.1] \
        [--out studies/results/qat_vs_ptq_livec.json]

RUN is a run folder of ``edgeiqa distill`` (its ``config.yaml``, a fine-tuned ``student/finetune`` and
the score-calibrated ``student/final``). When ``student/qat_final`` is missing (or ``--retrain``), the
``qat`` stage is trained first with the run's own fine-tune optimiser and losses, at ``--lr-scale`` of
its learning rate for ``--qat-epochs`` epochs (unless the run's config already enables and sets
``student.qat``). Then three ONNX artifacts are exported into ``RUN/qat_vs_ptq/``, each through the
usual parity gate on the config's validation split:

* ``fp32`` from ``student/final`` (the reference);
* ``int8-trt`` from ``student/final``: post-training symmetric Q/DQ calibrated on the config's INT8
  calibration split (what TensorRT would get without QAT);
* ``int8-qat`` from ``student/qat_final``: the QAT student's own Q/DQ (TensorRT explicit quantization).

Every artifact scores the *test* split through the torch-free runtime (ONNX Runtime CPU), and each
INT8 artifact is compared with the FP32 one: rank agreement SRCC(int8, fp32), SRCC vs MOS, ΔSRCC =
SRCC(fp32, MOS) - SRCC(int8, MOS) (and its absolute value), max / mean |Δscore| on the MOS scale.
QAT also trains for a few more epochs, so its agreement measures rounding and that training together;
ΔSRCC vs MOS is the accuracy side of the trade. ``int8-qat`` speaks MOS through its own score map
(fitted on the QAT student's outputs), ``int8-trt`` through the float student's: |Δscore| includes that
difference, rank agreement and ΔSRCC do not depend on it. Run it alone on the machine (one process, 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.distill.api import run_distill
from edgeiqa.distill.config import QatOptimConfig
from edgeiqa.distill.runs import load_splits
from edgeiqa.distill.stages import QAT_FINAL_FOLDER, QAT_FOLDER
from edgeiqa.experiment import ArtifactConfig, ExperimentConfig
from edgeiqa.export.exporter import export_artifact
from edgeiqa.export.formats import QAT_PRECISION
from edgeiqa.export.images import ImageSet
from edgeiqa.metrics import srcc
from edgeiqa.runtime.predictor import Predictor

RESULTS = Path(__file__).resolve().parent / "results"


def qat_config(run: Path, epochs: int, lr_scale: float) -> ExperimentConfig:
    """The run's config with the qat stage on: its own settings if it has them, else the fine-tune's, scaled."""
    cfg = ExperimentConfig.load(run / "config.yaml")
    cfg.out = str(run)
    if not cfg.student.qat.enabled:
        finetune = cfg.student.finetune
        fields = {f.name: getattr(finetune.optim, f.name) for f in dataclasses.fields(finetune.optim)}
        optim = QatOptimConfig(
            **{
                **fields,
                "epochs": epochs,
                "lr": finetune.optim.lr * lr_scale,
                "warmup_epochs": 0.0,
                "freeze_bn": True,
                "amp": "off",
                "freeze_backbone_epochs": 0,
            }
        )
        cfg.student.qat = dataclasses.replace(cfg.student.qat, enabled=True, optim=optim, losses=dict(finetune.losses))
    return cfg


def export_three(cfg: ExperimentConfig, run: Path) -> dict[str, Path]:
    """fp32 and int8-trt from final/, int8-qat from qat_final/, each parity-gated on the validation split."""
    table, section = load_splits(cfg.data).table, cfg.export
    calib = ImageSet.from_table(table, section.calibration.split, n=section.calibration.n_images)
    val = ImageSet.validation_from_table(table, section.validation_split)
    out, artifacts = run / "qat_vs_ptq", {}
    for precision, stage in (("fp32", "final"), ("int8-trt", "final"), (QAT_PRECISION, QAT_FINAL_FOLDER)):
        options = section.options_for(ArtifactConfig("onnx", precision))
        result = export_artifact(
            run / "student" / stage,
            "onnx",
            precision,
            out,
            calib=calib,
            val=val,
            options=options,
            raise_on_failure=False,
        )
        print(f"  {result.summary()}")
        artifacts[precision] = result.artifact
    return artifacts


def score_test_split(artifacts: dict[str, Path], cfg: ExperimentConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    splits = load_splits(cfg.data)
    records = splits.test or splits.val
    scores = {}
    for precision, artifact in artifacts.items():  # one runtime at a time: they fight over the cores
        with Predictor.load(artifact, allow_invalid=True, threads=cfg.threads) as predictor:
            scores[precision] = np.asarray(predictor([r.path for r in records]), dtype=np.float64)
    return scores, np.asarray([r.mos for r in records], dtype=np.float64)


def compare(int8: np.ndarray, fp32: np.ndarray, mos: np.ndarray) -> dict[str, float]:
    diff = np.abs(int8 - fp32)
    delta = srcc(fp32, mos) - srcc(int8, mos)
    return {
        "rank_agreement_srcc_vs_fp32": srcc(int8, fp32),
        "srcc_vs_mos": srcc(int8, mos),
        "delta_srcc_vs_mos": delta,
        "abs_delta_srcc_vs_mos": abs(delta),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
    }


def gate_of(artifact: Path) -> dict[str, Any]:
    manifest = json.loads(artifact.with_name(artifact.name + ".json").read_text())
    parity = manifest.get("parity") or {}
    return {"valid": manifest.get("valid"), "reference": parity.get("reference"), "reason": parity.get("reason")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with config.yaml, student/finetune and student/final")
    parser.add_argument("--qat-epochs", type=int, default=2)
    parser.add_argument("--lr-scale", type=float, default=0.1, help="QAT lr = fine-tune lr x this")
    parser.add_argument("--retrain", action="store_true", help="train the qat stage again even if it exists")
    parser.add_argument("--out", type=Path, help="result JSON (default: studies/results/qat_vs_ptq_<run>.json)")
    parser.add_argument("--note", help="what this run is, stored in the result (e.g. which data and model)")
    args = parser.parse_args()
    run = args.run.resolve()
    cfg = qat_config(run, args.qat_epochs, args.lr_scale)
    started = time.perf_counter()
    if args.retrain or not (run / "student" / QAT_FINAL_FOLDER / "best.json").exists():
        run_distill(cfg, stages=("qat",), resume=not args.retrain, evaluate_after=False)
    qat_seconds = time.perf_counter() - started
    artifacts = export_three(cfg, run)
    scores, mos = score_test_split(artifacts, cfg)
    history = json.loads((run / "student" / QAT_FOLDER / "metrics.json").read_text())
    result = {
        "note": args.note,
        "run": str(run),
        "dataset": cfg.data.root,
        "split": "test" if load_splits(cfg.data).test else "val",
        "n": int(mos.size),
        "fp32_srcc_vs_mos": srcc(scores["fp32"], mos),
        "ptq_int8_trt": compare(scores["int8-trt"], scores["fp32"], mos),
        "qat_int8_qat": compare(scores[QAT_PRECISION], scores["fp32"], mos),
        "gates_on_validation_split": {p: gate_of(a) for p, a in artifacts.items()},
        "qat": {
            "optim": dataclasses.asdict(cfg.student.qat.optim),
            "losses": cfg.student.qat.losses,
            "activation_calibration": cfg.student.qat.activation_calibration,
            "val_srcc_per_epoch": [h.get("val_srcc") for h in history],
            "seconds_this_call": round(qat_seconds, 1),
        },
        "scores": {"mos": mos.tolist(), **{p: s.tolist() for p, s in scores.items()}},
    }
    out = args.out or RESULTS / f"qat_vs_ptq_{run.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("n", "fp32_srcc_vs_mos", "ptq_int8_trt", "qat_int8_qat")}, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
