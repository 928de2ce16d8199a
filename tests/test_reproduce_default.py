"""The reproducibility study compares a fresh training with the bundled weights only on photos the bundled
model held out, and passes only when the two score those photos within tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from study_scripts import load_study


@pytest.fixture(scope="module")
def study():
    return load_study("reproduce_default")


def _config(seed: int = 0, out: str = "a", lr: float = 0.001) -> dict:
    return {
        "out": out,
        "data": {"dataset": "livec", "split": "random", "split_seed": seed, "fractions": [0.7, 0.1, 0.2]},
        "student": {"finetune": {"optim": {"lr": lr}}},
    }


def test_the_settings_that_differ_are_named_by_dotted_key_and_the_output_folder_is_ignored(study) -> None:
    assert study.settings_diff(_config(out="a"), _config(out="b")) == {}
    assert study.settings_diff(_config(lr=0.001), _config(lr=0.002)) == {"student.finetune.optim.lr": [0.001, 0.002]}


def test_a_run_that_held_out_another_split_is_refused(study, tmp_path: Path) -> None:
    study.check_same_split(_config(out="x", lr=0.5), _config(), tmp_path)  # other settings may differ
    with pytest.raises(SystemExit, match=r"data.split_seed is 1, the bundled model held out data.split_seed 0"):
        study.check_same_split(_config(seed=1), _config(seed=0), tmp_path)


def test_the_verdict_follows_the_paired_difference_against_the_tolerance(study) -> None:
    rng = np.random.default_rng(0)
    mos = rng.uniform(0, 100, 125)
    good = mos + rng.normal(0, 10, 125)
    same = study.compare(good, good + rng.normal(0, 0.1, 125), mos, tolerance=0.02)
    assert same["reproduces"] and same["fresh_vs_bundled_srcc"] > 0.999
    difference = same["fresh_minus_bundled"]
    assert difference["low"] <= difference["value"] <= difference["high"]
    worse = study.compare(good, mos + rng.normal(0, 40, 125), mos, tolerance=0.02)
    assert not worse["reproduces"]
    assert worse["fresh_minus_bundled"]["value"] > 0.1 and worse["fresh_srcc"] > worse["bundled_srcc"]
