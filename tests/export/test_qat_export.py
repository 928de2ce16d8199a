"""``onnx int8-qat``: a QAT student's own Q/DQ graph, TensorRT's rules, ONNX Runtime parity, the float-reference
gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from export_helpers import tiny_model
from onnx import TensorProto, numpy_helper

from edgeiqa.errors import ConfigError
from edgeiqa.export.exporter import export_artifact
from edgeiqa.export.formats import FORMATS, QAT_PRECISION, precision_class
from edgeiqa.export.images import ImageSet, iter_feeds
from edgeiqa.export.onnx_qat import qdq_coverage
from edgeiqa.export.options import ExportOptions
from edgeiqa.export.qdq_rules import check_trt_qdq_rules
from edgeiqa.export.source import load_export_source
from edgeiqa.models.fake_quant import QuantSettings, calibrate_activations, quantize_model, weight_scales


@pytest.fixture(scope="module")
def qat_model(image_dir):
    """The tiny scorer fake-quantized (its Linear head kept float), ranges from the calibration images."""
    model = tiny_model()
    quantize_model(model.model, QuantSettings(activation_calibration="max"))
    paths = sorted((image_dir / "calib").iterdir())

    def batches():
        for feed in iter_feeds(paths, model.contract, 4):
            yield tuple(torch.from_numpy(feed[name]) for name in model.contract.input_names)

    calibrate_activations(model, batches, QuantSettings(activation_calibration="max"))
    return model.eval()


@pytest.fixture(scope="module")
def qat_export(qat_model, image_dir, tmp_path_factory):
    """The int8-qat export of ``qat_model``, gated against the float tiny scorer (as a QAT checkpoint is)."""
    source = load_export_source(qat_model)
    source.reference, source.reference_name = tiny_model(), "torch float tiny scorer"
    paths = sorted((image_dir / "val").iterdir())
    val = ImageSet.from_paths(paths, mos=[10.0 + 5 * i for i in range(len(paths))], source="val")
    result = export_artifact(source, "onnx", QAT_PRECISION, tmp_path_factory.mktemp("qat_export"), val=val)
    return source, result, val


def test_every_quantized_layer_has_qdq_on_input_and_int8_weight_and_tensorrt_takes_it(qat_model, qat_export):
    _, result, _ = qat_export
    model = onnx.load(str(result.artifact))
    coverage = qdq_coverage(model)
    assert sorted(coverage["quantized"]) == ["/model/down/Conv", "/model/frag/Conv", "/model/stem/Conv"]
    assert coverage["float"] == ["/model/head/Gemm"] and coverage["partial"] == []  # keep_fp: head
    assert check_trt_qdq_rules(model) == []
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    initializers = {i.name: i for i in graph.initializer}
    for name, module in (("stem", qat_model.model.stem), ("down", qat_model.model.down)):
        conv = next(n for n in graph.node if n.name == f"/model/{name}/Conv")
        data_dq, weight_dq = producer[conv.input[0]], producer[conv.input[1]]
        weight = initializers[weight_dq.input[0]]
        assert weight.data_type == TensorProto.INT8  # stored as INT8, not quantized at run time
        scale = numpy_helper.to_array(initializers[weight_dq.input[1]])
        np.testing.assert_allclose(scale, weight_scales(module.weight).numpy(), rtol=1e-6)  # per output channel
        levels = numpy_helper.to_array(weight).astype(np.float32)
        np.testing.assert_array_equal(levels, np.rint(module.weight.detach().numpy() / scale.reshape(-1, 1, 1, 1)))
        act_scale = numpy_helper.to_array(initializers[data_dq.input[1]])
        assert act_scale.shape == () and act_scale == pytest.approx(float(module.input_quantizer.amax) / 127, rel=1e-6)
    details = result.manifest.extra["export"]["qat"]
    assert details["quantized_layers"] == 3 and details["int8_weight_initializers"] == 3


def test_onnx_runtime_reproduces_the_fake_quant_torch_model(qat_model, qat_export):
    from edgeiqa.runtime.runners import OnnxRuntimeRunner

    _, result, val = qat_export
    with OnnxRuntimeRunner(result.artifact, providers=["cpu"]) as runner, torch.no_grad():
        for feed in iter_feeds(val.paths, qat_model.contract, 6):
            want = qat_model(*(torch.from_numpy(feed[n]) for n in qat_model.contract.input_names)).numpy()
            np.testing.assert_allclose(runner.infer(feed)["score"], want, rtol=0, atol=1e-4)  # MOS 10..90: ~1e-5


def test_the_gate_compares_with_the_float_reference_not_the_fake_quant_self(qat_export):
    source, result, val = qat_export
    record = result.parity
    assert record.verdict == "passed" and record.reference == "torch float tiny scorer"
    assert result.manifest.precision == QAT_PRECISION and result.manifest.valid
    assert result.manifest.extra["quantization"]["parity_reference"] == "torch float tiny scorer"
    from edgeiqa.metrics import srcc

    float_scores = []
    with torch.no_grad():
        for feed in iter_feeds(val.paths, source.contract, 12):
            float_scores.append(source.reference(*(torch.from_numpy(feed[n]) for n in source.input_names)).numpy())
    assert record.reference_vs_mos["srcc"] == pytest.approx(srcc(np.concatenate(float_scores), val.mos))
    assert record.max_abs_diff > 1e-3  # INT8 against float: a real difference (the self-comparison is ~1e-5)


def test_the_format_table_and_the_source_rules(qat_model, calib, val, tmp_path):
    onnx_format = FORMATS["onnx"]
    assert QAT_PRECISION in onnx_format.precisions and precision_class(QAT_PRECISION) == "int8"
    assert not onnx_format.needs_calibration(QAT_PRECISION)  # the ranges are in the checkpoint
    with pytest.raises(ConfigError, match="is fake-quantized .* exports as onnx int8-qat, not onnx int8-trt"):
        export_artifact(qat_model, "onnx", "int8-trt", tmp_path, calib=calib, val=val)
    with pytest.raises(ConfigError, match="onnx int8-qat exports a quantization-aware student and .* is not one"):
        export_artifact(tiny_model(), "onnx", QAT_PRECISION, tmp_path, val=val)
    with pytest.raises(ConfigError, match="needs onnxslim's constant folding"):
        export_artifact(qat_model, "onnx", QAT_PRECISION, tmp_path, val=val, options=ExportOptions(slim=False))
    with pytest.raises(ConfigError, match="drop 'auto' for int8-qat"):
        export_artifact(
            qat_model, "onnx", QAT_PRECISION, tmp_path, val=val, options=ExportOptions(keep_fp=("head", "auto:0.99"))
        )
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".onnx"]


def test_tensorrt_builds_the_qat_graph_by_explicit_quantization(qat_model, qat_export, tmp_path, monkeypatch):
    from edgeiqa.export import tensorrt as trt_export

    _, result, _ = qat_export
    for major in (10, 11):
        plan = trt_export.plan_for_onnx(result.artifact, "int8", tmp_path / "m.engine", trt_major=major)
        assert (plan.graph_precision, plan.path, plan.builder_flags) == ("int8-qdq", "strongly-typed", ())
    built_from = []

    class Stop(Exception):
        pass

    def fake_build(onnx_path, precision, engine, **_kwargs):
        built_from.append((Path(onnx_path).name, precision, check_trt_qdq_rules(onnx.load(str(onnx_path)))))
        raise Stop

    monkeypatch.setattr(trt_export, "import_tensorrt", lambda: None)
    monkeypatch.setattr(trt_export, "build_engine", fake_build)
    with pytest.raises(Stop):  # a QAT source's engine is built from its own Q/DQ, with no calibration images
        export_artifact(qat_model, "tensorrt", "int8", tmp_path)
    assert built_from == [("_engine_source_int8-qat.onnx", "int8", [])]


# ---------------------------------------------------------------------------- from a trained QAT checkpoint


def _val_images(cfg) -> ImageSet:
    from edgeiqa.distill.runs import load_splits

    return ImageSet.validation_from_table(load_splits(cfg.data).table, "val")


def test_a_qat_checkpoint_exports_gated_against_the_run_float_student(qat_run, tmp_path):
    cfg, *_ = qat_run
    qat_final = Path(cfg.out) / "student" / "qat_final"
    result = export_artifact(qat_final, "onnx", QAT_PRECISION, tmp_path, val=_val_images(cfg), raise_on_failure=False)
    assert result.parity.reference == "torch float student (final/epoch_0000)"
    assert result.manifest.extra["quantization"]["activation_calibration"] == "percentile"
    assert result.manifest.extra["export"]["qat"]["quantized_layers"] == 116
    assert check_trt_qdq_rules(onnx.load(str(result.artifact))) == []
    # The same reference as post-training int8-trt from final/: both INT8 paths answer to one rule.
    source = load_export_source(qat_final)
    float_source = load_export_source(Path(cfg.out) / "student" / "final")
    feed = next(iter_feeds(_val_images(cfg).paths, source.contract, 4))
    inputs = [torch.from_numpy(feed[n]) for n in source.input_names]
    with torch.no_grad():
        torch.testing.assert_close(source.reference_model(*inputs), float_source.model(*inputs), rtol=0, atol=0)


def test_a_missing_or_changed_float_reference_is_refused(qat_run, tmp_path):
    cfg, *_ = qat_run
    student = tmp_path / "student"
    shutil.copytree(Path(cfg.out) / "student" / "qat_final", student / "qat_final")
    with pytest.raises(ConfigError, match="the float student .* is gated against is missing; run the calibrate"):
        load_export_source(student / "qat_final")
    shutil.copytree(Path(cfg.out) / "student" / "final", student / "final")
    assert load_export_source(student / "qat_final").reference is not None
    state_file = next((student / "qat_final").glob("epoch_*/state.json"))
    state = json.loads(state_file.read_text())
    state["float_reference"]["sha256"] = "0" * 64  # as if final/ had been re-trained since the qat stage
    state_file.write_text(json.dumps(state))
    with pytest.raises(ConfigError, match="is not the 0{64} the QAT student was trained beside.*re-run the qat"):
        load_export_source(student / "qat_final")


def test_the_pipeline_exports_int8_qat_only_with_the_stage_on(qat_run):
    import dataclasses

    from edgeiqa.experiment import ArtifactConfig, export_problems

    cfg, *_ = qat_run
    with_qat = dataclasses.replace(cfg.export, artifacts=[ArtifactConfig("onnx", QAT_PRECISION)])
    assert export_problems(dataclasses.replace(cfg, export=with_qat)) == []
    off = dataclasses.replace(
        cfg,
        export=with_qat,
        student=dataclasses.replace(cfg.student, qat=dataclasses.replace(cfg.student.qat, enabled=False)),
    )
    assert export_problems(off) == [
        "export.artifacts[0].precision: int8-qat exports the quantization-aware student: set student.qat.enabled: true"
    ]
