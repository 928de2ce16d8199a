"""The card's quality sections: cross-validation reads the folds of a transfer-ladder run on
``data.split: folds``; the reproduction reads ``studies/reproduce_default.py``'s verdict."""

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


def test_the_reproduction_section_carries_the_checkpoint_verdict_and_the_page_shows_it(model_card, tmp_path) -> None:
    row = {
        "fresh_srcc": 0.881,
        "bundled_srcc": 0.888,
        "fresh_minus_bundled": {"value": -0.007, "low": -0.02, "high": 0.006},
        "fresh_vs_bundled_srcc": 0.991,
        "tolerance": 0.02,
        "reproduces": True,
    }
    path = tmp_path / "again.json"
    path.write_text(json.dumps({"run": "r", "photos": 125, "rows": {"checkpoint": row}, "settings_differ": {"a": 1}}))
    again = model_card.reproduction(str(path))
    assert again["reproduces"] and again["fresh_srcc"] == 0.881 and again["settings_differ"] == ["a"]
    lines = load_study("make_models_page").quality_lines({"reproduction": again})
    assert "SRCC 0.881 against the bundled weights' 0.888, paired -0.007 [-0.020, +0.006]" in lines[0]
    assert lines[0].endswith("reproduces (tolerance 0.02)")
    path.write_text(json.dumps({"rows": {"artifact": row}}))
    with pytest.raises(ConfigError, match="no 'checkpoint' row with a verdict"):
        model_card.reproduction(str(path))
