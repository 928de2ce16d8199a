"""The API's results are dataclasses; their ``to_dict`` is the plain JSON form the old dicts had."""

from __future__ import annotations

import json
from pathlib import Path

from edgeiqa.distill.api import DistillResult, TrainResult
from edgeiqa.pipeline import ExperimentResult


def test_a_train_result_round_trips_through_json() -> None:
    result = TrainResult(best_val_srcc=0.81, epochs=3, seconds=12.5, resumed_from=1)
    data = json.loads(json.dumps(result.to_dict()))
    assert data == {"best_val_srcc": 0.81, "epochs": 3, "seconds": 12.5, "resumed_from": 1}
    assert TrainResult.from_dict(data) == result


def test_a_distill_result_keeps_the_old_keys_and_names_qat_only_when_it_ran(tmp_path: Path) -> None:
    plain = DistillResult(tmp_path / "student" / "final", summary={"split": "test"})
    assert plain.to_dict() == {"final": str(tmp_path / "student" / "final"), "summary": {"split": "test"}}
    with_qat = DistillResult(tmp_path / "final", tmp_path / "qat_final", {"student_qat": {"srcc": 0.8}})
    data = json.loads(json.dumps(with_qat.to_dict()))
    assert data["qat_final"] == str(tmp_path / "qat_final")
    assert DistillResult.from_dict(data) == with_qat and DistillResult.from_dict(plain.to_dict()) == plain


def test_an_experiment_result_round_trips_through_json(tmp_path: Path) -> None:
    result = ExperimentResult(
        tmp_path,
        tmp_path / "report" / "report.html",
        3.5,
        {"export": 1.0},
        [str(tmp_path / "a.onnx")],
        {"split": "test", "student": {"srcc": 0.7}},
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["out"] == str(tmp_path) and data["report"].endswith("report.html")
    assert ExperimentResult.from_dict(data) == result
