"""The honest recommendation: bootstrap intervals, the paired decision against the budget, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bench.bench_helpers import entry, result_dict

from edgeiqa.bench.schema import ResultError, validate_result
from edgeiqa.metrics import bootstrap_ci, srcc
from edgeiqa.report.intervals import PairedBootstrap, paired_srcc_difference, srcc_interval
from edgeiqa.report.recommend import recommend_device
from edgeiqa.report.writer import write_report

N = 150


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mos = rng.uniform(0, 100, N)
    return mos, mos + rng.normal(0, 25, N)  # a student at SRCC ~0.75


def _noisy(ref: np.ndarray, sd: float, seed: int) -> np.ndarray:
    return ref + np.random.default_rng(seed).normal(0, sd, ref.size)


def test_identical_artifacts_are_indistinguishable_and_within_budget():
    mos, ref = _data()
    paired = paired_srcc_difference(ref.copy(), ref, mos, budget=0.005)
    assert (paired.difference.value, paired.difference.low, paired.difference.high) == (0.0, 0.0, 0.0)
    assert paired.decision == "within" and paired.indistinguishable


def test_a_clearly_worse_artifact_is_outside_the_budget():
    mos, ref = _data()
    worse = _noisy(ref, 40.0, seed=1)
    paired = paired_srcc_difference(worse, ref, mos, budget=0.005)
    assert srcc(worse, mos) < srcc(ref, mos) - 0.1
    assert paired.decision == "outside" and paired.difference.high < -0.005 and not paired.indistinguishable


def test_a_noisy_near_equal_artifact_cannot_be_told_apart():
    mos, ref = _data()
    near = _noisy(ref, 6.0, seed=2)
    paired = paired_srcc_difference(near, ref, mos, budget=0.005)
    assert abs(paired.difference.value) < 0.02
    assert paired.difference.low < -0.005 < paired.difference.high and paired.decision == "undecided"
    # pairing is what makes the difference measurable: each SRCC alone is far less certain
    alone = srcc_interval(ref, mos)
    assert alone.high - alone.low > 3 * (paired.difference.high - paired.difference.low)


def test_intervals_match_the_metrics_bootstrap_and_the_cached_reference():
    mos, ref = _data()
    mine = srcc_interval(ref, mos, n_boot=300, seed=4)
    assert (mine.low, mine.high) == pytest.approx(bootstrap_ci(ref, mos, "srcc", n_boot=300, seed=4), abs=1e-12)
    near = _noisy(ref, 6.0, seed=2)
    cached = PairedBootstrap(list(ref), list(mos)).compare(list(near), 0.005)
    assert cached == paired_srcc_difference(near, ref, mos, 0.005)


def _scored(label: str, p50: float, scores: np.ndarray, mos: np.ndarray, **kw) -> dict:
    return entry(label, p50, srcc(scores, mos), scores=[float(s) for s in scores], **kw)


def _dataset(mos: np.ndarray) -> dict:
    return {
        "name": "csv",
        "split_used": "test",
        "n": N,
        "mos": [float(m) for m in mos],
        "images": [f"img{i}.jpg" for i in range(N)],
    }


def test_the_recommendation_does_not_rank_what_the_data_cannot_tell():
    mos, ref = _data()
    entries = [
        _scored("fp32.onnx", 10.0, ref, mos),
        _scored("fp16.onnx", 6.0, ref + 1e-4, mos, precision="fp16"),  # same ranking
        _scored("int8.onnx", 3.0, _noisy(ref, 6.0, 2), mos, precision="int8"),  # cannot tell
        _scored("bad.onnx", 1.0, _noisy(ref, 40.0, 1), mos, precision="int8"),
    ]  # clearly worse
    rec = recommend_device("dev", entries, 0.005, [_dataset(mos)] * len(entries))
    decisions = {c.candidate.label: c.decision for c in rec.comparisons}
    assert decisions == {"fp16.onnx": "within", "int8.onnx": "undecided", "bad.onnx": "outside"}
    assert rec.choice.label == "fp16.onnx" and [c.label for c in rec.within_budget] == ["fp16.onnx", "fp32.onnx"]
    assert "the data cannot tell whether the faster int8.onnx (ΔSRCC" in rec.reason
    assert "paired" in rec.reason and "point estimates" not in rec.reason
    # the same numbers without per-image scores fall back to point estimates, and say so
    bare = [{k: v for k, v in e.items() if k != "scores"} for e in entries]
    assert "point estimates only" in recommend_device("dev", bare, 0.005).reason


def test_report_markdown_shows_intervals_and_the_paired_decision(tmp_path: Path):
    mos, ref = _data()
    near = _noisy(ref, 6.0, 2)
    data = result_dict(
        "xeon",
        [_scored("fp32.onnx", 10.0, ref, mos), _scored("int8.onnx", 3.0, near, mos, precision="int8")],
        dataset=_dataset(mos),
    )
    validate_result(json.loads(json.dumps(data)), "r.json")
    (tmp_path / "r.json").write_text(json.dumps(data))
    report = write_report([tmp_path / "r.json"], tmp_path / "rep", budget=0.005)
    md = report.markdown.read_text()
    ci = srcc_interval(ref, mos)
    assert f"[{ci.low:.3f}, {ci.high:.3f}]" in md and "SRCC 95% CI" in md
    d = paired_srcc_difference(near, ref, mos, 0.005).difference
    row = next(line for line in md.splitlines() if line.startswith("| xeon | int8.onnx | int8 |"))
    assert f"{d.value:+.4f} [{d.low:+.4f}, {d.high:+.4f}]" in row and "cannot tell" in row
    assert "use **fp32.onnx**" in md  # the undecided int8 is not recommended on a point estimate
    assert "cannot tell" in report.html.read_text() and "<em>within</em>" in report.html.read_text()


def test_schema_checks_the_optional_per_image_fields():
    bad = result_dict("x", [entry("a.onnx", 1.0, 0.9, scores=["1"])])
    with pytest.raises(ResultError, match=r"results\[0\]\.scores' must be a list of numbers"):
        validate_result(bad, "r.json")
    with pytest.raises(ResultError, match=r"dataset\.mos' must be a list of numbers"):
        validate_result(result_dict("x", [], dataset={"n": 1, "mos": "high"}), "r.json")
