"""ONNX INT8: both flavours' Q/DQ types, kept-float parts, and INT8 calibration settings that really apply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from export_helpers import tiny_contract
from onnx import TensorProto, numpy_helper
from onnxruntime.quantization import calibrate as ort_calibrate
from PIL import Image

from edgeiqa.errors import ConfigError
from edgeiqa.export import ExportOptions, Int8Settings, export_artifact, onnx_int8
from edgeiqa.export.images import ort_calibration_reader
from edgeiqa.export.onnx_export import export_fp32
from edgeiqa.export.source import load_export_source


def _zero_points(path: Path) -> dict[str, np.ndarray]:
    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    return {
        n.input[2]: numpy_helper.to_array(inits[n.input[2]])
        for n in graph.node
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits
    }


@pytest.mark.parametrize("precision, activation", [("int8", TensorProto.UINT8), ("int8-trt", TensorProto.INT8)])
def test_both_flavours_are_qdq_of_their_type_and_pass_the_gate(model, calib, val, tmp_path, precision, activation):
    result = export_artifact(model, "onnx", precision, tmp_path, calib=calib, val=val)
    graph = onnx.load(str(result.artifact)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "QLinearConv" not in ops
    zps = _zero_points(result.artifact)
    inits = {i.name: i for i in graph.initializer}
    assert {inits[name].data_type for name in zps} == {activation}
    if precision == "int8-trt":  # symmetric: TensorRT takes only zero points of 0
        assert all(np.all(zp == 0) for zp in zps.values())
    details = result.manifest.extra["export"]["int8"]
    assert details["per_channel"] and details["format"] == "QDQ"
    expected = {"ActivationSymmetric": precision == "int8-trt", "WeightSymmetric": True}
    if precision == "int8-trt":  # TensorRT refuses INT32 (quantized-bias) DequantizeLinear: biases stay float
        expected["QuantizeBias"] = False
    assert details["extra_options"] == expected
    assert details["calibration"]["images_seen"] == len(calib)
    assert details["images"]["used"] == len(calib)
    parity = result.parity
    assert parity.passed and parity.rule["delta_srcc"] == 0.01 and parity.srcc_vs_reference == 1.0
    assert parity.rule["min_rank_agreement"] == 0.99 and 0 < parity.max_abs_diff < 1.0


def test_head_and_score_calibration_stay_float(model, calib, val, tmp_path):
    result = export_artifact(
        model, "onnx", "int8", tmp_path, calib=calib, val=val, options=ExportOptions(keep_fp=("head", "first_conv"))
    )
    excluded = result.manifest.extra["export"]["int8"]["nodes_to_exclude"]
    assert "/model/head/Gemm" in excluded and "/calibration/Sigmoid" in excluded
    assert "/model/stem/Conv" in excluded and "/model/frag/Conv" in excluded  # first conv of each input
    graph = onnx.load(str(result.artifact)).graph
    quantized_inputs = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    sigmoid = next(n for n in graph.node if n.name == "/calibration/Sigmoid")
    assert "score" in {o.name for o in graph.output}
    assert not set(sigmoid.input) & quantized_inputs
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] == "score" for n in graph.node)


def test_a_keep_fp_typo_is_an_error(model, calib, val, tmp_path):
    with pytest.raises(ConfigError, match="keep_fp entry 'haed' matches no node"):
        export_artifact(model, "onnx", "int8", tmp_path, calib=calib, val=val, options=ExportOptions(keep_fp=("haed",)))


def test_int8_without_calibration_images_names_the_rule(model, val, tmp_path):
    with pytest.raises(ConfigError, match="onnx int8 needs INT8 calibration images .* never test"):
        export_artifact(model, "onnx", "int8", tmp_path, val=val)


@pytest.fixture
def fp32_onnx(model, tmp_path) -> Path:
    path = tmp_path / "m.onnx"
    export_fp32(load_export_source(model), path, ExportOptions())
    return path


def test_histogram_settings_reach_the_calibrator(fp32_onnx, calib, tmp_path, monkeypatch):
    seen = []
    original = ort_calibrate.create_calibrator

    def spy(*args, **kwargs):
        seen.append(kwargs["extra_options"])
        return original(*args, **kwargs)

    monkeypatch.setattr(ort_calibrate, "create_calibrator", spy)
    settings = Int8Settings(method="entropy", num_bins=256, num_quantized_bins=64)
    _, record = onnx_int8.calibrate_int8_ranges(fp32_onnx, calib.paths, tiny_contract(), settings, True, tmp_path)
    assert seen == [{"num_bins": 256, "num_quantized_bins": 64, "symmetric": True}]
    assert record["calibrator"] == "EntropyCalibrater"
    assert record["applied"]["num_bins"] == 256 and record["applied"]["num_quantized_bins"] == 64
    settings = Int8Settings(method="percentile", percentile=99.5, num_bins=512)
    _, record = onnx_int8.calibrate_int8_ranges(fp32_onnx, calib.paths, tiny_contract(), settings, False, tmp_path)
    assert record["applied"] == {"symmetric": False, "num_bins": 512, "num_quantized_bins": 2048, "percentile": 99.5}


def _speck_images(folder: Path) -> list[str]:
    """Dark images with a few white pixels: activations with outliers, where entropy clips and MinMax cannot."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    paths = []
    for i in range(8):
        pixels = np.full((48, 48, 3), 40 + 10 * i, np.uint8)
        pixels[rng.integers(0, 48, 12), rng.integers(0, 48, 12)] = 255
        Image.fromarray(pixels).save(folder / f"speck{i}.png")
        paths.append(str(folder / f"speck{i}.png"))
    return paths


