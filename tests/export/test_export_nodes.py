"""keep_fp names -> ONNX node names, and FP16 conversion of a graph whose float32 part shares a constant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeiqa.errors import ConfigError
from edgeiqa.export.errors import ExportError
from edgeiqa.export.nodes import resolve_nodes, unshare_constants
from edgeiqa.export.onnx_export import convert_fp16


def _graph() -> onnx.ModelProto:
    """Two convs (one per input), a std pooling, a head and a score calibration sharing ``scale``."""
    f32 = TensorProto.FLOAT
    init = [
        numpy_helper.from_array(np.full((4, 3, 1, 1), 0.5, np.float32), "w_image"),
        numpy_helper.from_array(np.full((4, 3, 1, 1), 0.25, np.float32), "w_frag"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
        numpy_helper.from_array(np.array(1e-6, np.float32), "eps"),
        numpy_helper.from_array(np.array(3.0, np.float32), "scale"),
    ]
    node = helper.make_node
    nodes = [
        node("Conv", ["image", "w_image"], ["a"], name="/model/stem/Conv"),
        node("Conv", ["fragments", "w_frag"], ["b"], name="/model/frag/Conv"),
        node("ReduceMean", ["a"], ["mean"], name="/model/ReduceMean", axes=[2, 3], keepdims=1),
        node("Sub", ["a", "mean"], ["dev"], name="/model/Sub"),
        node("Pow", ["dev", "two"], ["sq"], name="/model/Pow"),
        node("ReduceMean", ["sq"], ["var"], name="/model/ReduceMean_1", axes=[1, 2, 3], keepdims=0),
        node("Add", ["var", "eps"], ["var_eps"], name="/model/Add"),
        node("Sqrt", ["var_eps"], ["std"], name="/model/Sqrt"),
        node("ReduceMean", ["b"], ["fmean"], name="/model/ReduceMean_2", axes=[1, 2, 3], keepdims=0),
        node("Add", ["std", "fmean"], ["pooled"], name="/model/Add_1"),
        node("Mul", ["pooled", "scale"], ["raw"], name="/model/head/Mul"),
        node("Mul", ["raw", "scale"], ["score"], name="/calibration/Mul"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("image", f32, ["batch", 3, "height", "width"]),
            helper.make_tensor_value_info("fragments", f32, ["batch", 3, 8, 8]),
        ],
        [helper.make_tensor_value_info("score", f32, ["batch"])],
        init,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_groups_paths_and_exact_names():
    model = _graph()
    assert resolve_nodes(model, ["head"]) == ["/model/head/Mul"] == resolve_nodes(model, ["model.head"])
    assert resolve_nodes(model, ["first_conv"]) == ["/model/stem/Conv", "/model/frag/Conv"]
    assert resolve_nodes(model, ["variance"]) == [
        "/model/Sub",
        "/model/Pow",
        "/model/ReduceMean_1",
        "/model/Add",
        "/model/Sqrt",
    ]
    assert resolve_nodes(model, ["/model/Pow", "calibration"]) == ["/model/Pow", "/calibration/Mul"]


def test_unknown_names_are_errors_but_optional_groups_are_not():
    model = _graph()
    with pytest.raises(ConfigError, match="keep_fp entry 'heads' matches no node"):
        resolve_nodes(model, ["heads"])
    model.graph.node.remove(model.graph.node[-1])  # no score calibration: fine, it is optional
    assert resolve_nodes(model, ["calibration"]) == []


def test_blocked_nodes_get_their_own_copy_of_shared_constants():
    model = _graph()
    assert unshare_constants(model, ["/calibration/Mul"]) == 1
    calibration = next(n for n in model.graph.node if n.name == "/calibration/Mul")
    head = next(n for n in model.graph.node if n.name == "/model/head/Mul")
    assert list(calibration.input) == ["raw", "scale__fp32"] and list(head.input) == ["pooled", "scale"]
    assert unshare_constants(model, ["/model/head/Mul", "/calibration/Mul"]) == 0  # nothing shared any more


def test_fp16_with_only_the_calibration_kept_float32_runs(tmp_path: Path, monkeypatch):
    src = tmp_path / "g.onnx"
    onnx.save(_graph(), str(src))
    with monkeypatch.context() as patch:  # the converter's own result: a mixed-type node, refused
        patch.setattr("edgeiqa.export.onnx_export.unshare_constants", lambda model, blocked: 0)
        with pytest.raises(ExportError, match=r"/model/head/Mul\): B has inconsistent type tensor\(float\)"):
            convert_fp16(src, tmp_path / "bad.onnx", ("calibration",))
    details = convert_fp16(src, tmp_path / "g16.onnx", ("calibration",))
    assert details["constants_unshared"] == 1 and details["outputs_recast_to_fp32"] == ["score"]
    feed = {
        "image": np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32),
        "fragments": np.ones((2, 3, 8, 8), np.float32),
    }
    full, half = (
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        for p in (src, tmp_path / "g16.onnx")
    )
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, full, rtol=2e-3)
