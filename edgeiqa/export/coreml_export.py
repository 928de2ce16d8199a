"""Core ML ``.mlpackage`` (ML program): FP32, FP16 compute, or FP16 compute with int8 weights.

Converted from a TorchScript trace with coremltools; minimum deployment target iOS16 / macOS13 (ML
programs with per-channel int8 weights need it), float32 inputs and output. Shapes: flexible batch
and height/width (``ct.RangeDim``) when the converter accepts them; models whose upsampling sizes
depend on the input (EQCNet's top-down fusion) are refused by coremltools with flexible height/width,
so they fall back to a fixed working size with flexible batch, which only square contracts allow. In
FP16 the ops after the student's raw score (the score calibration) stay float32 when the traced
graph names that value ``raw`` (the argument of ``ScoreCalibration.forward``); the manifest records
whether it did.

Conversion runs on Linux; ``MLModel.predict`` needs macOS, so off macOS the exporter checks the spec
(input/output names, types, shapes) and the gate records ``skipped``: valid but not verified.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeiqa.errors import require
from edgeiqa.export.artifact import SCORE_OUTPUT, ExportedFiles, input_specs, output_specs
from edgeiqa.export.errors import ExportError
from edgeiqa.export.images import ImageSet
from edgeiqa.export.options import ExportOptions
from edgeiqa.export.source import ExportSource
from edgeiqa.models.inputs import example_inputs

DEPLOYMENT_TARGETS = {"iOS16": "iOS16 / macOS13", "iOS17": "iOS17 / macOS14", "iOS18": "iOS18 / macOS15"}
RAW_SCORE_VAR = "raw"


def export_coreml(
    source: ExportSource, precision: str, work: Path, name: str, calib: ImageSet | None, options: ExportOptions
) -> ExportedFiles:
    """The ``coreml`` format's exporter (see :mod:`edgeiqa.export.formats`)."""
    log: list[str] = []
    with converter_logs_kept(log):
        ct = require("coremltools", "coreml", "Core ML export")
    torch = require("torch", "train", "Core ML export")
    if options.coreml_target not in DEPLOYMENT_TARGETS:
        raise ExportError(f"Core ML target {options.coreml_target!r} is not one of {', '.join(DEPLOYMENT_TARGETS)}")
    start = time.perf_counter()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(source.model, example_inputs(source.contract, batch=1))
    tail = _Fp32Tail()
    with converter_logs_kept(log):
        mlmodel, shapes = _convert_flexible(ct, traced, source, precision, options, tail)
    details: dict[str, Any] = {
        "deployment_target": DEPLOYMENT_TARGETS[options.coreml_target],
        "shapes": shapes,
        "compute_precision": "fp32" if precision == "fp32" else "fp16",
        "score_calibration_fp32": precision == "fp32" or tail.found,
        "converter_log": log,
    }
    if precision == "int8-weights":
        mlmodel = _int8_weights(ct, mlmodel)
        details["weights"] = "int8 (linear_symmetric, per_channel)"
    mlmodel.short_description = f"{source.name}: image quality score on the MOS scale ({precision})"
    mlmodel.user_defined_metadata.update({"edgeiqa.model": source.name, "edgeiqa.precision": precision})
    target = work / name
    mlmodel.save(str(target))
    details["spec"] = check_spec(target, source.input_names)
    details["seconds"] = round(time.perf_counter() - start, 3)
    hw = None if shapes["height_width"] == "flexible" else (source.contract.working_size,) * 2
    return ExportedFiles(target, input_specs(source.contract, hw), output_specs(), details)


@contextlib.contextmanager
def converter_logs_kept(into: list[str]) -> Iterator[None]:
    """Keep coremltools' log records (first line each) in ``into`` instead of printing them.

    On Linux it logs a WARNING per missing macOS proxy at import, warns that newer torch and
    scikit-learn are untested, and logs an ERROR for the flexible-shape refusal that
    :func:`_convert_flexible` handles: a wall of alarming lines in the middle of a working export.
    The manifest keeps them (``converter_log``) for whoever needs them.
    """

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines = [line.strip() for line in record.getMessage().splitlines() if line.strip()]
            into.append(f"{record.levelname}: {lines[0] if lines else ''}")

    # torch's own pytree module warns when coremltools registers an Enum at import: the converter's noise too.
    loggers = [logging.getLogger(name) for name in ("coremltools", "torch.utils._pytree")]
    saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [_Keep()], False
    try:
        yield
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved):
            logger.handlers, logger.propagate = handlers, propagate


