"""The format table, the options and their validation (pure Python, no converter runs)."""

from __future__ import annotations

import sys

import pytest

import edgeiqa.export as export
from edgeiqa.errors import ConfigError
from edgeiqa.export.formats import FORMATS, get_format, precision_class
from edgeiqa.export.options import ExportOptions, Int8Settings, Tolerances


def test_table_is_named_records_with_the_documented_precisions():
    assert list(FORMATS) == ["onnx", "openvino", "coreml", "ort", "litert", "tensorrt"]
    assert FORMATS["onnx"].precisions == ("fp32", "fp16", "int8", "int8-trt", "int8-qat")
    assert FORMATS["openvino"].precisions == ("fp32", "fp16", "int8", "int8-qdq")
    assert FORMATS["coreml"].precisions == ("fp32", "fp16", "int8-weights")
    assert FORMATS["tensorrt"].precisions == ("fp16", "int8")
    assert FORMATS["litert"].precisions == FORMATS["ort"].precisions == ("fp32", "fp16", "int8")
    assert FORMATS["litert"].calibrated == FORMATS["ort"].calibrated == ("int8",)
    assert [p for p in FORMATS["onnx"].precisions if FORMATS["onnx"].needs_calibration(p)] == ["int8", "int8-trt"]
    assert not any(FORMATS["coreml"].needs_calibration(p) for p in FORMATS["coreml"].precisions)


def test_unknown_format_and_precision_name_the_choices():
    known = "known formats: onnx, openvino, coreml, ort, litert, tensorrt"
    with pytest.raises(ConfigError, match=f"unknown export format 'tf'; {known}"):
        get_format("tf")
    with pytest.raises(
        ConfigError, match="'openvino' has no precision 'int8-trt'; choose one of fp32, fp16, int8, int8-qdq"
    ):
        get_format("openvino").check_precision("int8-trt")
    assert [precision_class(p) for p in ("fp32", "fp16", "int8", "int8-trt", "int8-weights")] == [
        "fp32",
        "fp16",
        "int8",
        "int8",
        "int8",
    ]


def test_where_each_format_runs_and_why_not(monkeypatch):
    assert FORMATS["onnx"].runs_here and FORMATS["openvino"].runs_here
    coreml = FORMATS["coreml"]
    assert coreml.runs_here == (sys.platform == "darwin")
    if sys.platform != "darwin":
        assert coreml.not_here_reason() == "Core ML prediction needs macOS"
    # TensorRT runs where its package imports, whatever this machine has: both cases, faked.
    from edgeiqa.runtime.runners import registry as formats  # where each backend runs is its record's

    real_find_spec = formats.importlib.util.find_spec
    monkeypatch.setattr(formats.sys, "platform", "linux")
    monkeypatch.setattr(
        formats.importlib.util, "find_spec", lambda name, *a: None if name == "tensorrt" else real_find_spec(name, *a)
    )
    assert not FORMATS["tensorrt"].runs_here
    assert FORMATS["tensorrt"].not_here_reason() == (
        "TensorRT prediction needs the 'tensorrt' package, which is not installed here"
    )
    monkeypatch.setattr(
        formats.importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "tensorrt" else real_find_spec(name, *a),
    )
    assert FORMATS["tensorrt"].runs_here
    monkeypatch.setattr(formats.sys, "platform", "darwin")  # no TensorRT on macOS, installed or not
    assert not FORMATS["tensorrt"].runs_here
    assert FORMATS["tensorrt"].not_here_reason() == "TensorRT prediction needs Linux or Windows"


def test_artifact_names_and_lazy_exporters():
    assert FORMATS["onnx"].artifact_name("eqcnet_small", "int8-trt") == "eqcnet_small_int8_trt.onnx"
    assert FORMATS["openvino"].artifact_name("m", "fp16") == "m_fp16.xml"
    assert FORMATS["coreml"].artifact_name("m", "int8-weights") == "m_int8_weights.mlpackage"
    assert callable(FORMATS["onnx"].load_exporter())


def test_importing_the_package_imports_no_torch():
    import subprocess

    code = "import sys, edgeiqa.export as e; e.FORMATS; e.plan_engine; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert "export_artifact" in dir(export)


def test_entropy_defaults_give_the_kl_search_real_candidates():
    entropy = Int8Settings(method="entropy")
    assert entropy.calibrator_options(symmetric=False) == {
        "num_bins": 512,
        "num_quantized_bins": 128,
        "symmetric": False,
    }
    assert Int8Settings(method="percentile", percentile=99.9).calibrator_options(True) == {
        "num_bins": 2048,
        "percentile": 99.9,
        "symmetric": True,
    }
    assert Int8Settings().calibrator_options(False) == {"symmetric": False}
    with pytest.raises(ConfigError, match="num_bins > num_quantized_bins .* equals minmax"):
        Int8Settings(method="entropy", num_bins=128)
    with pytest.raises(ConfigError, match="method 'kl' is not one of minmax, entropy, percentile"):
        Int8Settings(method="kl")


def test_tolerance_rules_and_options():
    tol = Tolerances()
    assert (tol.limits("fp32").max_abs_diff, tol.limits("fp32").min_rank_agreement) == (1e-3, 0.9999)
    assert (tol.limits("fp16").delta_srcc, tol.limits("fp16").min_rank_agreement) == (0.002, 0.999)
    assert (tol.limits("int8").delta_srcc, tol.limits("int8").min_rank_agreement) == (0.01, 0.99)
    with pytest.raises(ConfigError, match="int8_min_agreement is an SRCC: it must be <= 1"):
        Tolerances(int8_min_agreement=1.5)
    options = ExportOptions(keep_fp=["head", "first_conv"])
    assert options.keep_fp_with_calibration() == ("head", "first_conv", "calibration")
    assert ExportOptions(keep_fp=("calibration",)).keep_fp_with_calibration() == ("calibration",)
    with pytest.raises(ConfigError, match="opset must be >= 13"):
        ExportOptions(opset=11)
