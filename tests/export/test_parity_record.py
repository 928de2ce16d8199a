"""The typed parity record and the fidelity gate, on hand-made score vectors (no converter runs)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from edgeiqa.errors import ConfigError
from edgeiqa.export.options import Tolerances
from edgeiqa.export.parity import compare
from edgeiqa.metrics import srcc
from edgeiqa.runtime.parity_record import ParityRecord, Verdict


def _weak_model(n: int = 122, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """MOS and a reference model that ranks them only loosely (SRCC ~0.6), like a weak student."""
    rng = np.random.default_rng(seed)
    mos = rng.uniform(0, 100, n)
    return mos, mos + rng.normal(0, 30, n)


def _swap_far_apart_scores_of_mos_neighbours(mos: np.ndarray, ref: np.ndarray, pairs: int) -> np.ndarray:
    """Swap the scores of images whose MOS are neighbours but whose scores are far apart: the ranking
    against MOS barely moves, the ranking against the reference moves a lot."""
    order = np.argsort(mos)
    rank = np.argsort(np.argsort(ref))
    candidates = sorted(((abs(rank[a] - rank[b]), a, b) for a, b in zip(order[0::2], order[1::2])), reverse=True)
    out = ref.copy()
    for _, a, b in candidates[:pairs]:
        out[a], out[b] = ref[b], ref[a]
    return out


def test_a_permuted_artifact_fails_rank_agreement_although_delta_srcc_vs_mos_passes():
    mos, ref = _weak_model()
    art = _swap_far_apart_scores_of_mos_neighbours(mos, ref, pairs=6)
    record = compare(art, ref, mos, "int8", Tolerances(), "torch")
    assert abs(srcc(ref, mos) - srcc(art, mos)) <= 0.01  # the old ΔSRCC-only gate let it through
    assert record.delta_srcc <= 0.01 and record.srcc_vs_reference < 0.99
    assert record.verdict == "failed" and not record.valid
    assert [(c.name, c.passed) for c in record.checks] == [("rank_agreement", False), ("delta_srcc", True)]
    assert re.fullmatch(r"rank_agreement SRCC\(artifact, torch\) = 0\.\d+ < 0\.99 on 122 images", record.reason)
    off = compare(art, ref, mos, "int8", Tolerances(int8_min_agreement=None), "torch")
    assert off.verdict == "passed" and [c.name for c in off.checks] == ["delta_srcc"]


def test_identical_scores_pass_every_class_and_fp32_is_held_to_its_max_abs():
    mos, ref = _weak_model(40)
    for precision in ("fp32", "fp16", "int8", "int8-trt"):
        assert compare(ref.copy(), ref, mos, precision, Tolerances()).verdict == "passed"
    shifted = compare(ref + 0.01, ref, mos, "fp32", Tolerances(), "torch")
    assert shifted.verdict == "failed" and shifted.reason == "max_abs_diff = 0.01 > 0.001 on 40 images"
    assert shifted.rule == {
        "precision_class": "fp32",
        "max_abs_diff": 1e-3,
        "mean_abs_diff": None,
        "min_rank_agreement": 0.9999,
        "delta_srcc": None,
    }
    nan = compare(np.where(np.arange(40) == 3, np.nan, ref), ref, mos, "fp16", Tolerances())
    assert nan.verdict == "failed" and nan.reason == "1 of 40 artifact scores are NaN or inf"


def test_the_failure_line_is_short_names_the_rule_and_the_cli_flag():
    mos, ref = _weak_model()
    record = compare(_swap_far_apart_scores_of_mos_neighbours(mos, ref, 6), ref, mos, "int8", Tolerances(), "torch")
    line = record.failure_line("student_int8.onnx", "int8")
    assert "\n" not in line and len(line) < 200, line
    assert "rank_agreement" in line and "< 0.99" in line and "--allow-invalid" in line
    assert "allow_invalid" not in line.replace("--allow-invalid", "")
    assert len(json.dumps(record.to_dict())) > 300  # the record itself stays in the manifest, not in the line


def test_the_verdict_round_trips_through_json():
    mos, ref = _weak_model(30)
    for record in (
        compare(ref, ref, mos, "fp16", Tolerances(), "torch"),
        compare(ref[::-1].copy(), ref, mos, "int8", Tolerances(), "onnx:x.onnx"),
        ParityRecord.skipped("Core ML prediction needs macOS"),
    ):
        record.extra["previous_sha256"] = "ab" * 32
        again = ParityRecord.from_dict(json.loads(json.dumps(record.to_dict())))
        assert again == record and again.verdict == record.verdict
    assert again.verdict == "unverified" and again.valid and not again.verified


def test_a_read_verdict_is_the_enum_and_writes_as_its_plain_string():
    record = ParityRecord.from_dict({"verdict": "failed", "reason": "x"})
    assert record.verdict is Verdict.FAILED and record.failed
    text = json.dumps(record.to_dict())
    assert text == json.dumps({"verdict": "failed", "reason": "x", "n": 0, "rule": {}, "checks": []})


@pytest.mark.parametrize(
    "legacy, verdict",
    [
        (
            {
                "passed": True,
                "verified": True,
                "value": 1e-5,
                "reason": "max_abs_diff = 1e-05 <= 0.001 on 12 images",
                "max_abs_diff": 1e-5,
                "n": 12,
            },
            "passed",
        ),
        ({"passed": False, "verified": True, "reason": "delta_srcc = 0.0107 > 0.01 on 122 images"}, "failed"),
        ({"skipped": "Core ML prediction needs macOS", "verified": False, "passed": None}, "unverified"),
        ({"max_abs": 0.3}, "unverified"),
    ],
)
def test_records_written_before_verdicts_still_read(legacy, verdict):
    record = ParityRecord.from_dict(legacy)
    assert record.verdict == verdict and record.valid == (verdict != "failed")
    if verdict == "passed":
        assert record.max_abs_diff == 1e-5 and record.n == 12 and record.extra == {"value": 1e-5}
    if verdict == "unverified" and "skipped" in legacy:
        assert record.reason == "not verified: Core ML prediction needs macOS"


def test_bad_verdicts_and_tolerances_are_one_line_errors():
    with pytest.raises(ConfigError, match="parity verdict 'ok' is not one of passed, failed, unverified"):
        ParityRecord.from_dict({"verdict": "ok", "reason": ""})
    with pytest.raises(ConfigError, match="parity tolerance fp16_max_abs must be a number >= 0 or null"):
        Tolerances(fp16_max_abs=-1.0)


def test_the_torch_reference_runs_once_per_batch_and_weights_in_a_process():
    # Six artifacts of one student are gated on the same images: the torch forward pass must not run six times.
    import sys
    from pathlib import Path

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from export_helpers import tiny_model

    from edgeiqa.export.parity import torch_scorer
    from edgeiqa.export.source import load_export_source

    calls = []
    sources = [load_export_source(tiny_model()) for _ in range(2)]
    for source in sources:
        source.reference_model.register_forward_hook(lambda *_: calls.append(1))
    feed = {name: np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32) for name in sources[0].input_names}
    first = torch_scorer(sources[0])(feed)
    again = torch_scorer(sources[1])(feed)  # a new source with the same weights
    assert len(calls) == 1 and np.array_equal(first, again)
    other = {k: v + 0.1 for k, v in feed.items()}
    torch_scorer(sources[1])(other)
    assert len(calls) == 2
    with torch.no_grad():
        next(sources[1].reference_model.parameters()).add_(1.0)  # other weights: scored anew
    torch_scorer(sources[1])(feed)
    assert len(calls) == 3
