"""The report's rules on hand-made results: the recommendation, the Pareto front, malformed files, the ablation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from bench.bench_helpers import entry, result_dict

from edgeiqa.bench.ablation import load_ablation
from edgeiqa.errors import ConfigError
from edgeiqa.report.cli_entry import add_report_arguments, run_report
from edgeiqa.report.formatting import fmt_bytes, fmt_count, fmt_ms, precision_text
from edgeiqa.report.pareto import Point, pareto_front
from edgeiqa.report.recommend import recommend_device
from edgeiqa.report.writer import merge_results, write_report

REF = entry("fp32.onnx", 10.0, 0.900)


def _choice(entries, budget=0.005):
    return recommend_device("dev", entries, budget)


# ------------------------------------------------------------------------------------ recommendation


def test_the_fastest_artifact_within_budget_wins() -> None:
    rec = _choice(
        [REF, entry("fp16.onnx", 6.0, 0.898, precision="fp16"), entry("int8.onnx", 3.0, 0.890, precision="int8")]
    )  # int8: 0.010 below, out of budget
    assert rec.choice.label == "fp16.onnx" and rec.reference.label == "fp32.onnx"
    assert rec.reference_kind == "onnx fp32"
    assert [c.label for c in rec.within_budget] == ["fp16.onnx", "fp32.onnx"]
    assert "1.67x the reference's speed" in rec.reason


def test_a_loss_of_exactly_the_budget_is_within_it() -> None:
    assert _choice([REF, entry("int8.onnx", 3.0, 0.895, precision="int8")]).choice.label == "int8.onnx"


def test_nothing_within_budget_recommends_the_reference_itself() -> None:
    rec = _choice([REF, entry("int8.onnx", 3.0, 0.80, precision="int8")])
    assert rec.choice == rec.reference and rec.choice.label == "fp32.onnx"
    assert rec.reason.startswith("no other artifact is within 0.005 SRCC")


def test_ties_go_to_higher_srcc_then_smaller_file_then_label() -> None:
    a = entry("a.onnx", 5.0, 0.897, precision="fp16", size=500)
    b = entry("b.onnx", 5.0, 0.899, precision="fp16", size=900)
    assert _choice([REF, a, b]).choice.label == "b.onnx"  # same latency: more accurate wins
    c = entry("c.onnx", 5.0, 0.899, precision="int8", size=400)
    assert _choice([REF, a, b, c]).choice.label == "c.onnx"  # and same SRCC: smaller wins
    d = entry("a2.onnx", 5.0, 0.899, precision="int8", size=400)
    assert _choice([REF, c, d]).choice.label == "a2.onnx"  # all equal: label order, deterministic


def test_reference_prefers_onnxruntime_then_torch_and_torch_is_never_a_candidate() -> None:
    ov = entry("fp32.onnx@openvino", 4.0, 0.910, backend="openvino")
    rec = _choice([ov, REF])
    assert rec.reference.label == "fp32.onnx" and rec.choice.label == "fp32.onnx@openvino"
    torch_cpu = entry("torch fp32 cpu", 50.0, 0.900, fmt="torch", backend="torch", runtime={"device": "cpu"})
    torch_half = entry("torch fp16 cuda", 1.0, 0.900, fmt="torch", precision="fp16", backend="torch")
    rec = _choice([torch_cpu, torch_half, entry("int8.onnx", 3.0, 0.897, precision="int8")])
    assert rec.reference_kind == "torch fp32" and rec.reference.label == "torch fp32 cpu"
    assert rec.choice.label == "int8.onnx"  # the faster torch fp16 eager run is not a deployment artifact
    assert [c.label for c in rec.torch_fp32] == ["torch fp32 cpu"]


def test_no_fp32_reference_means_no_recommendation() -> None:
    rec = _choice([entry("int8.onnx", 3.0, 0.9, precision="int8"), entry("nodata.onnx", 1.0, None)])
    assert rec.choice is None and rec.reference is None
    assert "no FP32 student with an accuracy" in rec.reason


def test_failed_and_unmeasured_entries_are_not_candidates() -> None:
    failed = {"artifact": "/x/bad.onnx", "label": "bad.onnx", "error": "boom"}
    no_batch1 = entry("b8only.onnx", 1.0, 0.95)
    no_batch1["latency"][0]["batch"] = 8
    assert _choice([REF, failed, no_batch1]).choice.label == "fp32.onnx"


# -------------------------------------------------------------------------------------------- Pareto


def test_pareto_front_keeps_only_non_dominated_points_fastest_first() -> None:
    pts = [
        Point("slow_best", 10, 0.95),
        Point("fast_bad", 1, 0.80),
        Point("dominated", 12, 0.90),
        Point("mid", 5, 0.90),
        Point("mid_twin_slower", 5.5, 0.90),
    ]
    assert [pts[i].label for i in pareto_front(pts)] == ["fast_bad", "mid", "slow_best"]


# ------------------------------------------------------------------------------ files and the report


def _write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def result_files(tmp_path: Path) -> dict[str, Path]:
    good = result_dict("jetson", [REF, entry("int8.onnx", 3.0, 0.897, precision="int8", fmt="onnx")])
    missing_latency = result_dict("x", [entry("a.onnx", 1.0, 0.9)])
    del missing_latency["results"][0]["latency"]
    unordered = result_dict("x", [entry("a.onnx", 1.0, 0.9)])
    unordered["results"][0]["latency"][0]["p90_ms"] = 0.5
    return {
        "good": _write(tmp_path / "good.json", good),
        "bad_json": _write(tmp_path / "bad.json", "{not json"),
        "wrong_schema": _write(tmp_path / "old.json", {**good, "schema": "edgeiqa.bench/0"}),
        "no_device": _write(tmp_path / "nodev.json", {k: v for k, v in good.items() if k != "device"}),
        "missing_latency": _write(tmp_path / "nolat.json", missing_latency),
        "unordered": _write(tmp_path / "unordered.json", unordered),
    }


def test_malformed_result_files_are_named_and_skipped(result_files, tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    paths = [str(p) for p in result_files.values()] + [str(tmp_path / "absent.json")]
    assert run_report(parser.parse_args([*paths, "--out", str(tmp_path / "rep")])) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all(line.startswith("edgeiqa: skipped: ") for line in err)
    text = "\n".join(err)
    assert f"{result_files['bad_json']}: not valid JSON (line 1, column 2" in text
    assert (
        f"{result_files['wrong_schema']}: key 'schema' is 'edgeiqa.bench/0'; this reader reads 'edgeiqa.bench/1'"
        in text
    )
    assert f"{result_files['no_device']}: key 'device' is missing" in text
    assert f"{result_files['missing_latency']}: key 'results[0].latency' is missing" in text
    assert f"{result_files['unordered']}: key 'results[0].latency[0].p50_ms' must satisfy p50 <= p90 <= p99" in text
    assert f"{tmp_path / 'absent.json'}: result file not found" in text
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "- **jetson**: use **int8.onnx**" in md and "skipped: " in md


def test_no_mergeable_file_exits_2(result_files, tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    args = parser.parse_args([str(result_files["bad_json"]), "--out", str(tmp_path / "rep")])
    assert run_report(args) == 2
    err = capsys.readouterr().err
    assert "edgeiqa: skipped: " in err and "edgeiqa: error: no benchmark result could be merged" in err
    with pytest.raises(ConfigError, match="no benchmark result could be merged"):
        write_report([result_files["bad_json"]], tmp_path / "rep2")


def test_a_folder_stands_for_its_json_files_and_same_device_runs_merge(tmp_path) -> None:
    _write(tmp_path / "a.json", result_dict("pi5", [REF]))
    _write(tmp_path / "b.json", result_dict("pi5", [entry("int8.onnx", 3.0, 0.899, precision="int8")]))
    merged = merge_results([tmp_path])
    assert len(merged.runs) == 2 and list(merged.by_device()) == ["pi5"]
    assert [e["label"] for e in merged.by_device()["pi5"]] == ["fp32.onnx", "int8.onnx"]


def test_ablation_from_a_training_summary_is_shown_with_its_gain(tmp_path) -> None:
    summary = {
        "split": "test",
        "n": 16,
        "teacher": {"srcc": 0.8, "plcc": 0.79, "n": 16},
        "student": {"srcc": 0.74, "plcc": 0.7, "n": 16},
        "student_only": {"srcc": 0.61, "plcc": 0.6, "n": 16},
    }
    ablation = load_ablation(_write(tmp_path / "summary.json", summary))
    assert ablation["distilled"]["srcc"] == 0.74 and ablation["split"] == "test"
    with pytest.raises(ConfigError, match="no 'student' \\(distilled\\) and 'student_only' metrics"):
        load_ablation(_write(tmp_path / "half.json", {"student": {"srcc": 0.7}}))
    for name in ("a", "b"):  # the same ablation in two device runs is shown once
        _write(tmp_path / f"{name}.json", result_dict(name, [REF], ablation=ablation))
    report = write_report([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "rep")
    md = report.markdown.read_text()
    assert "## Distillation ablation" in md
    assert "| a (a.json) | distilled | 0.7400 | – | 0.7000 | – | – | – | 16 | +0.1300 |" in md
    assert md.count("| student_only |") == 1
    assert "Distillation ablation" in report.html.read_text()


def test_the_choice_is_compared_with_torch_eager_fp32(tmp_path) -> None:
    torch_cpu = entry(
        "torch fp32 cpu", 50.0, 0.900, fmt="torch", backend="torch", kind="torch", runtime={"device": "cpu"}
    )
    _write(tmp_path / "r.json", result_dict("xeon", [REF, torch_cpu, entry("int8.onnx", 2.5, 0.899, precision="int8")]))
    md = write_report([tmp_path / "r.json"], tmp_path / "rep", budget=0.005).markdown.read_text()
    assert "use **int8.onnx**" in md
    assert "Torch eager FP32 (cpu): p50 50.0 ms, SRCC 0.9000; int8.onnx is 20.00x its speed." in md


def test_number_formats() -> None:
    assert [fmt_ms(v) for v in (0.00981, 0.402, 5.56, 21.8, 704.4, None)] == [
        "0.00981",
        "0.402",
        "5.56",
        "21.8",
        "704",
        "–",
    ]
    assert [fmt_count(v) for v in (7, 12_345, 1_520_000)] == ["7", "12.3 k", "1.52 M"]
    assert [fmt_bytes(v) for v in (533, 1494, 2_275_716)] == ["533 B", "1.46 KiB", "2.17 MiB"]
    assert precision_text({"precision": "fp32", "precision_used": "f32"}) == "fp32"
    assert precision_text({"precision": "fp32", "precision_used": "bf16"}) == "fp32 (runs bf16)"
