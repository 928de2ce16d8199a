"""TensorRT: the plan per version (no TensorRT needed), calibration batches, and the build against a fake API.

TensorRT cannot be installed on the development machines; the fake below records the calls the
builder makes, so the call sequence is checked, not its effect. It accepts only the documented
TensorRT 10/11 Python API names (tests/fake_tensorrt_api.py): a misspelt call fails here as it would on
a Jetson.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from export_helpers import tiny_contract, tiny_model, write_images
from fake_tensorrt_api import StrictFake, allowed_names

from edgeiqa.errors import ConfigError, MissingDependencyError
from edgeiqa.export import export_artifact
from edgeiqa.export import tensorrt as trt_export
from edgeiqa.export.cli_entry import add_build_engine_arguments, run_build_engine
from edgeiqa.export.tensorrt_plan import default_profile, plan_engine
from edgeiqa.runtime.manifest import read_manifest


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory) -> dict[str, Path]:
    """fp32, fp16 and int8-trt ONNX files of the tiny scorer, with their manifests."""
    out = tmp_path_factory.mktemp("trt")
    images = [str(p) for p in write_images(out / "imgs", 8, seed=6)]
    return {
        p: export_artifact(tiny_model(), "onnx", p, out, calib=images, val=images).artifact
        for p in ("fp32", "fp16", "int8-trt")
    }


def test_strongly_typed_plans_from_fp16_and_qdq_graphs(onnx_files):
    plan = trt_export.plan_for_onnx(onnx_files["fp16"], "fp16", "m.engine", trt_major=11)
    assert (plan.graph_precision, plan.path, plan.network_flags, plan.builder_flags) == (
        "fp16",
        "strongly-typed",
        ("STRONGLY_TYPED",),
        (),
    )
    assert plan.trtexec == (
        f"trtexec --onnx={onnx_files['fp16']} --saveEngine=m.engine "
        "--minShapes=image:1x3x32x32,fragments:1x3x16x16 --optShapes=image:8x3x32x32,fragments:8x3x16x16 "
        "--maxShapes=image:16x3x32x32,fragments:16x3x16x16 --memPoolSize=workspace:1024"
    )
    ten = trt_export.plan_for_onnx(onnx_files["fp16"], "fp16", "m.engine", trt_major=10)
    assert ten.trtexec.endswith("--memPoolSize=workspace:1024 --stronglyTyped")
    qdq = trt_export.plan_for_onnx(onnx_files["int8-trt"], "int8", "m.engine", trt_major=10)
    assert (qdq.graph_precision, qdq.path, qdq.calibration_cache) == ("int8-qdq", "strongly-typed", None)


def test_tensorrt10_implicit_paths_from_an_fp32_graph(onnx_files):
    int8 = trt_export.plan_for_onnx(onnx_files["fp32"], "int8", "out/m.engine", trt_major=10)
    assert (int8.path, int8.builder_flags, int8.calibration_batch) == ("implicit-int8-calibrator", ("INT8", "FP16"), 8)
    assert int8.calibration_cache == "out/m.calib.cache"
    assert int8.trtexec.endswith("--int8 --fp16 --calib=out/m.calib.cache")
    assert any("deprecated in TensorRT 10" in note for note in int8.notes)
    fp16 = trt_export.plan_for_onnx(onnx_files["fp32"], "fp16", "m.engine", trt_major=10)
    assert (fp16.path, fp16.builder_flags) == ("implicit-fp16", ("FP16",)) and fp16.trtexec.endswith("--fp16")


def test_refused_combinations_say_what_to_export(onnx_files):
    with pytest.raises(ConfigError, match="TensorRT 11 is strongly typed.*export the ONNX with --precision int8-trt"):
        trt_export.plan_for_onnx(onnx_files["fp32"], "int8", "m.engine", trt_major=11)
    with pytest.raises(ConfigError, match="a fp16 engine cannot be built from a int8-qdq ONNX graph"):
        trt_export.plan_for_onnx(onnx_files["int8-trt"], "fp16", "m.engine", trt_major=10)
    with pytest.raises(ConfigError, match="TensorRT 8 is not supported"):
        trt_export.plan_for_onnx(onnx_files["fp16"], "fp16", "m.engine", trt_major=8)


def test_profile_shapes_follow_the_size_policy():
    square = default_profile(tiny_contract())
    assert square.min == {"image": (1, 3, 32, 32), "fragments": (1, 3, 16, 16)}
    assert square.max == {"image": (16, 3, 32, 32), "fragments": (16, 3, 16, 16)}
    short = default_profile(tiny_contract(working_size=224, fragments=None, size_policy="short_side"), (1, 4, 8))
    assert (short.min["image"], short.opt["image"], short.max["image"]) == (
        (1, 3, 224, 224),
        (4, 3, 224, 288),
        (8, 3, 448, 448),
    )
    assert list(short.opt) == ["image"]
    long = default_profile(tiny_contract(working_size=256, size_policy="long_side"))
    assert (long.min["image"][2:], long.opt["image"][2:], long.max["image"][2:]) == ((32, 32), (192, 256), (256, 256))
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        type(square)(square.max, square.opt, square.min)


def test_calibration_batches_are_full_batches_in_the_opt_shapes(tmp_path):
    paths = [str(p) for p in write_images(tmp_path, 11, seed=7)]
    profile = default_profile(tiny_contract(), (1, 4, 8))
    batches = list(trt_export.calibration_batches(paths, tiny_contract(), profile))
    assert len(batches) == 3  # 11 images -> 4 + 4 + 3 padded to 4
    for feed in batches:
        assert feed["image"].shape == (4, 3, 32, 32) and feed["fragments"].shape == (4, 3, 16, 16)
        assert feed["image"].dtype == np.float32 and feed["image"].flags["C_CONTIGUOUS"]
    skipped: list[str] = []
    contract = tiny_contract(size_policy="short_side", size_multiple=8)
    landscape = default_profile(contract, (1, 2, 2))  # opt (32, 40): landscape 4:3 images only
    kept = list(trt_export.calibration_batches(paths, contract, landscape, skipped))
    assert [f["image"].shape for f in kept] == [(2, 3, 32, 40)] * 3 and len(skipped) == 6  # the portraits


def test_missing_tensorrt_is_one_clear_line(onnx_files, model, calib, val, tmp_path):
    message = (
        re.escape("building TensorRT engines (do it on the target GPU / Jetson) needs the 'tensorrt' package (")
        + ".*"
        + re.escape("); install it with: pip install 'edgeiqa[tensorrt]'")
    )
    with pytest.raises(MissingDependencyError, match=message):
        trt_export.build_engine(onnx_files["fp16"], "fp16", tmp_path / "m.engine")
    with pytest.raises(MissingDependencyError, match=message):
        export_artifact(model, "tensorrt", "fp16", tmp_path, calib=calib, val=val)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------- fake TensorRT


class _Recorder(StrictFake):
    """Records every call of a documented method; any other name raises AttributeError."""

    def __init__(self, log: list, name: str, api: str, major: int) -> None:
        for key, value in {"_log": log, "_name": name, "_api": api, "_allowed": allowed_names(api, major)}.items():
            object.__setattr__(self, key, value)

    def __getattr__(self, method):  # reached for names the instance lacks, refused ones included
        if method.startswith("_") or method not in self._allowed:
            raise AttributeError(
                f"TensorRT's {self._api} has no attribute {method!r} (not in its documented Python API)"
            )
        return lambda *args: self._log.append((self._name, method, args))


def fake_tensorrt(version: str, log: list) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    major = int(version.split(".")[0])
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    eleven = major >= 11  # TensorRT 11 removed the weak-typing flags and the calibrators
    trt.BuilderFlag = types.SimpleNamespace() if eleven else types.SimpleNamespace(FP16="FP16", INT8="INT8")
    if not eleven:
        trt.IInt8EntropyCalibrator2 = type("IInt8EntropyCalibrator2", (), {"__init__": lambda self: None})

    class Builder(StrictFake):
        _api, _allowed = "Builder", allowed_names("Builder", major)

        def __init__(self, logger):
            self._config = _Recorder(log, "config", "IBuilderConfig", major)

        def create_network(self, flags):
            log.append(("builder", "create_network", (flags,)))
            return "network"

        def create_builder_config(self):
            return self._config

        def create_optimization_profile(self):
            return _Recorder(log, "profile", "IOptimizationProfile", major)

        def build_serialized_network(self, network, config):
            calibrator = config.__dict__.get("int8_calibrator")  # set only on TensorRT 10's implicit path
            if calibrator is not None:  # what TensorRT 10 does with an implicit calibrator
                assert calibrator.read_calibration_cache() is None
                while (ptrs := calibrator.get_batch(["image", "fragments"])) is not None:
                    log.append(("calibrator", "batch", tuple(ptrs)))
                calibrator.write_calibration_cache(b"CACHE")
            return b"ENGINE"

    class OnnxParser(StrictFake):
        _api, _allowed = "OnnxParser", allowed_names("OnnxParser", major)
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            log.append(("parser", "parse_from_file", (path,)))
            return True

    trt.Builder, trt.OnnxParser = Builder, OnnxParser
    return trt


class FakeMemory:
    def __init__(self) -> None:
        self.copies: list[tuple[int, tuple]] = []

    def alloc(self, nbytes):
        return f"buf{nbytes}", 1000 + nbytes

    def htod(self, ptr, host):
        self.copies.append((ptr, host.shape))

    def push(self): ...
    def pop(self): ...
    def synchronize(self): ...
    def free(self, handle): ...
    def close(self): ...


def test_tensorrt11_build_is_strongly_typed_with_no_precision_flags(onnx_files, tmp_path, monkeypatch, capsys):
    log: list = []
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("11.1.0", log))
    plan = trt_export.build_engine(onnx_files["fp16"], "fp16", tmp_path / "m.engine")
    assert (tmp_path / "m.engine").read_bytes() == b"ENGINE"
    assert ("builder", "create_network", (1,)) in log  # 1 << STRONGLY_TYPED
    assert not [entry for entry in log if entry[1] == "set_flag"]
    assert ("config", "set_memory_pool_limit", ("WORKSPACE", 1024 << 20)) in log
    assert ("profile", "set_shape", ("image", (1, 3, 32, 32), (8, 3, 32, 32), (16, 3, 32, 32))) in log
    assert capsys.readouterr().out.startswith(f"equivalent: {plan.trtexec}\n")
    manifest = read_manifest(trt_export.write_engine_manifest(plan))
    assert (manifest.format, manifest.precision, manifest.model, manifest.valid) == (
        "tensorrt",
        "fp16",
        "tiny_scorer",
        True,
    )
    assert manifest.contract == tiny_contract() and manifest.extra["plan"]["trtexec"] == plan.trtexec
    assert manifest.parity_record.verdict == "unverified"
    assert manifest.parity_record.reason.startswith("not verified: no validation images given")
    onnx_manifest = read_manifest(onnx_files["fp16"].with_name(onnx_files["fp16"].name + ".json"))
    assert manifest.sha256["onnx"] == onnx_manifest.sha256["artifact"]


def test_tensorrt10_implicit_int8_feeds_the_calibrator(onnx_files, tmp_path, monkeypatch):
    log: list = []
    memory = FakeMemory()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("10.3.0", log))
    monkeypatch.setattr("edgeiqa.runtime.runners.tensorrt_runner.open_cuda_memory", lambda device: memory)
    paths = [str(p) for p in write_images(tmp_path / "cal", 10, seed=8)]
    plan = trt_export.build_engine(onnx_files["fp32"], "int8", tmp_path / "m.engine", calib=paths)
    assert plan.path == "implicit-int8-calibrator"
    assert [e[2] for e in log if e[1] == "set_flag"] == [("INT8",), ("FP16",)]
    assert ("builder", "create_network", (0,)) in log
    assert [e for e in log if e[1] == "set_calibration_profile"]
    assert len([e for e in log if e[0] == "calibrator"]) == 2  # 10 images in batches of 8 (opt), padded
    assert {shape for _, shape in memory.copies} == {(8, 3, 32, 32), (8, 3, 16, 16)}
    assert (tmp_path / "m.calib.cache").read_bytes() == b"CACHE"


def test_build_engine_cli_plan_only(onnx_files, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_build_engine_arguments(parser)
    args = parser.parse_args(
        [str(onnx_files["int8-trt"]), "--precision", "int8", "--plan-only", "--trt-major", "11", "--batch", "1,2,4"]
    )
    assert run_build_engine(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["path"] == "strongly-typed" and plan["profile"]["max"]["image"] == [4, 3, 32, 32]
    assert plan["engine"].endswith("tiny_scorer_int8_trt.engine") and plan["trtexec"].startswith("trtexec --onnx=")


def test_build_engine_refuses_a_tampered_onnx(onnx_files, tmp_path):
    import argparse
    import shutil

    from edgeiqa.runtime.manifest import IntegrityError, manifest_path_for

    onnx = tmp_path / onnx_files["fp16"].name
    shutil.copy(onnx_files["fp16"], onnx)
    shutil.copy(manifest_path_for(onnx_files["fp16"]), manifest_path_for(onnx))
    onnx.write_bytes(onnx.read_bytes() + b"\x00")
    parser = argparse.ArgumentParser()
    add_build_engine_arguments(parser)
    argv = [str(onnx), "--precision", "fp16", "--plan-only", "--trt-major", "11"]
    with pytest.raises(IntegrityError, match="--no-verify"):
        run_build_engine(parser.parse_args(argv))
    with pytest.raises(Exception) as skipped:  # unchecked, the broken file reaches the ONNX parser
        run_build_engine(parser.parse_args(argv + ["--no-verify"]))
    assert not isinstance(skipped.value, IntegrityError)


def test_plan_engine_is_pure(tmp_path):
    plan = plan_engine("a.onnx", "int8", "a.engine", trt_major=10, contract=tiny_contract(), graph="fp32")
    assert plan.to_dict()["profile"]["opt"] == {"image": [8, 3, 32, 32], "fragments": [8, 3, 16, 16]}


def test_the_fake_refuses_what_the_real_api_does_not_have():
    log: list = []
    for version in ("10.3.0", "11.1.0"):
        trt = fake_tensorrt(version, log)
        builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 20)  # the documented spelling
        with pytest.raises(AttributeError, match="IBuilderConfig has no attribute 'set_memory_pool_limits'"):
            config.set_memory_pool_limits(trt.MemoryPoolType.WORKSPACE, 1 << 20)
        with pytest.raises(AttributeError, match="'max_workspace_size'"):  # removed in TensorRT 10
            config.max_workspace_size = 1 << 20
        with pytest.raises(AttributeError, match="Builder has no attribute 'build_engine'"):
            builder.build_engine("network", config)
        with pytest.raises(AttributeError, match="OnnxParser has no attribute 'parse'"):
            trt.OnnxParser("network", None).parse(b"onnx")
    with pytest.raises(AttributeError, match="'int8_calibrator'"):  # TensorRT 11 has no calibrators
        config.int8_calibrator = object()
    assert ("config", "set_memory_pool_limit", ("WORKSPACE", 1 << 20)) in log
