"""GMACs, parameters and on-disk size of an artifact, without torch.

Source order: the manifest's ``extra["gmacs"]`` / ``extra["params"]`` (written by the export layer
from the torch model), else a count over the ONNX graph at the benchmark's input shapes, else null
with the reason. The graph count follows :mod:`edgeiqa.models.info`'s convention: multiply-accumulates
of convolutions and matrix products only (Conv, ConvTranspose, Gemm, MatMul and their quantized
forms), per image (batch 1); element-wise work is ignored. Parameters are the elements of the weight
initializers (quantization scales and zero points and integer shape constants are not weights).
A graph whose BatchNorms were folded into convolutions counts slightly fewer parameters than the
torch model it came from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeiqa.runtime.manifest import ArtifactManifest

# node type -> (index of the data input, index of the weight input)
_WEIGHTED_OPS = {
    "Conv": (0, 1),
    "ConvInteger": (0, 1),
    "QLinearConv": (0, 3),
    "ConvTranspose": (0, 1),
    "MatMul": (0, 1),
    "MatMulInteger": (0, 1),
    "QLinearMatMul": (0, 3),
    "Gemm": (0, 1),
}
_QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")


def compute_info(
    manifest: ArtifactManifest | None, artifact: Path, input_shapes: Mapping[str, Sequence[int]]
) -> dict[str, Any]:
    """``{"gmacs", "params", "compute_source", "compute_note"}`` for one artifact (values may be None)."""
    extra = manifest.extra if manifest is not None else {}
    if extra.get("gmacs") is not None or extra.get("params") is not None:
        return {
            "gmacs": extra.get("gmacs"),
            "params": extra.get("params"),
            "compute_source": "manifest",
            "compute_note": None,
        }
    if artifact.suffix.lower() != ".onnx":
        return {
            "gmacs": None,
            "params": None,
            "compute_source": None,
            "compute_note": "not recorded in the manifest (extra.gmacs/params) and not counted for this format",
        }
    try:
        macs, params = onnx_macs_params(artifact, input_shapes)
    except Exception as exc:  # noqa: BLE001 - a count we cannot make is reported, never fatal
        return {
            "gmacs": None,
            "params": None,
            "compute_source": None,
            "compute_note": f"ONNX graph count failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})",
        }
    return {
        "gmacs": macs / 1e9 if macs is not None else None,
        "params": params,
        "compute_source": "onnx-graph",
        "compute_note": None if macs is not None else "shape inference left weighted nodes without shapes",
    }


def onnx_macs_params(path: Path, input_shapes: Mapping[str, Sequence[int]]) -> tuple[int | None, int]:
    """MACs of one forward pass at ``input_shapes`` (batch 1) and the weight count of an ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for value in model.graph.input:
        if value.name in input_shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, [1, *list(input_shapes[value.name])[1:]]):
                dim.ClearField("dim_param")
                dim.dim_value = int(size)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    shapes = _known_shapes(inferred)
    macs = 0
    for node in inferred.graph.node:
        if node.op_type in _WEIGHTED_OPS:
            count = _node_macs(node, shapes)
            if count is None:
                return None, _param_count(inferred)
            macs += count
    return macs, _param_count(inferred)


def _known_shapes(model: Any) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {t.name: list(t.dims) for t in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    return shapes


def _node_macs(node: Any, shapes: dict[str, list[int]]) -> int | None:
    data_i, weight_i = _WEIGHTED_OPS[node.op_type]
    if len(node.input) <= weight_i:
        return None
    x, w, y = shapes.get(node.input[data_i]), shapes.get(node.input[weight_i]), shapes.get(node.output[0])
    if x is None or w is None or y is None:
        return None
    if node.op_type.startswith(("Conv", "QLinearConv")) and node.op_type != "ConvTranspose":
        return math.prod(y) * math.prod(w[1:])  # each output: C_in/groups x kernel MACs
    if node.op_type == "ConvTranspose":
        return math.prod(x) * math.prod(w[1:])  # each input pixel scatters into C_out/groups x kernel
    if node.op_type == "Gemm":
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)
        return math.prod(y) * (x[0] if trans_a else x[-1])
    return math.prod(y) * x[-1]  # MatMul family: K is A's last dimension


def _param_count(model: Any) -> int:
    from onnx import TensorProto

    weight_types = {
        TensorProto.FLOAT,
        TensorProto.FLOAT16,
        TensorProto.BFLOAT16,
        TensorProto.DOUBLE,
        TensorProto.INT8,
        TensorProto.UINT8,
    }
    # Scales and zero points (inputs 1 and 2 of the (de)quantizers) describe weights; they are not weights.
    quant_meta = {name for node in model.graph.node if node.op_type in _QUANT_OPS for name in node.input[1:]}
    return sum(
        math.prod(t.dims) for t in model.graph.initializer if t.data_type in weight_types and t.name not in quant_meta
    )


def artifact_size_bytes(path: Path) -> int:
    """Bytes on disk: a file, a directory artifact (``.mlpackage``), plus an OpenVINO ``.bin`` or an
    ONNX external-data file (``<name>.data``) beside it."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    total = path.stat().st_size
    for sibling in (
        path.with_suffix(".bin") if path.suffix.lower() == ".xml" else None,
        path.with_name(path.name + ".data"),
    ):
        if sibling is not None and sibling.is_file():
            total += sibling.stat().st_size
    return total
