"""ONNX INT8 (QDQ, per-channel) calibrated on real images with ONNX Runtime's static quantization.

Two flavours, each for its target (DESIGN.md §5):

* ``int8``: activations QUInt8 (asymmetric), weights QInt8: the U8S8 kernels that are fast in ONNX
  Runtime on x86/ARM CPUs;
* ``int8-trt``: activations and weights QInt8, both symmetric (``ActivationSymmetric``,
  ``WeightSymmetric``): the explicit Q/DQ quantization TensorRT 10 and 11 consume.

The INT8 calibration runs here, not inside ``quantize_static``: ``quantize_static`` forwards only
``CalibTensorRangeSymmetric``, ``CalibMovingAverage(Constant)``, ``CalibMaxIntermediateOutputs`` and
``CalibPercentile`` to its calibrator (onnxruntime/quantization/quantize.py, ``calib_extra_options_keys``),
never ``num_bins`` / ``num_quantized_bins``; entropy calibration with its defaults (128/128) has a
single candidate threshold, the full range, and silently equals MinMax. So this module builds the
calibrator with :func:`create_calibrator` and the exact keys it reads (:meth:`Int8Settings.calibrator_options`),
feeds it chunk by chunk (bounded memory), and hands the resulting ranges to ``quantize_static``
through its calibration cache (``calibration_cache_path``, onnxruntime >= 1.26), or, on older
releases, through a calibrator stand-in that returns the same ranges.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from edgeiqa.errors import require
from edgeiqa.export.images import ImageSet, ort_calibration_reader
from edgeiqa.export.nodes import resolve_nodes
from edgeiqa.export.options import ExportOptions, Int8Settings
from edgeiqa.runtime.contract import PreprocessContract


@dataclass(frozen=True)
class QuantFlavour:
    """Quantization types of one INT8 flavour and the target it is for."""

    activation_type: str
    weight_type: str
    symmetric_activations: bool
    target: str


FLAVOURS = {
    "int8": QuantFlavour("QUInt8", "QInt8", False, "ONNX Runtime CPU (U8S8: unsigned activations, signed weights)"),
    "int8-trt": QuantFlavour("QInt8", "QInt8", True, "TensorRT 10/11 explicit Q/DQ (S8S8, symmetric)"),
}
_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
# What each calibrator class stores of its settings: read back to prove they reached it.
_CALIBRATOR_ATTRIBUTES = ("symmetric", "num_bins", "num_quantized_bins", "percentile", "moving_average")


def quantize_int8(fp32: Path, dst: Path, precision: str, calib: ImageSet, contract: PreprocessContract,
                  options: ExportOptions, work: Path) -> dict[str, Any]:
    """Quantize ``fp32`` into ``dst`` (QDQ) with ranges calibrated on ``calib``; returns the details."""
    onnx = require("onnx", "onnx", "INT8 quantization")
    shape_inference = require("onnxruntime.quantization.shape_inference", "onnx", "INT8 quantization")
    from edgeiqa.export.onnx_export import _check, smoke_run

    start = time.perf_counter()
    flavour, settings = FLAVOURS[precision], options.int8
    pre = work / "_quant_pre.onnx"
    # Shape inference + ORT's graph optimisations: quantization needs every tensor's type and shape.
    shape_inference.quant_pre_process(str(fp32), str(pre))
    excluded = resolve_nodes(onnx.load(str(pre)), options.keep_fp_with_calibration())
    paths = list(calib.paths[: settings.n_images])
    ranges, calibration = calibrate(pre, paths, contract, settings, flavour.symmetric_activations, work)
    extra = {"ActivationSymmetric": flavour.symmetric_activations, "WeightSymmetric": True}
    how = quantize_with_ranges(pre, dst, ranges, flavour, settings.per_channel, excluded, extra, work)
    _check(onnx.load(str(dst)), dst)
    smoke_run(dst)
    return {
        "flavour": precision, "target": flavour.target, "activation_type": flavour.activation_type,
        "weight_type": flavour.weight_type, "per_channel": settings.per_channel, "format": "QDQ",
        "extra_options": extra, "nodes_to_exclude": excluded, "calibration": calibration,
        "images": calib.describe() | {"used": len(paths)}, "ranges_handed_over_by": how,
        "seconds": round(time.perf_counter() - start, 3),
    }


def calibrate(model: Path, paths: Sequence[str], contract: PreprocessContract, settings: Int8Settings,
              symmetric: bool, work: Path) -> tuple[Any, dict[str, Any]]:
    """Activation ranges of ``model`` over ``paths`` (TensorsData) and a record of how they were measured."""
    calibrate_mod = require("onnxruntime.quantization.calibrate", "onnx", "INT8 calibration")
    method = getattr(calibrate_mod.CalibrationMethod, _METHODS[settings.method])
    options = settings.calibrator_options(symmetric)
    calibrator = calibrate_mod.create_calibrator(
        Path(model), None, augmented_model_path=str(work / "_augmented.onnx"), calibrate_method=method,
        extra_options=options,
    )
    seen: list[str] = []
    # The histogram calibrators print progress on stdout, which belongs to the CLI's own output.
    with contextlib.redirect_stdout(io.StringIO()):
        for chunk in _chunks(paths, settings.chunk):
            reader = ort_calibration_reader(chunk, contract)
            calibrator.collect_data(reader)
            seen.extend(reader.seen)
        ranges = calibrator.compute_data()
    record = {
        "method": settings.method, "calibrator": type(calibrator).__name__, "requested": options,
        "applied": {a: _plain(getattr(calibrator, a)) for a in _CALIBRATOR_ATTRIBUTES if hasattr(calibrator, a)},
        "images_seen": len(seen), "tensors": len(ranges.data),
    }
    return ranges, record


def quantize_with_ranges(model: Path, dst: Path, ranges: Any, flavour: QuantFlavour, per_channel: bool,
                         excluded: list[str], extra: dict[str, Any], work: Path) -> str:
    """Run ``quantize_static`` with precomputed ``ranges``; returns which hand-over path was used."""
    quantization = require("onnxruntime.quantization", "onnx", "INT8 quantization")
    kwargs = dict(
        quant_format=quantization.QuantFormat.QDQ, per_channel=per_channel,
        activation_type=getattr(quantization.QuantType, flavour.activation_type),
        weight_type=getattr(quantization.QuantType, flavour.weight_type),
        nodes_to_exclude=excluded, calibrate_method=ranges.calibration_method, extra_options=extra,
    )
    if "calibration_cache_path" in inspect.signature(quantization.quantize_static).parameters:
        from onnxruntime.quantization.calibrate import save_tensors_data

        cache = work / "_int8_ranges.json"
        save_tensors_data(ranges, cache)
        quantization.quantize_static(str(model), str(dst), None, calibration_cache_path=str(cache), **kwargs)
        return "calibration_cache_path"
    with _precomputed_calibrator(ranges):
        quantization.quantize_static(str(model), str(dst), _EmptyReader(), **kwargs)
    return "calibrator stand-in"


class _EmptyReader:
    """A calibration data reader with nothing to read (the ranges are already known)."""

    def get_next(self) -> None:
        return None


@contextlib.contextmanager
def _precomputed_calibrator(ranges: Any) -> Iterator[None]:
    """Make ``quantize_static`` (onnxruntime < 1.26, no calibration cache) use ``ranges`` as its result."""
    # importlib, not "import ... as": the package re-exports a *function* named quantize over the module.
    quantize_module = importlib.import_module("onnxruntime.quantization.quantize")

    class _Precomputed:
        def collect_data(self, reader: Any) -> None:
            return None

        def compute_data(self) -> Any:
            return ranges

    original = quantize_module.create_calibrator
    quantize_module.create_calibrator = lambda *args, **kwargs: _Precomputed()
    try:
        yield
    finally:
        quantize_module.create_calibrator = original


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _plain(value: Any) -> Any:
    """JSON-friendly form of a calibrator attribute (numpy scalars -> Python numbers)."""
    return value.item() if hasattr(value, "item") else value
