"""The benchmark harness on two tiny real ONNX artifacts, run twice (1 and 2 threads), and the report
merged from those two real result files.

One module fixture runs both benchmarks (4 worker processes, ~6 s on the 2-core machines); every test
reads its results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

import pytest
from bench_helpers import CONV_MACS, LINEAR_MACS, tiny_artifact, tiny_dataset

from edgeiqa.bench.cli_entry import add_bench_arguments, run_bench
from edgeiqa.bench.harness import BenchOptions, DatasetSpec, bench_artifacts
from edgeiqa.bench.schema import SCHEMA, load_result
from edgeiqa.report.cli_entry import add_report_arguments, run_report

MIN_SECONDS = 0.05


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bench")
    lin = tiny_artifact(root, "lin.onnx", "linear")
    conv = tiny_artifact(root, "conv.onnx", "conv")
    csv_path = tiny_dataset(root / "data")
    one = bench_artifacts(
        [lin, conv],
        DatasetSpec(str(csv_path), options={"mos_range": (0, 100)}),
        BenchOptions(batches=(1, 4), min_seconds=MIN_SECONDS, warmup=2, threads=1),
        device_name="cpu, 1 ORT thread",
    )
    one_path = one.write(root / "results" / "t1.json")
    # The second run goes through the CLI entry point, as a user would type it.
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    two_path = root / "results" / "t2.json"
    summary = root / "summary.json"  # what `edgeiqa distill` leaves in a run folder
    summary.write_text(
        json.dumps(
            {
                "split": "test",
                "n": 16,
                "teacher": {"srcc": 0.81, "plcc": 0.8},
                "student": {"srcc": 0.74, "plcc": 0.73},
                "student_only": {"srcc": 0.61, "plcc": 0.6},
            }
        )
    )
    args = parser.parse_args(
        [
            str(lin),
            str(conv),
            "--data",
            str(root / "data"),
            "--mos-range",
            "0,100",
            "--ablation",
            str(summary),
            "--batch",
            "1,4",
            "--threads",
            "2",
            "--device-name",
            "cpu, 2 ORT threads",
            "--min-seconds",
            str(MIN_SECONDS),
            "--warmup",
            "2",
            "--quiet",
            "--out",
            str(two_path),
        ]
    )
    code = run_bench(args)
    return {
        "root": root,
        "lin": lin,
        "conv": conv,
        "one": one,
        "one_path": one_path,
        "two_path": two_path,
        "cli_code": code,
    }


def _entries(runs: dict) -> list[dict]:
    return load_result(runs["one_path"]).results + load_result(runs["two_path"]).results


def test_both_result_files_validate_and_carry_the_schema(runs) -> None:
    assert runs["cli_code"] == 0
    for key in ("one_path", "two_path"):
        data = json.loads(Path(runs[key]).read_text())
        assert data["schema"] == SCHEMA
        assert [e["label"] for e in data["results"]] == ["lin.onnx", "conv.onnx"]
        assert all(e["error"] is None for e in data["results"])
    assert load_result(runs["two_path"]).device_name == "cpu, 2 ORT threads"


def test_latency_statistics_are_ordered_and_throughput_matches_latency(runs) -> None:
    for entry in _entries(runs):
        assert [lat["batch"] for lat in entry["latency"]] == [1, 4]
        for lat in entry["latency"]:
            assert lat["n"] >= 5 and lat["warmup"] == 2
            assert lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
            assert lat["wall_s"] >= MIN_SECONDS and lat["total_s"] <= lat["wall_s"]
            assert lat["throughput_ips"] == pytest.approx(lat["batch"] * 1000.0 / lat["mean_ms"], rel=1e-9)


def test_each_artifact_ran_in_its_own_process(runs) -> None:
    pids = [e["worker_pid"] for e in _entries(runs)]
    assert len(set(pids)) == 4 and os.getpid() not in pids
    assert all(e["isolated"] for e in _entries(runs))


def test_the_runtime_actually_used_is_recorded(runs) -> None:
    one, two = load_result(runs["one_path"]), load_result(runs["two_path"])
    for result, threads in ((one, 1), (two, 2)):
        assert result.settings["threads"] == threads
        for entry in result.results:
            assert entry["backend"] == "onnxruntime" and entry["format"] == "onnx" and entry["precision"] == "fp32"
            assert entry["providers"] == ["CPUExecutionProvider"]
            assert entry["runtime"]["threads"] == threads


def test_accuracy_and_end_to_end_come_from_the_named_split(runs) -> None:
    result = load_result(runs["one_path"])
    assert result.dataset["split_used"] == "test" and result.dataset["n"] == 6
    assert result.dataset["mos_range"] == [0.0, 100.0]
    for entry in result.results:
        acc = entry["accuracy"]
        assert set(acc) >= {"srcc", "plcc", "krcc", "rmse", "mae", "n"} and acc["n"] == 6
        # Both tiny scorers rank the 6 blur levels in MOS order (scores rise with blur, as MOS does here).
        assert acc["srcc"] == pytest.approx(1.0)
        e2e = entry["end_to_end"]
        assert e2e["images"] == 6 * e2e["passes"] and e2e["failed"] == 0
        assert e2e["images_per_s"] == pytest.approx(e2e["images"] / e2e["seconds"])
        assert entry["timing_input"].endswith("img0.png")  # the split's first file is the timing input


def test_compute_size_and_memory_are_counted(runs) -> None:
    lin, conv = load_result(runs["one_path"]).results
    assert lin["gmacs"] == pytest.approx(LINEAR_MACS / 1e9) and lin["params"] == 7
    assert conv["gmacs"] == pytest.approx(CONV_MACS / 1e9) and conv["params"] == 8 * 27 + 8 + 3 + 1
    assert lin["compute_source"] == conv["compute_source"] == "onnx-graph"
    assert lin["size_bytes"] == runs["lin"].stat().st_size and conv["size_bytes"] == runs["conv"].stat().st_size
    for entry in (lin, conv):
        assert entry["input_shapes"] == {"image": [1, 3, 32, 32], "fragments": [1, 3, 16, 16]}
        assert 20 < entry["rss_before_load_mb"] <= entry["peak_rss_mb"] < 4096


def test_device_metadata_is_recorded(runs) -> None:
    device = load_result(runs["one_path"]).device
    for key in (
        "name",
        "hostname",
        "cpu_model",
        "cores_logical",
        "cores_physical",
        "cores_usable",
        "ram_bytes",
        "os",
        "python",
        "libraries",
        "gpus",
        "board_model",
        "nvpmodel",
        "jetson_clocks",
        "probe_errors",
    ):
        assert key in device, key
    assert device["name"] == "cpu, 1 ORT thread"
    assert device["cores_logical"] >= 1 and device["ram_bytes"] > 2**28
    assert "onnxruntime" in device["libraries"] and "numpy" in device["libraries"]


def test_report_merges_the_two_real_runs(runs, capsys) -> None:
    out = runs["root"] / "report"
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    assert run_report(parser.parse_args([str(runs["one_path"]), str(runs["two_path"]), "--out", str(out)])) == 0
    printed = capsys.readouterr().out
    assert "merged 2 run(s) on 2 device(s)" in printed
    md = (out / "report.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| cpu, ") and "| onnxruntime (CPU) |" in line]
    assert len(rows) == 2 * 2 * 2  # devices x artifacts x batch sizes
    assert any(
        re.match(r"\| cpu, 1 ORT thread \| conv\.onnx \| onnxruntime \(CPU\) \| onnx \| fp32 \| 4 \|", r) for r in rows
    )
    for device in ("cpu, 1 ORT thread", "cpu, 2 ORT threads"):
        assert f"- **{device}**: use **" in md  # one recommendation per device
    assert (
        "| cpu, 2 ORT threads (t2.json) | distilled | 0.7400 | – | 0.7300 |" in md
    )  # the ablation copied in by --ablation
    html = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    assert 'src="data:image/png;base64,' in html and "<style>" in html
    png = (out / "pareto.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
