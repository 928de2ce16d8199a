"""LiteRT export: litert-torch FP32 gated against torch, FP16/INT8 through ai-edge-quantizer, the op list.

One conversion per module (litert-torch takes tens of seconds on two shared cores); FP16 and INT8 are
quantized from that FP32 file with the exporter's own functions, which take about a second.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")

from export_helpers import tiny_model, write_images  # noqa: E402

from edgeiqa.export import ExportOptions, ImageSet, export_artifact  # noqa: E402
from edgeiqa.export.errors import ExportError  # noqa: E402
from edgeiqa.export.images import iter_feeds  # noqa: E402
from edgeiqa.export.litert_export import FlatGraph, builtin_ops, quantize_fp16, quantize_int8  # noqa: E402
from edgeiqa.export.source import load_export_source  # noqa: E402
from edgeiqa.metrics import srcc  # noqa: E402
from edgeiqa.runtime.manifest import read_manifest  # noqa: E402
from edgeiqa.runtime.predictor import Predictor  # noqa: E402
from edgeiqa.runtime.runners.litert_runner import LiteRTRunner  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("litert_images")
    calib = ImageSet.from_paths(write_images(folder / "calib", 12, seed=1, prefix="cal"), source="calib")
    paths = write_images(folder / "val", 12, seed=2, prefix="val")
    val = ImageSet.from_paths(paths, mos=[10.0 + 5 * i for i in range(len(paths))], source="val")
    return calib, val


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, images):
    calib, val = images
    source = load_export_source(tiny_model())
    result = export_artifact(source, "litert", "fp32", tmp_path_factory.mktemp("litert"), calib=calib, val=val)
    return source, result


def _torch_scores(source, paths):
    import torch

    with torch.no_grad():
        return np.concatenate(
            [
                source.model(*(torch.from_numpy(f[n]) for n in source.input_names)).numpy()
                for f in iter_feeds(paths, source.contract, 4)
            ]
        )


def test_fp32_manifest_records_builtin_ops_and_predictor_matches_torch(fp32, images):
    source, result = fp32
    _, val = images
    manifest = read_manifest(result.manifest_path)
    assert manifest.format == "litert" and result.artifact.suffix == ".tflite" and manifest.valid
    ops = manifest.extra["export"]["ops"]
    assert ops["builtin_only"] and ops["flex_ops"] == [] and ops["custom_ops"] == []
    # TinyScorer: convolutions, a bilinear resize, means and a fully connected head, plus the 4PL's LOGISTIC
    assert {"CONV_2D", "RESIZE_BILINEAR", "MEAN", "FULLY_CONNECTED", "LOGISTIC"} <= set(ops["by_type"])
    assert sum(ops["by_type"].values()) == ops["count"]
    assert manifest.inputs[0] == {"name": "image", "shape": [1, 3, 32, 32], "dtype": "float32"}
    parity = result.parity
    assert parity.passed and parity.max_abs_diff <= 1e-3 and parity.backend["backend"] == "litert"
    assert parity.backend["xnnpack"] and parity.backend["delegate_nodes"] >= 1  # XNNPACK took the graph
    with Predictor.load(result.artifact) as predictor:  # the runtime reads the format from the manifest
        scores = predictor(list(val.paths), batch_size=5)  # batches of 5 through a batch-1 model
        assert predictor.info()["format"] == "litert"
    expected = _torch_scores(source, val.paths)
    assert np.max(np.abs(scores - expected)) <= 1e-3
    assert np.all(np.diff(scores) > 0)  # brighter images score higher, as in torch


def test_fp16_and_int8_keep_the_ranking_and_a_float_score(fp32, images, tmp_path):
    source, result = fp32
    calib, val = images
    expected = _torch_scores(source, val.paths)
    fp16, int8 = tmp_path / "m_fp16.tflite", tmp_path / "m_int8.tflite"
    quantize_fp16(result.artifact, fp16)
    details = quantize_int8(result.artifact, int8, calib, source, ExportOptions())
    assert details["calibration"]["images_seen"] == len(calib)
    # the score calibration and everything after it stay float, so the output is a float score
    assert details["kept_float"]["by_type"].get("LOGISTIC") == 1
    assert "DEQUANTIZE" in builtin_ops(int8)["by_type"]  # int8 activations back to float before the 4PL
    for path, limit in ((fp16, 0.05), (int8, 2.0)):
        with LiteRTRunner(path, threads=1) as runner:
            scores = np.concatenate([runner.infer(f)["score"] for f in iter_feeds(val.paths, source.contract, 1)])
            assert runner.info()["inputs"]["image"]["quantized"] == (path == int8)
        assert scores.dtype == np.float32
        assert np.max(np.abs(scores - expected)) < limit
        assert srcc(scores, expected) > 0.99


def test_int8_refuses_calibration_methods_it_cannot_apply(fp32, images, tmp_path):
    from edgeiqa.errors import ConfigError
    from edgeiqa.export.options import Int8Settings

    source, result = fp32
    options = ExportOptions(int8=Int8Settings(method="entropy"))
    with pytest.raises(ConfigError, match="LiteRT int8 calibrates with min/max only"):
        quantize_int8(result.artifact, tmp_path / "x.tflite", images[0], source, options)


def test_a_flex_op_is_refused(fp32, tmp_path):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    _, result = fp32
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(result.artifact.read_bytes(), 0))
    code = model.operatorCodes[0]
    code.builtinCode, code.deprecatedBuiltinCode, code.customCode = 32, 32, "FlexConv2D"  # 32: CUSTOM
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    flex = tmp_path / "flex.tflite"
    flex.write_bytes(bytes(builder.Output()))
    assert "FlexConv2D" in FlatGraph.read(flex).custom
    with pytest.raises(ExportError, match="Flex \\(Select TF\\) ops.*FlexConv2D"):
        builtin_ops(flex)
