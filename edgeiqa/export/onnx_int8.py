"""ONNX INT8 (QDQ, per-channel) calibrated on real images with ONNX Runtime's static quantization.

Two flavours, each for its target (docs/architecture.md, "Deployment facts"):

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

INT8 speed in ONNX Runtime 1.32 (timm ``efficientnet_lite0``, 384x384, batch 1, 2 threads; graphs
read back through ``SessionOptions.optimized_model_filepath``): the U8S8 per-channel QDQ graph
fuses completely — 49/49 convolutions become ``QLinearConv`` (NHWC, one Transpose pair at the
ends), ReLU6 (``Clip``) is folded into the activation range, no DQ -> Conv -> Q is left — so the
slowness is not a missing fusion. Per-tensor weights and QOperator give the same fused graph and
no faster. Keeping the depthwise convolutions in float is far slower (16 float Conv between 33
QLinearConv, 34 Transposes). The symmetric S8S8 graph (``int8-trt``) keeps 33 Clip and 14 Conv
unfused with 30 Transposes (a symmetric range cannot absorb ReLU6): that one is slow for a reason
of graph shape. On the 2 shared, heavily loaded cores of this machine no setting measured faster
than U8S8 per-channel QDQ, so it stays the ``int8`` default.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import inspect
import io
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeiqa.errors import require
from edgeiqa.export.errors import ExportError
from edgeiqa.export.images import ImageSet, ort_calibration_reader
from edgeiqa.export.nodes import name_unnamed_nodes, resolve_nodes, split_auto
from edgeiqa.export.onnx_checks import check_onnx, smoke_run
from edgeiqa.export.options import ExportOptions, Int8Settings
from edgeiqa.export.qdq_rules import check_trt_qdq_rules
from edgeiqa.export.reuse import FileMemo
from edgeiqa.runtime.contract import PreprocessContract


@dataclass(frozen=True)
class QuantFlavour:
    """Quantization types of one INT8 flavour and the target it is for."""

    activation_type: str
    weight_type: str
    symmetric_activations: bool
    target: str
    # TensorRT's parser refuses DequantizeLinear of INT32 (ORT's quantized biases): keep biases float.
    quantize_bias: bool = True

    def extra_options(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"ActivationSymmetric": self.symmetric_activations, "WeightSymmetric": True}
        if not self.quantize_bias:
            extra["QuantizeBias"] = False
        return extra


FLAVOURS = {
    "int8": QuantFlavour("QUInt8", "QInt8", False, "ONNX Runtime CPU (U8S8: unsigned activations, signed weights)"),
    "int8-trt": QuantFlavour(
        "QInt8", "QInt8", True, "TensorRT 10/11 explicit Q/DQ (S8S8, symmetric)", quantize_bias=False
    ),
}
_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
# What each calibrator class stores of its settings: read back to prove they reached it.
_CALIBRATOR_ATTRIBUTES = ("symmetric", "num_bins", "num_quantized_bins", "percentile", "moving_average")


# ``openvino int8-qdq`` converts the ``onnx int8`` graph: the repeat copies it (see edgeiqa.export.reuse).
_QUANTIZED = FileMemo("int8")


def _reuse_key(
    fp32: Path, precision: str, calib: ImageSet, contract: PreprocessContract, options: ExportOptions
) -> str:
    """Everything the quantized file depends on: the graph's bytes, the images (path, size, mtime), settings."""
    digest = hashlib.sha256(fp32.read_bytes())
    images = []
    for path in calib.paths[: options.int8.n_images]:
        try:
            stat = os.stat(path)
            images.append([path, stat.st_size, stat.st_mtime_ns])
        except OSError:
            images.append([path, None, None])
    settings = [precision, images, contract.to_dict(), dataclasses.asdict(options)]
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def quantize_int8(
    fp32: Path,
    dst: Path,
    precision: str,
    calib: ImageSet,
    contract: PreprocessContract,
    options: ExportOptions,
    work: Path,
) -> dict[str, Any]:
    """Quantize ``fp32`` into ``dst`` (QDQ) with ranges calibrated on ``calib``; returns the details.

    A second call with the same graph bytes, images and settings in this process copies the first
    call's file (its details say ``reused``): quantization is deterministic, so it would be the same.
    """
    start = time.perf_counter()
    key = _reuse_key(fp32, precision, calib, contract, options)
    details = _QUANTIZED.copy_to(key, dst)
    if details is not None:
        smoke_run(dst)
        return {
            **details,
            "reused": "same FP32 graph, images and settings as an earlier quantization in this "
            "process: its file was copied",
            "seconds": round(time.perf_counter() - start, 3),
        }
    details = _quantize_int8(fp32, dst, precision, calib, contract, options, work)
    _QUANTIZED.keep(key, dst, details)
    return details