def _widths(ranges) -> dict[str, float]:
    return {k: float(np.ptp(np.asarray(v.range_value, dtype=np.float64))) for k, v in ranges.data.items()}


def test_entropy_really_differs_from_minmax(fp32_onnx, tmp_path):
    paths, contract = _speck_images(tmp_path / "specks"), tiny_contract()
    minmax, _ = onnx_int8.calibrate_int8_ranges(fp32_onnx, paths, contract, Int8Settings(), False, tmp_path)
    entropy, _ = onnx_int8.calibrate_int8_ranges(
        fp32_onnx, paths, contract, Int8Settings(method="entropy", num_bins=256), False, tmp_path
    )
    assert _widths(entropy)["image"] < 0.97 * _widths(minmax)["image"]
    # The trap this guards against: onnxruntime's own entropy defaults (128 bins, 128 quantized bins).
    default = ort_calibrate.create_calibrator(
        fp32_onnx,
        None,
        augmented_model_path=str(tmp_path / "aug.onnx"),
        calibrate_method=ort_calibrate.CalibrationMethod.Entropy,
    )
    default.collect_data(ort_calibration_reader(paths, contract))
    assert _widths(default.compute_data()) == pytest.approx(_widths(minmax))


def test_both_hand_over_paths_give_the_same_model(fp32_onnx, calib, tmp_path, monkeypatch):
    contract = tiny_contract()
    ranges, _ = onnx_int8.calibrate_int8_ranges(fp32_onnx, calib.paths, contract, Int8Settings(), False, tmp_path)
    flavour = onnx_int8.FLAVOURS["int8"]
    how = onnx_int8.quantize_with_ranges(fp32_onnx, tmp_path / "a.onnx", ranges, flavour, True, [], {}, tmp_path)
    assert how == "calibration_cache_path"  # onnxruntime >= 1.26

    import onnxruntime.quantization as quantization

    original = quantization.quantize_static

    def old_signature(model_input, model_output, calibration_data_reader=None, **kwargs):
        kwargs.pop("calibration_cache_path", None)
        return original(model_input, model_output, calibration_data_reader, **kwargs)

    monkeypatch.setattr(quantization, "quantize_static", old_signature)
    how = onnx_int8.quantize_with_ranges(fp32_onnx, tmp_path / "b.onnx", ranges, flavour, True, [], {}, tmp_path)
    assert how == "calibrator stand-in"
    a, b = (onnx.load(str(tmp_path / n)) for n in ("a.onnx", "b.onnx"))
    assert [(i.name, i.raw_data) for i in a.graph.initializer] == [(i.name, i.raw_data) for i in b.graph.initializer]
