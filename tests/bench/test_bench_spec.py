"""What the harness tells a worker: BenchOptions / BenchSpec, and the torch runner as a registered backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeiqa.bench.spec import BenchOptions, BenchSpec
from edgeiqa.bench.targets import Target, parse_targets
from edgeiqa.errors import ConfigError


def test_options_round_trip_through_json_to_an_equal_object() -> None:
    options = BenchOptions(
        batches=[1, 4],
        min_seconds=0.5,
        threads=2,
        torch_devices=["cpu", "cuda:1"],
        providers=["CPUExecutionProvider"],
        input_size=[640, 480],
        timeout=9.0,
        verify=False,
    )
    again = BenchOptions.from_dict(json.loads(json.dumps(options.to_dict())))
    assert again == options and again.batches == (1, 4) and again.input_size == (640, 480)
    assert options.to_dict()["batches"] == [1, 4]  # JSON's own form


def test_defaults_live_in_one_place_and_reach_the_worker() -> None:
    # A spec the harness writes with default options reads back, in the worker, with the same defaults.
    spec = BenchSpec(Target("artifact", "a.onnx", "a.onnx"))
    read = BenchSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert read == spec and read.options == BenchOptions()
    assert (read.options.batches, read.options.min_seconds, read.options.warmup, read.options.min_iters) == (
        (1, 8),
        2.0,
        5,
        5,
    )
    assert BenchSpec.from_dict({"target": spec.target.to_dict()}).options == BenchOptions()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batches": ()}, r"batch sizes must be integers >= 1, got \[\]"),
        ({"batches": (1, 0)}, r"batch sizes must be integers >= 1, got \[1, 0\]"),
        ({"warmup": -1}, "min_seconds and warmup must be >= 0"),
        ({"threads": 0}, "threads must be >= 1, got 0"),
        ({"decoder": "turbo"}, "decoder 'turbo' is not one of auto, pillow, simplejpeg"),
        ({"input_size": (0, 10)}, r"input_size must be \(width, height\) >= 1"),
    ],
)
def test_bad_options_are_one_line_config_errors(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        BenchOptions(**kwargs)


def test_an_unknown_option_is_named_not_ignored() -> None:
    with pytest.raises(ConfigError, match=r"bench: unknown bench option\(s\) \['min_second'\]"):
        BenchOptions.from_dict({"min_second": 1.0}, source="bench")


def test_torch_is_a_registered_backend_that_gets_its_device_and_precision(tmp_path: Path, monkeypatch) -> None:
    from edgeiqa.distill.torch_runner import TorchEagerRunner, register_torch_backend
    from edgeiqa.runtime import runners
    from edgeiqa.runtime.runners import registry

    monkeypatch.setattr(registry, "_REGISTRY", {k: v for k, v in registry._REGISTRY.items() if k != "torch"})
    monkeypatch.setattr(registry, "_SCANNED", [])
    monkeypatch.setattr(registry, "PLUGIN_GROUP", "edgeiqa.no-such-group")  # no entry-point plugin: only ours
    folder = tmp_path / "final"
    folder.mkdir()
    (folder / "state.json").write_text("{}")
    assert [t.kind for t in parse_targets([folder])] == ["artifact"]  # nobody claims it without the plugin
    with pytest.raises(ConfigError, match="unknown backend 'torch'"):
        runners.create_runner("torch", folder)
    register_torch_backend()
    (target,) = parse_targets([folder])  # the plugin's rule claims a folder holding a checkpoint
    opts = target.runner_options("torch", threads=3)
    runner = runners.create_runner("torch", folder, **opts)  # not activated: no torch import needed
    assert isinstance(runner, TorchEagerRunner)
    assert (runner.device, runner.precision, runner.threads, runner.precision_used) == ("cpu", "fp32", 3, "fp32")
    assert runner.peak_gpu_mb() is None  # CPU: no GPU peak to report
    with pytest.raises(ConfigError, match="unknown backend 'tflite'"):
        runners.create_runner("tflite", folder)