def _quantize_int8(
    fp32: Path,
    dst: Path,
    precision: str,
    calib: ImageSet,
    contract: PreprocessContract,
    options: ExportOptions,
    work: Path,
) -> dict[str, Any]:
    onnx = require("onnx", "onnx", "INT8 quantization")
    shape_inference = require("onnxruntime.quantization.shape_inference", "onnx", "INT8 quantization")

    start = time.perf_counter()
    flavour, settings = FLAVOURS[precision], options.int8
    keep, budget = split_auto(options.keep_fp_with_calibration())
    pre = work / "_quant_pre.onnx"
    # Shape inference + ORT's graph optimisations: quantization needs every tensor's type and shape.
    shape_inference.quant_pre_process(str(fp32), str(pre))
    pre_model = onnx.load(str(pre))
    if name_unnamed_nodes(pre_model):  # nodes_to_exclude and the sensitivity address nodes by name
        onnx.save(pre_model, str(pre))
    excluded = resolve_nodes(pre_model, keep)
    paths = list(calib.paths[: settings.n_images])
    ranges, calibration = calibrate_int8_ranges(pre, paths, contract, settings, flavour.symmetric_activations, work)
    extra = flavour.extra_options()
    how = quantize_with_ranges(pre, dst, ranges, flavour, settings.per_channel, excluded, extra, work)
    unquantized = float_inputs(dst, pre_model, excluded)
    details: dict[str, Any] = {
        "flavour": precision,
        "target": flavour.target,
        "activation_type": flavour.activation_type,
        "weight_type": flavour.weight_type,
        "per_channel": settings.per_channel,
        "format": "QDQ",
        "extra_options": extra,
        "nodes_to_exclude": excluded,
        "calibration": calibration,
        "images": calib.describe() | {"used": len(paths)},
        "ranges_handed_over_by": how,
        "kept_fp_inputs_unquantized": unquantized,
    }
    if budget is not None:
        from edgeiqa.export.mixed_precision import search_keep_fp

        def requantize(extra_layers: list[str]) -> None:
            kept = [*excluded, *extra_layers]
            quantize_with_ranges(pre, dst, ranges, flavour, settings.per_channel, kept, extra, work)
            float_inputs(dst, pre_model, kept)

        auto = search_keep_fp(pre, dst, requantize, paths, contract, budget)
        details["keep_fp_auto"] = auto
        details["nodes_to_exclude"] = [*excluded, *(row["layer"] for row in auto["kept_fp"])]
    model = onnx.load(str(dst))
    check_onnx(model, dst)
    if precision == "int8-trt":
        problems = check_trt_qdq_rules(model)
        if problems:
            raise ExportError(
                f"{dst.name}: TensorRT would refuse this Q/DQ graph: {problems[0]} (and {len(problems) - 1} more)"
            )
        details["tensorrt_qdq_rules"] = "passed (edgeiqa.export.qdq_rules.check_trt_qdq_rules)"
    smoke_run(dst)
    details["seconds"] = round(time.perf_counter() - start, 3)
    return details


