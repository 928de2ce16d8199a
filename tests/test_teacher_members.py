"""The teacher-member probe: extra members join after the config's own, the best member is picked on
validation (never on the test photos), and a pooled ensemble gain is measured against that member."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from study_scripts import ROOT, load_study


@pytest.fixture(scope="module")
def members():
    return load_study("teacher_members")


def test_extra_members_follow_the_configs_own_and_change_the_recipe(members) -> None:
    from edgeiqa.experiment import ExperimentConfig

    base = ExperimentConfig.load(ROOT / "configs" / "livec.yaml")
    cfg = members.with_members(base, [{"seed_offset": 1}, {"model": "eiqanet_lite1"}])
    assert [(m.model, m.seed_offset) for m in cfg.teacher.members] == [(None, 0), (None, 1), ("eiqanet_lite1", 0)]
    assert len(base.teacher.members) == 1  # the base config is not changed
    ladder = load_study("transfer_ladder")
    assert ladder.recipe_id(cfg) != ladder.recipe_id(base)


def test_the_best_member_is_its_best_validation_epoch(members, tmp_path: Path) -> None:
    history = [{"epoch": 0, "val_srcc": 0.70}, {"epoch": 1, "val_srcc": 0.83}, {"epoch": 2, "val_srcc": 0.81}]
    (tmp_path / "metrics.json").write_text(json.dumps(history))
    assert members.best_validation(tmp_path) == pytest.approx(0.83)


def test_a_missing_ladder_teacher_is_one_line_naming_the_folder(members, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"teacher/members: no trained ensemble members"):
        members.seed_members(tmp_path / "s0", tmp_path / "probe")


def _split(rng: np.random.Generator, noise_a: float, noise_b: float, best: str) -> dict:
    mos = rng.normal(size=125)
    a, b = mos + noise_a * rng.normal(size=125), mos + noise_b * rng.normal(size=125)
    return {
        "best_member": best,
        "srcc": {"0-m": 0.8, "1-m": 0.7, "ensemble": 0.9},
        "srcc_ci95": {"0-m": [0.7, 0.9], "1-m": [0.6, 0.8], "ensemble": [0.8, 0.95]},
        "ensemble_minus_best": {"value": 0.1, "low": 0.0, "high": 0.2},
        "scores": {"0-m": a.tolist(), "1-m": b.tolist(), "ensemble": ((a + b) / 2).tolist()},
        "mos": mos.tolist(),
    }


def test_averaging_two_independent_members_beats_the_best_one_pooled(members) -> None:
    rng = np.random.default_rng(0)
    splits = {str(k): _split(rng, 1.0, 1.0, "0-m") for k in range(3)}
    rows = members.pool(splits)
    assert list(rows) == ["split 0", "split 1", "split 2", "pooled"]
    assert rows["split 1"]["members_srcc"] == "0.800 / 0.700"
    pooled = rows["pooled"]
    assert pooled["splits"] == 3
    gain = pooled["ensemble_minus_best"]
    assert gain["low"] > 0 and gain["low"] <= gain["value"] <= gain["high"]


def test_a_much_weaker_second_member_drags_the_ensemble_below_the_best(members) -> None:
    rng = np.random.default_rng(1)
    splits = {str(k): _split(rng, 0.3, 3.0, "0-m") for k in range(3)}
    assert members.pool(splits)["pooled"]["ensemble_minus_best"]["high"] < 0


def test_members_are_copied_whole_and_a_half_copy_is_redone(members, tmp_path: Path) -> None:
    source = tmp_path / "ladder" / "s0"
    member = source / "teacher" / "members" / "0-eiqanet_lite2"
    (member / "epoch_0003").mkdir(parents=True)
    (member / "last.json").write_text('{"dir": "epoch_0003"}')
    (source / "baseline_ridge.json").write_text("{}")
    target = tmp_path / "probe" / "s0"
    stale = target / "teacher" / "members" / "0-eiqanet_lite2.copying"
    stale.mkdir(parents=True)  # an earlier copy, interrupted
    members.seed_members(source, target)
    copied = target / "teacher" / "members"
    assert sorted(p.name for p in copied.iterdir()) == ["0-eiqanet_lite2"]
    assert (copied / "0-eiqanet_lite2" / "last.json").read_text() == '{"dir": "epoch_0003"}'
    assert (target / "baseline_ridge.json").is_file()


def test_a_split_row_shows_each_members_last_epoch_where_validation_picked_an_earlier_one(members) -> None:
    split = _split(np.random.default_rng(2), 1.0, 1.0, "0-m") | {"last_epoch_srcc": {"1-m": 0.75}}
    row = members.split_row(split)
    assert row["members_srcc"] == "0.800 / 0.700"
    assert row["members_last_epoch_srcc"] == "0.800 / 0.750"  # member 0's last epoch was its best
    assert "members_last_epoch_srcc" not in members.split_row(_split(np.random.default_rng(2), 1.0, 1.0, "0-m"))
