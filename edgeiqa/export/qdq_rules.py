"""TensorRT 10/11 explicit-quantization rules for an ONNX Q/DQ graph, checked before any engine is built.

From TensorRT's operator reference (Quantize / Dequantize) and ``IQuantizeLayer`` docs, TRT 10 and 11:

* scale: a build-time constant (initializer or Constant), float, every coefficient strictly
  positive; a scalar (per-tensor) or 1-D (per-channel) — 2-D block scales are INT4/FP4 only;
* zero point: optional; if present, a constant of the quantized type with only zeros
  (TensorRT quantization is symmetric), same shape as the scale;
* quantized type: signed INT8 here (TensorRT also has INT4/FP8/FP4, never UINT8);
  ``DequantizeLinear`` inputs of another type, notably the INT32 biases ONNX Runtime writes by
  default (``QuantizeBias``), are rejected by the ONNX parser ("only activation types allowed as
  input to this layer": onnx/onnx-tensorrt#850, NVIDIA/TensorRT#3360);
* per-channel quantization of a weight is along its output channels: axis 0 for Conv and for a Gemm
  with ``transB=1``, axis 1 for ConvTranspose, MatMul and a Gemm without ``transB``.

Float layers between Q/DQ regions are fine (TensorRT runs them in the network's float type), so a
graph with ``keep_fp`` layers passes as long as every Q/DQ pair obeys the rules above.

What a maintained tool checks instead, and why every rule above stays here: NVIDIA Polygraphy's
``check lint`` now runs on every ``fp16``/``int8-trt``/``int8-qat`` artifact
(:mod:`edgeiqa.export.polygraphy_lint`); it covers what is generic to ONNX (the ONNX checker, a node by
node ONNX Runtime run, unused inputs and nodes), the ground :mod:`edgeiqa.export.onnx_checks` also
covers. Its TensorRT-aware check (``inspect capability``) needs TensorRT, which the export machine
lacks. So no rule moved: ``check lint`` passed graphs with a negative scale, a non-zero zero point, a
uint8 zero point and a per-channel weight scale on the input-channel axis, all valid ONNX that ONNX
Runtime runs and TensorRT refuses; INT32 bias dequantization and non-constant scales are valid ONNX
too, and 2-D scales are valid from opset 21. Until TensorRT itself can be asked, these stay ours.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_QDQ = ("QuantizeLinear", "DequantizeLinear")


def check_trt_qdq_rules(model: Any) -> list[str]:
    """Violations of the rules above in ``model`` (an ``onnx.ModelProto``); empty when TensorRT can take it."""
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    types = {i.name: i.data_type for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            types[node.output[0]] = node.attribute[0].t.data_type
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    problems: list[str] = []
    for node in graph.node:
        if node.op_type not in _QDQ:
            continue
        where = f"{node.op_type} {node.name or node.output[0]!r}"
        problems += _scale_problems(where, node, constants)
        problems += _zero_point_problems(where, node, constants)
        if node.op_type == "DequantizeLinear" and node.input[0] in types and types[node.input[0]] != TensorProto.INT8:
            kind = TensorProto.DataType.Name(types[node.input[0]])
            problems.append(f"{where}: dequantizes a {kind} constant; TensorRT takes INT8 only (biases stay float)")
        problems += _axis_problems(where, node, constants, consumers)
    return problems


def _scale_problems(where: str, node: Any, constants: dict[str, np.ndarray]) -> list[str]:
    if len(node.input) < 2 or node.input[1] not in constants:
        return [f"{where}: scale is not a build-time constant"]
    scale = constants[node.input[1]]
    problems = []
    if scale.ndim > 1:
        problems.append(f"{where}: scale has rank {scale.ndim}; INT8 takes a scalar or a 1-D (per-channel) scale")
    if not np.issubdtype(scale.dtype, np.floating) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        problems.append(f"{where}: scale must be finite and strictly positive (min {float(np.min(scale)):g})")
    return problems


def _zero_point_problems(where: str, node: Any, constants: dict[str, np.ndarray]) -> list[str]:
    if len(node.input) < 3 or not node.input[2]:
        return []
    if node.input[2] not in constants:
        return [f"{where}: zero point is not a build-time constant"]
    zero = constants[node.input[2]]
    problems = []
    if zero.dtype != np.int8:
        problems.append(f"{where}: zero point is {zero.dtype}; TensorRT quantizes to signed INT8 only")
    if np.any(zero != 0):
        problems.append(f"{where}: zero point is not 0 (TensorRT quantization is symmetric)")
    if len(node.input) > 1 and node.input[1] in constants and constants[node.input[1]].shape != zero.shape:
        problems.append(f"{where}: zero point shape {zero.shape} differs from the scale's")
    return problems


def _axis_problems(
    where: str, node: Any, constants: dict[str, np.ndarray], consumers: dict[str, list[Any]]
) -> list[str]:
    """Per-channel DQ of a weight must run along the output channels of the layer that reads it."""
    if node.op_type != "DequantizeLinear" or node.input[0] not in constants:
        return []
    scale = constants.get(node.input[1]) if len(node.input) > 1 else None
    if scale is None or scale.size <= 1:
        return []
    rank = constants[node.input[0]].ndim
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    axis = axis + rank if axis < 0 else axis
    problems = []
    for reader in consumers.get(node.output[0], []):
        expected = _output_channel_axis(reader)
        if reader.input and reader.input[0] == node.output[0] and reader.op_type in ("Conv", "ConvTranspose"):
            continue  # a per-channel DQ on the data input is not a weight
        if expected is not None and len(reader.input) > 1 and reader.input[1] == node.output[0] and axis != expected:
            problems.append(
                f"{where}: per-channel axis {axis} of the weight of {reader.op_type} "
                f"{reader.name!r} is not its output-channel axis {expected}"
            )
    return problems


def _output_channel_axis(node: Any) -> int | None:
    if node.op_type == "Conv":
        return 0
    if node.op_type in ("ConvTranspose", "MatMul"):
        return 1
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return None
