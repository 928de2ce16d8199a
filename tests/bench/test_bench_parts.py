"""The harness's parts: timing statistics, device probes, graph counting, target parsing, the result file."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from bench_helpers import CONV_MACS, build_onnx, entry, result_dict, tiny_artifact, tiny_dataset

from edgeiqa.bench import device_info
from edgeiqa.bench.compute import artifact_size_bytes, compute_info, onnx_macs_params
from edgeiqa.bench.harness import BenchOptions, DatasetSpec, bench_artifacts
from edgeiqa.bench.schema import BenchResult, ResultError, load_result
from edgeiqa.bench.targets import Target, parse_targets
from edgeiqa.bench.timing import LatencyStats, time_calls
from edgeiqa.errors import ConfigError, DataError

# ------------------------------------------------------------------------------------------- timing


def test_latency_stats_from_known_samples() -> None:
    stats = LatencyStats.from_samples(np.arange(1, 101) / 1000.0, batch=4, warmup=3)  # 1..100 ms
    assert (stats.n, stats.warmup, stats.batch) == (100, 3, 4)
    assert stats.mean_ms == pytest.approx(50.5) and stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1) and stats.p99_ms == pytest.approx(99.01)
    assert (stats.min_ms, stats.max_ms) == pytest.approx((1.0, 100.0))
    assert stats.throughput_ips == pytest.approx(4 * 100 / 5.05)
    single = LatencyStats.from_samples([0.002], batch=1, warmup=0)
    assert single.std_ms == 0.0 and single.p50_ms == single.p99_ms == pytest.approx(2.0)


def test_time_calls_warms_up_then_runs_to_the_minimum_duration_and_count() -> None:
    calls = []
    samples, wall = time_calls(lambda: calls.append(time.perf_counter()), min_seconds=0.02, warmup=3, min_iters=7)
    assert len(calls) == len(samples) + 3 and len(samples) >= 7 and wall >= 0.02
    samples, _ = time_calls(lambda: time.sleep(0.004), min_seconds=0.0, warmup=0, min_iters=3)
    assert len(samples) == 3 and min(samples) >= 0.004
    with pytest.raises(ConfigError, match="min_iters"):
        time_calls(lambda: None, min_seconds=0.0, warmup=0, min_iters=0)


# ------------------------------------------------------------------------------------ device probes

X86 = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6338\nphysical id\t: 0\ncore id\t: 0\n\n"
    "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6338\nphysical id\t: 0\ncore id\t: 0\n\n"
    "processor\t: 2\nmodel name\t: Intel(R) Xeon(R) Gold 6338\nphysical id\t: 0\ncore id\t: 1\n"
)
JETSON = (
    "processor\t: 0\nBogoMIPS\t: 62.50\nCPU part\t: 0xd42\n\nprocessor\t: 1\nCPU part\t: 0xd42\n\n"
    "Hardware\t: NVIDIA Orin Nano\n"
)


def test_cpu_model_and_cores_from_cpuinfo(monkeypatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "psutil", None)  # force the /proc/cpuinfo path
    assert device_info.cpu_model(X86) == "Intel(R) Xeon(R) Gold 6338"
    assert device_info.physical_cores(X86) == 2  # 3 logical CPUs on 2 (physical id, core id) pairs
    assert device_info.cpu_model(JETSON) == "NVIDIA Orin Nano"
    assert device_info.physical_cores(JETSON) == 2


def test_a_failing_probe_is_recorded_not_raised(monkeypatch) -> None:
    def broken():
        raise PermissionError("jetson_clocks needs root")

    monkeypatch.setattr(device_info, "board_model", broken)
    monkeypatch.setattr(device_info, "run_tool", lambda argv, timeout=5.0: None)  # no nvidia-smi / nvpmodel here
    info = device_info.collect_device_info("bench-box")
    assert info["name"] == "bench-box" and info["board_model"] is None
    assert info["probe_errors"] == {"board_model": "PermissionError: jetson_clocks needs root"}
    assert info["gpus"] is None and info["nvpmodel"] is None and info["python"].count(".") == 2


def test_nvidia_smi_output_is_parsed(monkeypatch) -> None:
    out = "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\nNVIDIA A2, 550.54.15, 15356 MiB"
    monkeypatch.setattr(device_info, "run_tool", lambda argv, timeout=5.0: out)
    assert device_info.nvidia_gpus() == [
        {"name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15", "memory": "81559 MiB"},
        {"name": "NVIDIA A2", "driver": "550.54.15", "memory": "15356 MiB"},
    ]


# --------------------------------------------------------------------------------- compute and size


def test_onnx_graph_count_at_the_benchmark_shapes(tmp_path: Path) -> None:
    path = build_onnx(tmp_path / "conv.onnx", "conv")
    macs, params = onnx_macs_params(path, {"image": [8, 3, 32, 32], "fragments": [8, 3, 16, 16]})
    assert macs == CONV_MACS and params == 8 * 27 + 8 + 3 + 1  # per image: the batch of 8 is set to 1
    macs64, _ = onnx_macs_params(path, {"image": [1, 3, 64, 64], "fragments": [1, 3, 16, 16]})
    assert macs64 == 64 * 64 * 8 * 27 + 8 + 3


def test_manifest_numbers_win_and_unknown_formats_say_why(tmp_path: Path) -> None:
    from edgeiqa.runtime.manifest import manifest_path_for, read_manifest

    art = tiny_artifact(tmp_path, "m.onnx", "conv", gmacs=0.25, params=1234)
    info = compute_info(read_manifest(manifest_path_for(art)), art, {"image": [1, 3, 32, 32]})
    assert info == {"gmacs": 0.25, "params": 1234, "compute_source": "manifest", "compute_note": None}
    xml = tmp_path / "model.xml"
    xml.write_text("<net/>")
    (tmp_path / "model.bin").write_bytes(b"\0" * 100)
    info = compute_info(None, xml, {})
    assert info["gmacs"] is None and "not counted for this format" in info["compute_note"]
    assert artifact_size_bytes(xml) == 6 + 100


# ------------------------------------------------------------------------------------------ targets


def test_targets_from_command_line_specs(tmp_path: Path) -> None:
    art = tiny_artifact(tmp_path, "s.onnx", "linear")
    ckpt = tmp_path / "final"
    ckpt.mkdir()
    (ckpt / "state.json").write_text("{}")  # the torch plugin's rule: a folder holding a checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()
    assert [t.kind for t in parse_targets([empty])] == ["artifact"]  # no checkpoint in it: not claimed
    other = tmp_path / "b"
    other.mkdir()
    tiny_artifact(other, "s.onnx", "linear")
    targets = parse_targets(
        [art, f"{art}@openvino", ckpt, other / "s.onnx"], torch_devices=["cpu", "cuda"], providers=["cpu"]
    )
    assert [(t.kind, t.backend, t.torch_device, t.torch_precision) for t in targets] == [
        ("artifact", None, "cpu", "fp32"),
        ("artifact", "openvino", "cpu", "fp32"),
        ("torch", "torch", "cpu", "fp32"),
        ("torch", "torch", "cuda", "fp32"),
        ("torch", "torch", "cuda", "fp16"),
        ("artifact", None, "cpu", "fp32"),
    ]
    labels = [t.label for t in targets]
    assert labels[1] == "s.onnx@openvino" and labels[2:5] == ["torch fp32 cpu", "torch fp32 cuda", "torch fp16 cuda"]
    assert labels[0] == f"s.onnx ({tmp_path.name}/s.onnx)" and labels[5] == "s.onnx (b/s.onnx)"  # same name: folder
    assert targets[0].runner_options("onnxruntime", 2) == {"threads": 2, "providers": ["cpu"]}
    assert targets[1].runner_options("openvino", 2) == {"threads": 2}  # OpenVINO has no execution providers
    assert targets[1].runner_options("tensorrt", 2) == {}  # no thread knob: --threads does not apply
    assert Target.from_dict(targets[0].to_dict()) == targets[0]
    (by_manifest,) = parse_targets([f"{art}.json@openvino"])  # the manifest stands for its artifact
    assert (by_manifest.path, by_manifest.backend, by_manifest.label) == (str(art), "openvino", "s.onnx@openvino")
    with pytest.raises(ConfigError, match="missing.onnx: artifact not found"):
        parse_targets([tmp_path / "missing.onnx"])


def test_bad_arguments_fail_before_any_worker_starts(tmp_path: Path) -> None:
    art = tiny_artifact(tmp_path, "s.onnx", "linear")
    with pytest.raises(ConfigError, match="batch sizes must be integers >= 1"):
        bench_artifacts([art], options=BenchOptions(batches=(0,)))
    with pytest.raises(ConfigError, match="nothing to benchmark"):
        bench_artifacts([])
    with pytest.raises(DataError, match="dataset path does not exist"):
        bench_artifacts([art], DatasetSpec(str(tmp_path / "nodata")))


def test_a_failing_artifact_is_recorded_and_the_others_still_run(tmp_path: Path) -> None:
    good = tiny_artifact(tmp_path, "good.onnx", "linear")
    broken = tiny_artifact(tmp_path, "broken.onnx", "linear")
    broken.write_bytes(b"not an onnx file")
    # verify=False: past the sha256 check, so the backend itself meets the broken file
    result = bench_artifacts(
        [broken, good],
        options=BenchOptions(min_seconds=0.01, warmup=1, isolate=False, input_size=(64, 48), verify=False),
    )
    bad, ok = result.results
    assert "broken.onnx: ONNX Runtime cannot load this model" in bad["error"]
    assert ok["error"] is None and ok["timing_input"] == "synthetic 64x48" and ok["accuracy"] is None
    assert ok["isolated"] is False and ok["end_to_end"] is None
    assert [f["label"] for f in result.failures] == ["broken.onnx"]


def test_a_batch_size_the_artifact_refuses_keeps_the_others(tmp_path: Path) -> None:
    static = tiny_artifact(tmp_path, "static1.onnx", "linear", batch=1)  # like a batch-1 engine
    data = DatasetSpec(str(tiny_dataset(tmp_path / "data")), options={"mos_range": (0, 100)})
    result = bench_artifacts([static], data, BenchOptions(batches=(1, 4), min_seconds=0.01, warmup=1, isolate=False))
    (only,) = result.results
    assert only["error"] is None and only["latency"][0]["n"] >= 5
    assert only["latency"][1]["batch"] == 4 and "InvalidArgument" in only["latency"][1]["error"]
    assert only["end_to_end"]["batch"] == 1 and only["accuracy"]["n"] == 6  # scored at the batch it accepts
    path = result.write(tmp_path / "r.json")
    assert load_result(path).results[0]["latency"][1]["error"]


def test_a_worker_that_overruns_its_timeout_is_a_recorded_failure(tmp_path: Path) -> None:
    art = tiny_artifact(tmp_path, "s.onnx", "linear")
    result = bench_artifacts([art], options=BenchOptions(min_seconds=30.0, timeout=0.5))
    assert result.results[0]["error"] == "worker timed out after 0.5 s"


# -------------------------------------------------------------------------------------- result file


def test_result_round_trip_is_atomic_and_readable(tmp_path: Path) -> None:
    data = result_dict("dev", [entry("a.onnx", 1.0, 0.9)])
    result = BenchResult.from_dict(data)
    path = result.write(tmp_path / "sub" / "r.json")
    assert load_result(path).to_dict() == json.loads(path.read_text()) == result.to_dict()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as open() would make it, not mkstemp's 0600
    assert not list(path.parent.glob(".*tmp"))
    data["results"][0]["accuracy"]["srcc"] = "high"
    with pytest.raises(ResultError, match=r"r2.json: key 'results\[0\].accuracy.srcc' must be a number"):
        BenchResult.from_dict(data, "r2.json")