def float_inputs(path: Path, float_model: Any, kept: Sequence[str]) -> int:
    """Feed the kept-float nodes of the Q/DQ graph at ``path`` their float inputs; returns how many.

    ``quantize_static`` leaves an excluded node in float but still hands it the *dequantized*
    tensor whenever another reader (or the producer's own op rule) quantizes that tensor
    (``replace_input_of_all_nodes``): "kept in float" would compute on 8-bit-rounded inputs. Each
    such input is rewired to the float tensor the node reads in ``float_model`` (re-adding a Relu /
    Clip that quantization had folded into the range, when that is what it reads); Q/DQ nodes left
    without readers are dropped.
    """
    onnx = require("onnx", "onnx", "INT8 quantization")
    model = onnx.load(str(path))
    graph, kept_set = model.graph, set(kept)
    produced = {out for n in graph.node for out in n.output} | {i.name for i in graph.input}
    producer = {out: n for n in graph.node for out in n.output}
    float_nodes = {n.name: n for n in float_model.graph.node if n.name}
    float_producer = {out: n for n in float_model.graph.node for out in n.output}
    rewired, added = 0, []
    for node in graph.node:
        if node.name not in kept_set or node.name not in float_nodes:
            continue
        wanted = float_nodes[node.name].input
        for i, tensor in enumerate(node.input):
            dq = producer.get(tensor)
            if dq is None or dq.op_type != "DequantizeLinear" or i >= len(wanted) or dq.input[0] not in producer:
                continue  # not an activation Q/DQ (a weight's DQ reads an initializer)
            source = wanted[i]
            if source not in produced:
                act = float_producer.get(source)
                if act is None or act.op_type not in ("Relu", "Clip") or act.input[0] not in produced:
                    continue
                added.append(act)
                produced.add(source)
            node.input[i] = source
            rewired += 1
    if rewired:
        for act in added:  # right after the tensor it reads (graph order stays topological)
            position = next((k for k, n in enumerate(graph.node) if act.input[0] in n.output), -1) + 1
            graph.node.insert(position, act)
        _drop_dead_qdq(graph)
        onnx.save(model, str(path))
    return rewired


def _drop_dead_qdq(graph: Any) -> None:
    outputs = {o.name for o in graph.output}
    while True:
        read = {i for n in graph.node for i in n.input} | outputs
        dead = [
            n
            for n in graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(o in read for o in n.output)
        ]
        if not dead:
            read = {i for n in graph.node for i in n.input}
            unused = [i for i in graph.initializer if i.name not in read]
            for init in unused:  # the dropped pairs' scales and zero points
                graph.initializer.remove(init)
            return
        for node in dead:
            graph.node.remove(node)


def calibrate_int8_ranges(
    model: Path, paths: Sequence[str], contract: PreprocessContract, settings: Int8Settings, symmetric: bool, work: Path
) -> tuple[Any, dict[str, Any]]:
    """Activation ranges of ``model`` over ``paths`` (TensorsData) and a record of how they were measured."""
    calibrate_mod = require("onnxruntime.quantization.calibrate", "onnx", "INT8 calibration")
    method = getattr(calibrate_mod.CalibrationMethod, _METHODS[settings.method])
    options = settings.calibrator_options(symmetric)
    calibrator = calibrate_mod.create_calibrator(
        Path(model),
        None,
        augmented_model_path=str(work / "_augmented.onnx"),
        calibrate_method=method,
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
        "method": settings.method,
        "calibrator": type(calibrator).__name__,
        "requested": options,
        "applied": {a: _plain(getattr(calibrator, a)) for a in _CALIBRATOR_ATTRIBUTES if hasattr(calibrator, a)},
        "images_seen": len(seen),
        "tensors": len(ranges.data),
    }
    return ranges, record


def quantize_with_ranges(
    model: Path,
    dst: Path,
    ranges: Any,
    flavour: QuantFlavour,
    per_channel: bool,
    excluded: list[str],
    extra: dict[str, Any],
    work: Path,
) -> str:
    """Run ``quantize_static`` with precomputed ``ranges``; returns which hand-over path was used."""
    quantization = require("onnxruntime.quantization", "onnx", "INT8 quantization")
    kwargs = dict(
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=getattr(quantization.QuantType, flavour.activation_type),
        weight_type=getattr(quantization.QuantType, flavour.weight_type),
        nodes_to_exclude=excluded,
        calibrate_method=ranges.calibration_method,
        extra_options=extra,
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
        yield items[i : i + size]


def _plain(value: Any) -> Any:
    """JSON-friendly form of a calibrator attribute (numpy scalars -> Python numbers)."""
    return value.item() if hasattr(value, "item") else value
