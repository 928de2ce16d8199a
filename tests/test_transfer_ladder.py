"""A transfer-ladder results file holds one recipe: its splits are claimed by the config's fingerprint,
and splits from other files join only when they carry the same one."""

from __future__ import annotations

from pathlib import Path

import pytest
from study_scripts import ROOT, load_study


@pytest.fixture(scope="module")
def ladder():
    return load_study("transfer_ladder")


def test_the_fingerprint_follows_every_setting_but_the_output_folder(ladder) -> None:
    from edgeiqa.experiment import ExperimentConfig

    base = ExperimentConfig.load(ROOT / "configs" / "livec.yaml")
    moved = ExperimentConfig.load(ROOT / "configs" / "livec.yaml")
    moved.out = "elsewhere"
    assert ladder.recipe_id(moved) == ladder.recipe_id(base)
    moved.student.finetune.losses["distortion_rank"] = 0.5
    assert ladder.recipe_id(moved) != ladder.recipe_id(base)


def test_a_split_measured_with_another_recipe_is_refused(ladder, tmp_path: Path) -> None:
    fresh: dict = {}
    ladder.check_recipe(fresh, 0, "aaa", tmp_path / "r.json")
    assert fresh == {"recipe": "aaa"}
    for old in ({"seconds": {"teacher": 1.0}}, {"seconds": {"teacher": 1.0}, "recipe": "bbb"}):
        with pytest.raises(SystemExit, match=r"split 0 was measured with recipe (unrecorded|bbb), the config is"):
            ladder.check_recipe(old, 0, "aaa", tmp_path / "r.json")


def test_merged_splits_must_share_the_recipe_and_agree_where_both_files_have_them(ladder, tmp_path: Path) -> None:
    one = {"recipe": "aaa", "seconds": {"teacher": 1.0}}
    splits = {"0": dict(one)}
    ladder.merge_splits(splits, {"0": dict(one), "1": {"recipe": "aaa", "seconds": {"teacher": 2.0}}}, "aaa", tmp_path)
    assert sorted(splits) == ["0", "1"]
    with pytest.raises(SystemExit, match="split 2 is recipe bbb, not aaa"):
        ladder.merge_splits(splits, {"2": {"recipe": "bbb", "seconds": {}}}, "aaa", tmp_path)
    with pytest.raises(SystemExit, match="split 1 differs"):
        ladder.merge_splits(splits, {"1": {"recipe": "aaa", "seconds": {"teacher": 3.0}}}, "aaa", tmp_path)
