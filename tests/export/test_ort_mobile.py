"""ONNX Runtime Mobile (.ort + reduced-operator config): exported, gated and scored like the .onnx it came from."""

from __future__ import annotations

import numpy as np
import pytest

from edgeiqa.export import export_artifact
from edgeiqa.export.ort_mobile import CONFIG_SUFFIX, read_config
from edgeiqa.runtime.manifest import read_manifest
from edgeiqa.runtime.predictor import Predictor


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_ort_format_runs_in_onnx_runtime_and_matches_the_onnx(model, calib, val, tmp_path, precision):
    result = export_artifact(model, "ort", precision, tmp_path / "ort", calib=calib, val=val)
    onnx = export_artifact(model, "onnx", precision, tmp_path / "onnx", calib=calib, val=val)
    assert result.artifact.name == f"tiny_scorer_{precision}.ort" and result.artifact.read_bytes()[4:8] == b"ORTM"
    config = result.artifact.with_name(f"tiny_scorer_{precision}{CONFIG_SUFFIX}")
    assert config.is_file()  # the minimal build's operator list, beside the model
    manifest = read_manifest(result.manifest_path)
    assert manifest.format == "ort" and manifest.valid and result.parity.passed
    ops = manifest.extra["export"]["ort"]["operators"]
    assert ops == read_config(config)
    names = {op for group in ops.values() for op in group}  # grouped by domain and op version
    assert {"Resize", "ReduceMean", "Sigmoid"} <= names and names & {"Conv", "FusedConv", "QLinearConv"}
    if precision == "int8":  # the QDQ pairs survive (or are fused into QLinear ops) in the mobile model
        assert any("QuantizeLinear" in op or op.startswith("QLinear") for op in names)
    with Predictor.load(result.artifact) as mobile, Predictor.load(onnx.artifact) as desktop:
        assert mobile.info()["runner"]["backend"] == "onnxruntime"
        ort_scores, onnx_scores = mobile(list(val.paths)), desktop(list(val.paths))
    assert np.max(np.abs(ort_scores - onnx_scores)) <= 1e-4
    assert np.all(np.diff(ort_scores) > 0)
