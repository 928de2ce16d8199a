"""The optional fourth transfer stage, ``qat``: quantization-aware fine-tuning of the fine-tuned student.

What it is for: post-training quantization (``onnx int8-trt``) rounds a network that never saw
rounding, and the 8-bit error of every layer lands on the ranking of photos whose scores are close.
QAT trains the student *through* the rounding TensorRT will apply (fake quantization,
:mod:`edgeiqa.models.fake_quant`), against the same targets as fine-tuning (MOS labels and the
teacher's scores), so the weights move to where INT8 costs the least ranking. The result is exported
as the same TensorRT explicit-quantization Q/DQ ONNX (``edgeiqa export ... --precision int8-qat``).

Enable it in the experiment YAML (it is off by default; ``edgeiqa distill`` then runs it after
``calibrate``, or alone with ``--stages qat``)::

    student:
      qat:
        enabled: true
        optim: {epochs: 2, lr: 1.0e-4}        # a short, small-lr fine-tune; BatchNorm stays frozen
        activation_calibration: percentile    # or max
        percentile: 99.99
        calibration_images: 128

Steps (``<out>/student``):

1. rebuild the fine-tuned student from ``finetune/`` (its best epoch);
2. replace its Conv2d/Linear layers by fake-quant twins and measure their input ranges on
   ``calibration_images`` unaugmented training images (a resumed stage restores them instead);
3. train with the stage's losses, BatchNorm frozen, validated by the fake-quantized student's val
   SRCC, into ``qat/`` (the normal checkpoints: resume, best epoch, metrics);
4. fit and fold the score calibration on the best QAT epoch, as ``calibrate`` does, into
   ``qat_final/``. Its state records the float student ``final/`` (and its sha256) that the export's
   fidelity gate compares the INT8 artifact with, the same reference as post-training INT8.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeiqa.distill.checkpoint import Checkpoint, latest_checkpoint
from edgeiqa.distill.config import QatStage
from edgeiqa.distill.saved_model import load_model
from edgeiqa.distill.stages import (
    QAT_FINAL_FOLDER,
    QAT_FOLDER,
    Run,
    fold_score_calibration,
    load_teacher,
    train_student_stage,
)
from edgeiqa.errors import EdgeIQAError
from edgeiqa.models.fake_quant import QuantSettings, calibrate_activations, quantize_model, quantized_layers

# Where qat_final/ finds the float student its export is gated against (relative to qat_final/).
FLOAT_REFERENCE_STAGE = "../final"


def quant_settings(stage: QatStage) -> QuantSettings:
    """The fake-quant settings of the stage config (checked by :class:`QuantSettings`)."""
    return QuantSettings(
        activation_calibration=stage.activation_calibration, percentile=stage.percentile, keep_fp=tuple(stage.keep_fp)
    )


def train_qat(run: Run, root: Path, resume: bool = True) -> Path:
    """Run the ``qat`` stage of the student under ``root``; returns ``root / qat_final``."""
    stage = run.cfg.student.qat
    if latest_checkpoint(root / "finetune", "best", verify=False) is None:  # existence only: load_model verifies
        raise EdgeIQAError(
            f"{root / 'finetune'}: no fine-tuned student; the qat stage starts from it, run the finetune stage first"
        )
    reference = _float_reference(root)
    source = load_model(root / "finetune")
    student = source.model.to(run.dist.device)
    settings = quant_settings(stage)
    layers = quantize_model(student, settings)
    folder = root / QAT_FOLDER
    previous = latest_checkpoint(folder) if resume else None
    if previous is not None:  # resuming: the ranges the stage was trained with, not a re-measurement
        if previous.state.get("quantization") != settings.to_dict():
            raise EdgeIQAError(
                f"{folder}: its checkpoints were trained with quantization "
                f"{previous.state.get('quantization')}, the config now asks for {settings.to_dict()}; "
                "start the stage over with --restart"
            )
        record = _restore_ranges(student, previous)
    else:
        record = calibrate_activations(student, lambda: _calibration_batches(run, student, stage), settings)
    meta = {
        "quantization": settings.to_dict(),
        "activation_calibration": record,
        "quantized_layers": len(layers),
        "qat_from": {"stage": "../finetune", "sha256": source.checkpoint.state.get("sha256", {}).get("model")},
    }
    train_student_stage(run, student, stage, "qat", folder, load_teacher(run), True, run.splits.train, resume, meta)
    best = load_model(folder).model.to(run.dist.device)  # the best epoch, rebuilt fake-quantized and verified
    extra = {key: meta[key] for key in ("quantization", "activation_calibration", "quantized_layers")}
    return fold_score_calibration(
        run,
        best,
        root / QAT_FINAL_FOLDER,
        dict(extra, float_reference={"stage": FLOAT_REFERENCE_STAGE, "sha256": reference}),
    )


def _float_reference(root: Path) -> str:
    """sha256 of the float student ``final/``: the INT8 export of the QAT student is gated against it."""
    final = latest_checkpoint(root / "final", "best", verify=False)
    if final is None:
        raise EdgeIQAError(
            f"{root / 'final'}: no score-calibrated float student; the qat stage's export is "
            "gated against it (as post-training INT8 is): run the calibrate stage first"
        )
    return str(final.state.get("sha256", {}).get("model"))


def _calibration_batches(run: Run, student: torch.nn.Module, stage: QatStage) -> Iterator[tuple[torch.Tensor, ...]]:
    """Unaugmented student inputs of a seeded sample of ``stage.calibration_images`` training images."""
    records = run.splits.train
    rng = np.random.default_rng(run.cfg.seed)
    chosen = sorted(rng.choice(len(records), size=min(stage.calibration_images, len(records)), replace=False))
    loader = run.eval_loader(run.dataset([records[i] for i in chosen], student=student), stage.optim.batch_size)
    for batch in loader:
        yield tuple(batch["student"][name].to(run.dist.device) for name in student.contract.input_names)


def _restore_ranges(student: torch.nn.Module, checkpoint: Checkpoint) -> dict[str, Any]:
    """Set every fake-quant layer's input amax from a QAT checkpoint (``student.<layer>.input_quantizer.amax``)."""
    tensors = checkpoint.model_state()
    for name, layer in quantized_layers(student).items():
        key = f"student.{name}.input_quantizer.amax"
        if key not in tensors:
            raise EdgeIQAError(
                f"{checkpoint.folder / 'model.safetensors'}: no {key}; not a checkpoint of this "
                "QAT stage (start it over with --restart)"
            )
        layer.input_quantizer.amax.copy_(tensors[key])
    return dict(checkpoint.state.get("activation_calibration") or {}, restored_from=checkpoint.folder.name)
