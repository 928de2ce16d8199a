"""NVIDIA Polygraphy's ``check lint`` on the ONNX graphs meant for TensorRT: its verdict lands in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeiqa.export import export_artifact
from edgeiqa.export import polygraphy_lint as lint
from edgeiqa.runtime.manifest import read_manifest


def _lint_tools() -> None:
    for name in lint.NEEDS:
        pytest.importorskip(name)


def _broken_onnx(path: Path) -> Path:
    """A graph that cannot run: a Reshape of 192 values into 7."""
    from onnx import TensorProto, helper, numpy_helper, save

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="bad_reshape")],
        "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([7], np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return path


def test_fp16_and_int8_trt_artifacts_carry_the_lint_verdict(model, calib, val, tmp_path):
    _lint_tools()
    for precision in ("fp16", "int8-trt"):
        result = export_artifact(model, "onnx", precision, tmp_path, calib=calib, val=val)
        record = read_manifest(result.manifest_path).extra["polygraphy_lint"]
        assert record["verdict"] == "passed" and record["tool"].startswith("polygraphy check lint ")
        assert record["failing_nodes"] == [] and record["passing_nodes"] > 0
    fp32 = export_artifact(model, "onnx", "fp32", tmp_path, val=val)
    assert "polygraphy_lint" not in fp32.manifest.extra  # only the graphs a TensorRT engine is built from


def test_a_graph_that_cannot_run_fails_the_lint_with_its_messages(tmp_path):
    _lint_tools()
    record = lint.polygraphy_lint(_broken_onnx(tmp_path / "broken.onnx"))
    assert record["verdict"] == "failed"
    assert any(m["level"] == "exception" for m in record["messages"])
    assert json.loads(json.dumps(record)) == record  # JSON-ready, as the manifest stores it


def test_missing_polygraphy_is_recorded_as_not_run(tmp_path, monkeypatch):
    real = lint.importlib.util.find_spec
    monkeypatch.setattr(
        lint.importlib.util, "find_spec", lambda name, *a: None if name == "polygraphy" else real(name, *a)
    )
    record = lint.polygraphy_lint(tmp_path / "any.onnx")
    assert record == {
        "verdict": "not run",
        "tool": "polygraphy check lint",
        "reason": "polygraphy not installed (pip install 'edgeiqa[onnx]')",
    }


def test_a_report_is_summarised_into_a_verdict():
    report = {
        "summary": {"passing": ["a", "b"], "failing": ["c"]},
        "lint_entries": [{"level": "warning", "source": "onnx_graphsurgeon", "message": "unused input x", "nodes": []}],
    }
    summary = lint.summarise(report, 1, "polygraphy check lint 0.53.6")
    assert (summary["verdict"], summary["passing_nodes"], summary["failing_nodes"]) == ("failed", 2, ["c"])
    clean = lint.summarise({"summary": {"passing": ["a"], "failing": []}, "lint_entries": []}, 0, "t")
    assert clean["verdict"] == "passed" and clean["messages"] == []
