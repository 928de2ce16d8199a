"""The ``int8-qat`` ONNX: a quantization-aware student's own Q/DQ graph, checked for TensorRT.

Which path writes the graph: the TorchScript exporter itself. In torch 2.14 ``torch.onnx.export(
dynamo=False)`` still maps ``aten::fake_quantize_per_tensor_affine`` / ``..._per_channel_affine`` with
range (-128, 127) to INT8 ``QuantizeLinear`` -> ``DequantizeLinear`` (``symbolic_opset13``), so tracing
the fake-quant student (:mod:`edgeiqa.models.fake_quant`) writes the explicit-quantization graph
TensorRT consumes, with the trained, calibrated scales; nothing is re-calibrated here. The traced
weight scales are a small subgraph (Abs -> ReduceMax -> Clip -> Div on each weight) and the zero
points a Cast: onnxslim's constant folding turns them into the build-time constants TensorRT requires
(and merges identical Q/DQ pairs of one tensor read by two layers), so this precision needs the slim
step; :func:`fold_weight_quantizers` then stores the weights as INT8 initializers. BatchNorm follows each Conv as
``BatchNormalization``: TensorRT folds it into the INT8
convolution, exactly, because the weight scales are per output channel.

:func:`check_qat_graph` then proves what the artifact claims: every fake-quant layer of the model is a
Conv/Gemm whose data input and weight both come from a ``DequantizeLinear`` (the weight's from a
constant), the weight layers left float are exactly the ``keep_fp`` ones, the graph passes
:func:`~edgeiqa.export.qdq_rules.check_trt_qdq_rules`, and ONNX Runtime runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.errors import require
from edgeiqa.export.errors import ExportError
from edgeiqa.export.onnx_checks import check_onnx, smoke_run
from edgeiqa.export.qdq_rules import check_trt_qdq_rules

WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")
_PASS_THROUGH = ("Identity",)


def _producer_through(producer: dict[str, Any], tensor: str) -> Any:
    node = producer.get(tensor)
    while node is not None and node.op_type in _PASS_THROUGH:
        node = producer.get(node.input[0])
    return node


def qdq_coverage(model: Any) -> dict[str, list[str]]:
    """Weighted nodes of ``model`` by quantization: ``quantized`` (Q/DQ on data and weight), ``float``
    (neither), ``partial`` (only one of the two: TensorRT would run it in float, a broken export)."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    constants = {i.name for i in graph.initializer} | {n.output[0] for n in graph.node if n.op_type == "Constant"}
    found: dict[str, list[str]] = {"quantized": [], "float": [], "partial": []}
    for node in graph.node:
        if node.op_type not in WEIGHTED_OPS or len(node.input) < 2:
            continue
        data, weight = (_producer_through(producer, name) for name in node.input[:2])
        data_dq = data is not None and data.op_type == "DequantizeLinear"
        weight_dq = (
            weight is not None
            and weight.op_type == "DequantizeLinear"
            and _constant_weight(weight, producer, constants)
        )
        kind = "quantized" if data_dq and weight_dq else "float" if not (data_dq or weight_dq) else "partial"
        found[kind].append(node.name or node.output[0])
    return found


def _constant_weight(dq: Any, producer: dict[str, Any], constants: set[str]) -> bool:
    """A weight DQ reads an INT8 constant, or a Q of a float constant (both are weights TensorRT takes)."""
    source = dq.input[0]
    if source in constants:
        return True
    quantize = producer.get(source)
    return quantize is not None and quantize.op_type == "QuantizeLinear" and quantize.input[0] in constants


def check_qat_graph(path: Path, quantized_layers: int) -> dict[str, Any]:
    """Check the traced ``int8-qat`` ONNX at ``path`` (see the module docstring); returns the details."""
    onnx = require("onnx", "onnx", "INT8 QAT export")
    model = onnx.load(str(path))
    folded = fold_weight_quantizers(model)
    check_onnx(model, path)
    onnx.save(model, str(path))
    coverage = qdq_coverage(model)
    if coverage["partial"]:
        raise ExportError(
            f"{path.name}: {len(coverage['partial'])} layer(s) have Q/DQ on only one of input and "
            f"weight (first: {coverage['partial'][0]}); TensorRT would not run them in INT8"
        )
    if len(coverage["quantized"]) != quantized_layers:
        raise ExportError(
            f"{path.name}: {len(coverage['quantized'])} Conv/Gemm nodes carry input and weight Q/DQ, "
            f"but the model has {quantized_layers} fake-quantized layers"
        )
    problems = check_trt_qdq_rules(model)
    if problems:
        raise ExportError(
            f"{path.name}: TensorRT would refuse this Q/DQ graph: {problems[0]} (and {len(problems) - 1} more)"
        )
    smoke_run(path)
    ops = [n.op_type for n in model.graph.node]
    return {
        "quantized_layers": len(coverage["quantized"]),
        "int8_weight_initializers": folded,
        "float_weighted_layers": coverage["float"],
        "quantize_nodes": ops.count("QuantizeLinear"),
        "dequantize_nodes": ops.count("DequantizeLinear"),
        "batchnorm_nodes_for_tensorrt_to_fold": ops.count("BatchNormalization"),
        "tensorrt_qdq_rules": "passed (edgeiqa.export.qdq_rules.check_trt_qdq_rules)",
    }


def fold_weight_quantizers(model: Any) -> int:
    """Store each weight as its INT8 values: ``QuantizeLinear(float constant)`` becomes an INT8 initializer.

    The trace quantizes the float weights at run time (Q -> DQ on an initializer); TensorRT and ONNX
    Runtime take ``DequantizeLinear(int8 initializer)`` just as well, and the file shrinks to about a
    quarter. The INT8 values are computed as ``QuantizeLinear`` defines them (float32 x / scale, rounded
    half to even, plus the zero point, saturated), so the graph's output does not change. Returns how many.
    """
    from onnx import numpy_helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    folded = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or len(node.input) < 3:
            continue
        weight, scale, zero = (initializers.get(name) for name in node.input[:3])
        if weight is None or scale is None or zero is None:
            continue  # an activation's Q: its input is computed at run time
        values = numpy_helper.to_array(weight).astype(np.float32)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        scale_values, zero_values = numpy_helper.to_array(scale), numpy_helper.to_array(zero)
        shape = [1] * values.ndim
        if scale_values.size > 1:
            shape[axis] = -1
        quantized = np.rint(values / scale_values.reshape(shape).astype(np.float32))
        quantized = np.clip(quantized + zero_values.reshape(shape).astype(np.float32), -128, 127).astype(np.int8)
        graph.initializer.append(numpy_helper.from_array(quantized, name=node.output[0]))
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    read = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in read and i.name not in {o.name for o in graph.output}]:
        graph.initializer.remove(init)
    return len(folded)
