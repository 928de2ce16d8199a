"""ONNX FP32 / FP16 export: dynamic axes, the score calibration in the graph, float32 I/O, the gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from export_helpers import FIT
from onnx import TensorProto, numpy_helper

from edgeiqa.export import ExportOptions, ParityError, export_artifact, verify_artifact
from edgeiqa.export.onnx_export import graph_dims
from edgeiqa.runtime.manifest import read_manifest
from edgeiqa.runtime.predictor import Predictor


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_fp32_has_named_dynamic_axes_and_runs_any_size(model, calib, val, tmp_path):
    result = export_artifact(model, "onnx", "fp32", tmp_path, val=val)
    graph = onnx.load(str(result.artifact))
    assert graph_dims(graph) == {
        "image": ["batch", 3, "height", "width"],
        "fragments": ["batch", 3, 16, 16],
        "score": ["batch"],
    }
    assert graph.opset_import[0].version == 17
    assert result.manifest.extra["export"]["fp32"]["slimmed"] is True
    image = torch.randn(3, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    frags = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(image, frags).numpy()
    got = _session(result.artifact).run(["score"], {"image": image.numpy(), "fragments": frags.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_score_calibration_is_inside_the_graph(model, val, tmp_path):
    result = export_artifact(model, "onnx", "fp32", tmp_path, val=val)
    names = [n.name for n in onnx.load(str(result.artifact)).graph.node]
    assert any(n.startswith("/calibration/") for n in names)
    feed = {k: v[None] for k, v in Predictor.load(result.artifact).preprocess(val.paths[0]).items()}
    with torch.no_grad():
        raw = model.model(*(torch.from_numpy(feed[k]) for k in ("image", "fragments"))).numpy()
    got = _session(result.artifact).run(["score"], feed)[0]
    np.testing.assert_allclose(got, FIT(raw), atol=1e-3)  # MOS scale, not the raw output
    assert result.manifest.score_mapping["params"] == list(FIT.params) and result.manifest.score_mapping["folded"]


def test_fp32_gate_numbers(model, val, tmp_path):
    parity = export_artifact(model, "onnx", "fp32", tmp_path, val=val).parity
    assert parity.verdict == "passed" and parity.verified and parity.reference == "torch"
    assert parity.rule == {
        "precision_class": "fp32",
        "max_abs_diff": 1e-3,
        "mean_abs_diff": None,
        "min_rank_agreement": 0.9999,
        "delta_srcc": None,
    }
    assert [(c.name, c.passed) for c in parity.checks] == [("max_abs_diff", True), ("rank_agreement", True)]
    assert parity.max_abs_diff < 1e-4 and parity.srcc_vs_reference == 1.0
    assert parity.reference_vs_mos["srcc"] == pytest.approx(1.0)  # the tiny scorer ranks by brightness
    assert parity.n == len(val) and parity.images["source"] == "val"


def test_fp16_keeps_float32_io_and_the_score_calibration_in_float32(model, val, tmp_path):
    result = export_artifact(model, "onnx", "fp16", tmp_path, val=val)
    graph = onnx.load(str(result.artifact))
    io_types = {v.name: v.type.tensor_type.elem_type for v in (*graph.graph.input, *graph.graph.output)}
    assert set(io_types.values()) == {TensorProto.FLOAT}
    assert any(i.data_type == TensorProto.FLOAT16 for i in graph.graph.initializer)
    inferred = onnx.shape_inference.infer_shapes(graph, strict_mode=True)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    sigmoid = next(n for n in graph.graph.node if n.name == "/calibration/Sigmoid")
    assert types[sigmoid.output[0]] == TensorProto.FLOAT
    conv = next(n for n in graph.graph.node if n.op_type == "Conv")
    assert types[conv.output[0]] == TensorProto.FLOAT16
    details = result.manifest.extra["export"]["fp16"]
    assert details["keep_fp32"] == ["head", "variance", "calibration"] and details["fp32_nodes"] >= 5
    parity = result.parity
    assert parity.passed and parity.rule["delta_srcc"] == 0.002 and parity.delta_srcc <= 0.002
    assert parity.srcc_vs_reference >= 0.999 and parity.rule["min_rank_agreement"] == 0.999
    assert 0 < parity.max_abs_diff < 0.2  # really computed in fp16, yet close on the MOS scale


def _perturb_initializer(path: Path) -> None:
    graph = onnx.load(str(path))
    init = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))  # the largest conv weight
    values = numpy_helper.to_array(init)
    noisy = values + np.random.default_rng(0).normal(0, 3 * np.abs(values).mean(), values.shape).astype(values.dtype)
    init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    onnx.save(graph, str(path))


def test_a_corrupted_artifact_fails_the_gate_and_is_recorded(model, val, tmp_path):
    result = export_artifact(model, "onnx", "fp32", tmp_path, val=val)
    before = result.manifest.sha256["artifact"]
    _perturb_initializer(result.artifact)
    with pytest.raises(ParityError, match=r"parity gate failed for onnx fp32: max_abs_diff = .* > 0.001 on 12 images"):
        verify_artifact(result.artifact, model, val)
    manifest = read_manifest(result.manifest_path)
    assert manifest.valid is False and manifest.parity_record.verdict == "failed"
    assert manifest.parity["previous_sha256"] == before != manifest.sha256["artifact"]
    with pytest.raises(Exception, match="marks this artifact as not valid"):
        Predictor.load(result.artifact)


def test_gate_failure_during_export_still_writes_everything(model, val, tmp_path, monkeypatch):
    from edgeiqa.export import onnx_export

    original = onnx_export.export_fp32

    def corrupting(source, path, options):
        details = original(source, path, options)
        _perturb_initializer(path)
        return details

    monkeypatch.setattr(onnx_export, "export_fp32", corrupting)
    with pytest.raises(ParityError) as info:
        export_artifact(model, "onnx", "fp32", tmp_path, val=val)
    result = info.value.result
    assert result.artifact.is_file() and result.failed and result.verdict == "failed"
    on_disk = json.loads(result.manifest_path.read_text())
    assert on_disk["valid"] is False and on_disk["parity"]["reason"].startswith("max_abs_diff = ")
    assert not list(tmp_path.glob(".export-*"))  # the work folder is gone
    monkeypatch.setattr(onnx_export, "export_fp32", original)
    again = export_artifact(model, "onnx", "fp32", tmp_path, val=val, raise_on_failure=False)
    assert again.verdict == "passed" and read_manifest(again.manifest_path).valid  # a good export replaces the bad one


def test_slim_that_changes_the_axes_is_refused(model, val, tmp_path, monkeypatch):
    import onnxslim

    def breaking(graph):
        graph.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 32
        return graph

    monkeypatch.setattr(onnxslim, "slim", breaking)
    with pytest.raises(Exception, match="onnxslim changed the graph's inputs/outputs"):
        export_artifact(model, "onnx", "fp32", tmp_path, val=val)
    assert (
        export_artifact(model, "onnx", "fp32", tmp_path, val=val, options=ExportOptions(slim=False)).verdict == "passed"
    )


def test_no_images_for_the_gate_is_an_error_before_any_work(model, tmp_path):
    with pytest.raises(Exception, match="the parity gate needs images"):
        export_artifact(model, "onnx", "fp32", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_second_export_of_the_same_weights_reuses_the_traced_graph(model, val, tmp_path):
    # Every ONNX/OpenVINO artifact of a run starts from the FP32 graph: traced once per weights and settings.
    import torch

    first = export_artifact(model, "onnx", "fp32", tmp_path / "a", val=val)
    again = export_artifact(model, "onnx", "fp16", tmp_path / "b", val=val)
    assert "reused" not in first.manifest.extra["export"]["fp32"]
    assert "reused" in again.manifest.extra["export"]["fp32"] and again.verdict == "passed"
    with torch.no_grad():
        next(model.parameters()).mul_(0.5)  # other weights: traced anew, and the gate still holds
    changed = export_artifact(model, "onnx", "fp32", tmp_path / "c", val=val)
    assert "reused" not in changed.manifest.extra["export"]["fp32"] and changed.verdict == "passed"
    assert changed.artifact.read_bytes() != first.artifact.read_bytes()
