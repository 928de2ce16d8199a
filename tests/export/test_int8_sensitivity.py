"""Per-layer INT8 sensitivity (one layer quantized at a time) and the TensorRT Q/DQ rule checker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgeiqa.export import ExportOptions
from edgeiqa.export.images import iter_feeds
from edgeiqa.export.onnx_export import export_fp32
from edgeiqa.export.onnx_int8 import quantize_int8
from edgeiqa.export.qdq_rules import check_trt_qdq_rules
from edgeiqa.export.sensitivity import (
    Scorer,
    isolate_layer,
    layer_sensitivity,
    plot_sensitivity,
    quantized_layers,
    ranked,
    read_sensitivity,
    write_sensitivity,
)
from edgeiqa.export.source import load_export_source


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, image_dir) -> dict[str, tuple[Path, Path]]:
    """(float pre-processed model, Q/DQ artifact) per flavour, for the tiny scorer."""
    from export_helpers import tiny_model

    from edgeiqa.export.images import ImageSet

    source = load_export_source(tiny_model())
    calib = ImageSet.from_folder(image_dir / "calib")
    from edgeiqa.export.reuse import forget_all

    forget_all()  # set up before the per-test reset: a real quantization leaves the pre-processed graph in work/
    out = {}
    for precision in ("int8", "int8-trt"):
        work = tmp_path_factory.mktemp(precision)
        fp32 = work / "fp32.onnx"
        export_fp32(source, fp32, ExportOptions())
        quantize_int8(fp32, work / "q.onnx", precision, calib, source.contract, ExportOptions(), work)
        out[precision] = (work / "_quant_pre.onnx", work / "q.onnx")
    return out


@pytest.mark.parametrize("precision", ["int8", "int8-trt"])
def test_one_row_per_quantized_layer_in_range(quantized, calib, model, tmp_path, precision):
    pre, qdq = quantized[precision]
    rows = layer_sensitivity(pre, qdq, calib.paths, model.contract)
    layers = quantized_layers(onnx.load(str(qdq)))
    assert [r.layer for r in rows] == [name for name, _ in layers] and len(rows) >= 3
    assert {"Conv"} <= {r.op_type for r in rows}
    assert not any("/head/" in r.layer or "/calibration/" in r.layer for r in rows)  # kept in float
    for row in rows:
        assert -1.0 <= row.rank_agreement <= 1.0 and row.mean_abs_delta >= 0.0
        assert row.tensor_error is None or row.tensor_error > 0  # SQNR in dB of real 8-bit rounding
    assert any(r.mean_abs_delta > 0 for r in rows)  # quantizing a layer alone does change scores
    saved = write_sensitivity(rows, tmp_path / "s.json")
    assert read_sensitivity(saved) == rows
    png = plot_sensitivity(rows, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_isolated_layer_has_qdq_only_in_front_of_that_layer(quantized, calib, model):
    pre, qdq = quantized["int8"]
    float_model, qdq_model = onnx.load(str(pre)), onnx.load(str(qdq))
    layer = next(name for name, op in quantized_layers(qdq_model) if op == "Conv")
    variant = isolate_layer(float_model, qdq_model, layer)
    onnx.checker.check_model(variant)
    readers = {i: n for n in variant.graph.node for i in n.input}
    dq_outputs = [n.output[0] for n in variant.graph.node if n.op_type == "DequantizeLinear"]
    assert dq_outputs and all(readers[o].name == layer for o in dq_outputs)
    scorer = Scorer(list(iter_feeds(calib.paths, model.contract, 4)))
    assert not np.array_equal(scorer.scores(variant), scorer.scores(float_model))


def test_a_corrupted_layer_ranks_most_sensitive(quantized, calib, model, tmp_path):
    pre, qdq = quantized["int8"]
    broken = onnx.load(str(qdq))
    victim = "/model/frag/Conv"
    # Weight scales x -40: this branch now answers darker = better, and loudly; only this layer's
    # variant carries it, so only its ranking breaks.
    _scale_weight(broken, victim, -40.0)
    path = tmp_path / "broken.onnx"
    onnx.save(broken, str(path))
    rows = ranked(layer_sensitivity(pre, path, calib.paths, model.contract))
    assert rows[0].layer == victim and rows[0].rank_agreement < 0.5
    assert all(r.rank_agreement > 0.9 for r in rows[1:])


def _scale_weight(model, layer: str, factor: float) -> None:
    node = next(n for n in model.graph.node if n.name == layer)
    dq = next(n for n in model.graph.node if n.output[0] == node.input[1])
    scale = next(i for i in model.graph.initializer if i.name == dq.input[1])
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * np.float32(factor), scale.name))


def test_trt_rules_pass_the_exporters_int8_trt_graph(quantized):
    assert check_trt_qdq_rules(onnx.load(str(quantized["int8-trt"][1]))) == []


def test_trt_rules_flag_u8s8_and_int32_bias(quantized):
    problems = check_trt_qdq_rules(onnx.load(str(quantized["int8"][1])))
    assert any("zero point is uint8" in p for p in problems)
    assert any("dequantizes a INT32 constant" in p for p in problems)  # ORT's default quantized bias


def test_trt_rules_flag_a_hand_broken_graph(quantized):
    model = onnx.load(str(quantized["int8-trt"][1]))
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    inits = {i.name: i for i in model.graph.initializer}
    zero, scale = inits[q.input[2]], inits[q.input[1]]
    zero.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(zero) + np.int8(3), zero.name))
    scale.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(scale), scale.name))
    problems = check_trt_qdq_rules(model)
    name = repr(q.name)
    assert f"QuantizeLinear {name}: zero point is not 0 (TensorRT quantization is symmetric)" in problems
    assert any(p.startswith(f"QuantizeLinear {name}: scale must be finite and strictly positive") for p in problems)
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    dq = next(n for n in model.graph.node if n.output[0] == conv.input[1])
    for attr in dq.attribute:
        if attr.name == "axis":
            attr.i = 1
    assert any("per-channel axis 1 of the weight of Conv" in p for p in check_trt_qdq_rules(model))


def test_a_quantized_scalar_weight_gets_a_tensor_error(tmp_path: Path) -> None:
    """A scalar initializer quantized on its own (a score-calibration constant) dequantizes to a numpy scalar;
    the SQNR of its layer is still computed (it once raised TypeError deep in ONNX Runtime)."""
    from onnx import TensorProto, helper

    from edgeiqa.export.sensitivity import tensor_errors

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    float_graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["y"], name="scale")],
        "f",
        [x],
        [y],
        [numpy_helper.from_array(np.array(0.37, dtype=np.float32), "s")],
    )
    qdq_graph = helper.make_graph(
        [
            helper.make_node("DequantizeLinear", ["s_quantized", "s_scale", "s_zero"], ["s_dq"], name="s_dq"),
            helper.make_node("Mul", ["x", "s_dq"], ["y"], name="scale"),
        ],
        "q",
        [x],
        [y],
        [
            numpy_helper.from_array(np.array(127, dtype=np.int8), "s_quantized"),
            numpy_helper.from_array(np.array(0.37 / 127, dtype=np.float32), "s_scale"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "s_zero"),
        ],
    )
    paths = []
    for name, graph in (("float", float_graph), ("qdq", qdq_graph)):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        paths.append(tmp_path / f"{name}.onnx")
        onnx.save(model, paths[-1])
    feeds = [{"x": np.arange(4, dtype=np.float32)[None]}]
    errors = tensor_errors(paths[0], paths[1], feeds, [("scale", "Mul")])
    assert errors["scale"] > 40  # 0.37 is exact to 1 part in 127 at int8: SQNR well above 40 dB