def _convert_flexible(
    ct: Any, traced: Any, source: ExportSource, precision: str, options: ExportOptions, tail: _Fp32Tail
) -> tuple[Any, dict[str, Any]]:
    """Convert with flexible batch + H/W; on refusal, flexible batch at the fixed working size."""
    contract = source.contract
    try:
        return _convert(ct, traced, source, precision, options, tail, flexible_hw=True), {
            "batch": f"1..{options.coreml_max_batch}",
            "height_width": "flexible",
        }
    except Exception as exc:  # coremltools raises ValueError/NotImplementedError/RuntimeError from passes
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if contract.size_policy != "square":
        raise ExportError(
            f"Core ML: {source.name} converts only with a fixed image size ({reason}), but its contract's "
            f"size_policy is {contract.size_policy!r}: export a square-contract model for Core ML"
        )
    model = _convert(ct, traced, source, precision, options, tail, flexible_hw=False)
    size = contract.working_size
    return model, {
        "batch": f"1..{options.coreml_max_batch}",
        "height_width": f"fixed {size}x{size}",
        "flexible_hw_refused": reason,
    }


def _convert(
    ct: Any,
    traced: Any,
    source: ExportSource,
    precision: str,
    options: ExportOptions,
    tail: _Fp32Tail,
    flexible_hw: bool,
) -> Any:
    import numpy as np

    contract, batch = source.contract, ct.RangeDim(1, options.coreml_max_batch, 1)
    size = contract.working_size
    side_max = max(size, int(size * options.max_side_factor))
    hw = (ct.RangeDim(contract.size_multiple, side_max, size),) * 2 if flexible_hw else (size, size)
    inputs = [ct.TensorType(name="image", shape=ct.Shape((batch, 3, *hw)), dtype=np.float32)]
    if contract.fragments is not None:
        mosaic = contract.fragments.mosaic_size
        inputs.append(ct.TensorType(name="fragments", shape=ct.Shape((batch, 3, mosaic, mosaic)), dtype=np.float32))
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.transform.FP16ComputePrecision(op_selector=tail)
    tail.reset()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return ct.convert(
            traced,
            inputs=inputs,
            outputs=[ct.TensorType(name=SCORE_OUTPUT, dtype=np.float32)],
            convert_to="mlprogram",
            compute_precision=compute,
            minimum_deployment_target=getattr(ct.target, options.coreml_target),
        )


class _Fp32Tail:
    """``op_selector`` for FP16ComputePrecision: False (keep fp32) for ops downstream of ``raw``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.found = False
        self._tail: set[str] | None = None

    def __call__(self, op: Any) -> bool:
        if self._tail is None:
            self._tail = _downstream(op.enclosing_block.operations, RAW_SCORE_VAR)
            self.found = bool(self._tail)
        return op.name not in self._tail


def _downstream(operations: Any, var_name: str) -> set[str]:
    """Names of the ops that (transitively) consume the variable ``var_name``."""
    frontier = [op for op in operations if any(v.name == var_name for v in op.outputs)]
    tail: set[str] = set()
    while frontier:
        op = frontier.pop()
        for var in op.outputs:
            for child in var.child_ops:
                if child.name not in tail:
                    tail.add(child.name)
                    frontier.append(child)
    return tail


def _int8_weights(ct: Any, mlmodel: Any) -> Any:
    cto = require("coremltools.optimize.coreml", "coreml", "Core ML weight quantization")
    config = cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
    )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cto.linear_quantize_weights(mlmodel, config=config)


def check_spec(package: Path, input_names: tuple[str, ...]) -> dict[str, Any]:
    """Read the saved package's spec back; its inputs/outputs must be what the runtime feeds and reads."""
    ct = require("coremltools", "coreml", "Core ML export")
    spec = ct.utils.load_spec(str(package))
    inputs = [i.name for i in spec.description.input]
    outputs = [o.name for o in spec.description.output]
    if inputs != list(input_names) or outputs != [SCORE_OUTPUT]:
        raise ExportError(
            f"{package.name}: spec has inputs {inputs} / outputs {outputs}, expected "
            f"{list(input_names)} / ['{SCORE_OUTPUT}']"
        )
    if not spec.WhichOneof("Type") == "mlProgram":
        raise ExportError(f"{package.name}: not an ML program (got {spec.WhichOneof('Type')})")
    return {
        "inputs": inputs,
        "outputs": outputs,
        "specification_version": spec.specificationVersion,
        "type": "mlProgram",
    }
