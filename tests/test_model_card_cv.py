"""The card's cross-validated quality reads the folds of a transfer-ladder run on ``data.split: folds``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from study_scripts import load_study

from edgeiqa.errors import ConfigError


@pytest.fixture(scope="module")
def model_card():
    return load_study("model_card")


def ladder(tmp_path: Path, rule: str, srcc: list[float], ridge: list[float]) -> str:
    def split(k: int) -> dict:
        summary = {"student": {"srcc": srcc[k], "plcc": srcc[k] - 0.01}, "student_only": {"srcc": 0.5}}
        return {"summaries": {"eqcnet_lite0": summary}, "ridge": {"srcc": ridge[k]}}

    splits = {str(k): split(k) for k in range(len(srcc))}
    splits[str(len(srcc))] = {"seconds": {"teacher": 1.0}}  # a fold still training: not counted
    data = {"students": ["eqcnet_lite0", "eqcnet_lite0_s"], "recipe": {"settings": {"data": {"split": rule}}}}
    path = tmp_path / "cv.json"
    path.write_text(json.dumps({**data, "splits": splits}))
    return str(path)


def test_folds_of_a_ladder_file_give_mean_interval_and_the_folds_beating_ridge(model_card, tmp_path) -> None:
    cv = model_card.cross_validation(ladder(tmp_path, "folds", [0.88, 0.86, 0.84], [0.82, 0.87, 0.80]))
    assert cv["folds"] == 3 and cv["srcc_mean"] == pytest.approx(0.86)
    assert cv["srcc_ci95"][0] < 0.86 < cv["srcc_ci95"][1] and cv["srcc_min"] == 0.84
    assert cv["folds_beating_ridge"] == 2  # fold 1: 0.86 < its ridge 0.87
    assert cv["plcc_mean"] == pytest.approx(0.85)


def test_a_ladder_on_random_splits_is_not_a_cross_validation(model_card, tmp_path) -> None:
    with pytest.raises(ConfigError, match="not a cross-validation .*'random'"):
        model_card.cross_validation(ladder(tmp_path, "random", [0.88, 0.86], [0.82, 0.8]))
