"""ONNX Runtime and OpenVINO runners on a real tiny ONNX model; Core ML and runner selection errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import tiny_reference, write_tiny_manifest

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.manifest import manifest_path_for, read_manifest
from edgeiqa.runtime.runners import (
    CoreMLRunner,
    OnnxRuntimeRunner,
    OpenVINORunner,
    RunnerError,
    backends_for_format,
    format_names,
    registered,
    runner_for,
)
from edgeiqa.runtime.runners.onnxruntime_runner import resolve_providers


def _feed(batch: int = 3, size: int = 32, frag: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.normal(0, 1, (batch, 3, size, size)).astype(np.float32),
        "fragments": rng.normal(0, 1, (batch, 3, frag, frag)).astype(np.float32),
    }


def test_onnxruntime_runner_matches_numpy_and_reports_providers(tiny_onnx: Path) -> None:
    feed = _feed()
    with OnnxRuntimeRunner(tiny_onnx, threads=1) as runner:
        assert runner.input_names == ("image", "fragments") and runner.output_names == ("score",)
        out = runner.infer(feed)
        assert runner.info()["providers"] == ["CPUExecutionProvider"]
        assert runner.name == "onnxruntime:tiny.onnx"
    np.testing.assert_allclose(out["score"], tiny_reference(feed), atol=1e-5)
    assert out["score"].shape == (3,)
    assert not runner.is_active


def test_onnxruntime_runner_takes_any_batch_and_size(tiny_onnx: Path) -> None:
    with OnnxRuntimeRunner(tiny_onnx, threads=1, allow_spinning=False) as runner:
        assert runner.info()["allow_spinning"] is False
        for batch, size in [(1, 32), (5, 48)]:
            feed = _feed(batch, size)
            np.testing.assert_allclose(runner.infer(feed)["score"], tiny_reference(feed), atol=1e-5)


def test_feed_errors_and_inactive_runner(tiny_onnx: Path) -> None:
    runner = OnnxRuntimeRunner(tiny_onnx)
    with pytest.raises(RuntimeError, match=r"runner onnxruntime:tiny\.onnx is not active"):
        runner.infer(_feed())
    with runner:
        with pytest.raises(
            RunnerError, match=r"feed has inputs \['image'\] but the model takes \['image', 'fragments'\]"
        ):
            runner.infer({"image": _feed()["image"]})


def test_missing_and_corrupt_artifacts_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match=r"nothing\.onnx: artifact not found"):
        OnnxRuntimeRunner(tmp_path / "nothing.onnx").activate()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(RunnerError, match=r"bad\.onnx: ONNX Runtime cannot load this model") as info:
        OnnxRuntimeRunner(bad).activate()
    assert "\n" not in str(info.value)


def test_provider_resolution() -> None:
    available = ["CUDAExecutionProvider", "CPUExecutionProvider", "AzureExecutionProvider"]
    assert resolve_providers(None, available) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(None, ["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert resolve_providers(["cuda", "cpu"], available) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(RunnerError, match=r"execution provider 'tensorrt' is not available"):
        resolve_providers(["tensorrt"], available)


@pytest.mark.parametrize("as_ir", [False, True], ids=["onnx", "ir"])
def test_openvino_f32_matches_onnxruntime_and_records_precision(tiny_onnx: Path, tmp_path: Path, as_ir: bool) -> None:
    import openvino as ov

    path = tiny_onnx
    if as_ir:
        path = tmp_path / "tiny.xml"
        # compress_to_fp16 defaults to True and would round the weights: parity needs the FP32 weights.
        ov.save_model(ov.Core().read_model(str(tiny_onnx)), str(path), compress_to_fp16=False)
    feed = _feed(batch=4)
    with OnnxRuntimeRunner(tiny_onnx, threads=1) as ort_runner:
        expected = ort_runner.infer(feed)["score"]
    with OpenVINORunner(path, inference_precision="f32", threads=1) as runner:
        out = runner.infer(feed)
        assert runner.precision == "f32"
        assert runner.info()["precision"] == "f32" and runner.info()["requested_precision"] == "f32"
        assert runner.input_names == ("image", "fragments") and runner.output_names == ("score",)
    np.testing.assert_allclose(out["score"], expected, atol=1e-5)


def test_openvino_records_the_device_default_precision(tiny_onnx: Path) -> None:
    import openvino as ov

    with OpenVINORunner(tiny_onnx, inference_precision=None, threads=1) as runner:
        runner.infer(_feed(batch=1))
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(tiny_onnx)), "CPU")
        # What the device really does when nobody sets the hint (bf16 on CPUs with bf16 support).
        assert runner.precision == compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    with pytest.raises(RunnerError, match=r"inference_precision 'fp32' is not one of f32, bf16, f16"):
        OpenVINORunner(tiny_onnx, inference_precision="fp32")


def test_openvino_outputs_are_copies_not_views_of_reused_buffers(tiny_onnx: Path) -> None:
    with OpenVINORunner(tiny_onnx, threads=1) as runner:
        first = runner.infer(_feed(batch=2, seed=1))["score"]
        kept = first.copy()
        runner.infer(_feed(batch=2, seed=2))
    np.testing.assert_array_equal(first, kept)


def test_coreml_prediction_on_linux_is_a_clear_error(tmp_path: Path) -> None:
    if sys.platform == "darwin":
        pytest.skip("Core ML predicts on macOS")
    package = tmp_path / "student.mlpackage"
    package.mkdir()
    with pytest.raises(RunnerError, match=r"student\.mlpackage: Core ML prediction needs macOS \(this is linux\)"):
        with CoreMLRunner(package):
            pass
    with pytest.raises(RunnerError, match=r"compute_units 'GPU' is not one of"):
        CoreMLRunner(package, compute_units="GPU")


def test_runner_for_picks_by_format_and_honours_backend(tiny_onnx: Path, contract) -> None:
    manifest = read_manifest(manifest_path_for(tiny_onnx))
    assert isinstance(runner_for(manifest, tiny_onnx), OnnxRuntimeRunner)
    assert isinstance(runner_for(manifest, tiny_onnx, backend="openvino"), OpenVINORunner)
    with pytest.raises(
        ConfigError, match=r"backend 'tensorrt' cannot run a 'onnx' artifact .*use one of: onnxruntime, openvino"
    ):
        runner_for(manifest, tiny_onnx, backend="tensorrt")
    with pytest.raises(ConfigError, match=r"backend 'onnxruntime' does not accept the options \['device'\]"):
        runner_for(manifest, tiny_onnx, device="GPU")
    runner = runner_for(manifest, tiny_onnx, providers=["cpu"], threads=1)
    assert runner.providers == ["cpu"] and runner.threads == 1


def _without_torch(monkeypatch, plugin_group: str | None = None) -> None:
    """The registry as a device without the torch plugin loaded yet sees it."""
    from edgeiqa.runtime.runners import registry

    monkeypatch.setattr(registry, "_REGISTRY", {k: v for k, v in registry._REGISTRY.items() if k != "torch"})
    monkeypatch.setattr(registry, "_SCANNED", [])
    if plugin_group is not None:
        monkeypatch.setattr(registry, "PLUGIN_GROUP", plugin_group)


def test_torch_backend_is_a_plugin_found_through_its_entry_point(tmp_path: Path, contract, monkeypatch) -> None:
    from importlib.metadata import entry_points

    import tomllib

    from edgeiqa.runtime.runners import registry

    declared = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert declared["project"]["entry-points"][registry.PLUGIN_GROUP] == {
        "torch": "edgeiqa.distill.torch_runner:register_torch_backend"
    }
    (plugin,) = [e for e in entry_points(group=registry.PLUGIN_GROUP) if e.name == "torch"]
    assert plugin.value == declared["project"]["entry-points"][registry.PLUGIN_GROUP]["torch"], (
        "the installed metadata is stale: pip install -e ."
    )
    _without_torch(monkeypatch)
    checkpoint = tmp_path / "student.pt"
    checkpoint.write_bytes(b"x")
    manifest = read_manifest(write_tiny_manifest(checkpoint, contract, fmt="torch"))
    runner = runner_for(manifest, checkpoint)  # registered on demand, inactive until activated
    assert type(runner).__name__ == "TorchEagerRunner" and runner.backend == "torch"
    assert "torch" in format_names() and registered()[-1].needs_torch


def test_a_format_nobody_runs_is_a_one_line_error(tmp_path: Path, contract, monkeypatch) -> None:
    checkpoint = tmp_path / "student.pt"
    checkpoint.write_bytes(b"x")
    manifest_file = write_tiny_manifest(checkpoint, contract, fmt="torch")
    _without_torch(monkeypatch, "edgeiqa.no-such-group")
    with pytest.raises(ConfigError, match=r"key 'format' is 'torch'; expected one of onnx, ort, openvino"):
        read_manifest(manifest_file)
    with pytest.raises(ConfigError, match=r"no backend runs the artifact format 'torch'"):
        backends_for_format("torch")


def test_the_built_in_records_are_torch_free_and_derive_the_format_table() -> None:
    builtin = [b for b in registered() if b.name != "torch"]
    assert [b.name for b in builtin] == ["onnxruntime", "openvino", "coreml", "litert", "tensorrt"]
    assert not any(b.needs_torch for b in builtin)
    assert backends_for_format("onnx") == ("onnxruntime", "openvino")  # the first record is the default
    assert backends_for_format("openvino") == ("openvino",) and backends_for_format("ort") == ("onnxruntime",)
    assert format_names()[:6] == ("onnx", "ort", "openvino", "coreml", "litert", "tensorrt")
    # Every runner takes threads=, whether or not its backend has a thread knob.
    assert all(b.accepts("threads") for b in registered())


def test_runners_take_models_in_memory(tiny_onnx: Path) -> None:
    onnx = pytest.importorskip("onnx")
    feed = _feed()
    expected = tiny_reference(feed)
    for model in (tiny_onnx.read_bytes(), onnx.load(str(tiny_onnx))):
        with OnnxRuntimeRunner(model, threads=1, log_severity=3) as runner:
            assert runner.path is None and runner.label.startswith("<in-memory ")
            np.testing.assert_allclose(runner.infer(feed)["score"], expected, atol=1e-5)
    ov = pytest.importorskip("openvino")
    with OpenVINORunner(ov.Core().read_model(str(tiny_onnx)), threads=1) as runner:
        assert runner.name == "openvino:<in-memory Model>" and runner.precision_used == "f32"
        np.testing.assert_allclose(runner.infer(feed)["score"], expected, atol=1e-5)
    with pytest.raises(RunnerError, match="<in-memory bytes>: ONNX Runtime cannot load this model"):
        OnnxRuntimeRunner(b"not an onnx model").activate()
