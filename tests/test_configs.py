"""YAML configs map onto typed dataclasses; mistakes are named by file and dotted key."""

from __future__ import annotations

import pytest

from edgeiqa.errors import ConfigError
from edgeiqa.experiment import ExperimentConfig


def _write(tmp_path, text: str):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_values_are_typed_and_defaults_fill_the_rest(tmp_path) -> None:
    cfg = ExperimentConfig.load(
        _write(
            tmp_path,
            "name: t\nteacher:\n  optim:\n    lr: 1\n    epochs: 3\n"
            "student:\n  feature_pairs:\n    - {student: embed, teacher: fuse}\n",
        )
    )
    assert cfg.teacher.optim.lr == 1.0 and isinstance(cfg.teacher.optim.lr, float)
    assert cfg.teacher.optim.epochs == 3
    assert cfg.student.feature_pairs[0].teacher == "fuse"
    assert cfg.student.finetune.losses["regression"] == 1.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("teacher:\n  optim:\n    lrate: 1\n", r"exp.yaml.teacher.optim: unknown key\(s\) \['lrate'\]"),
        ("teacher:\n  optim:\n    epochs: three\n", r"exp.yaml.teacher.optim.epochs: expected int, got 'three'"),
        (
            "data:\n  split: sometimes\n",
            r"exp.yaml.data.split: 'sometimes' is not one of \['official', 'random', 'folds'\]",
        ),
        ("teacher: [1, 2]\n", r"exp.yaml.teacher: expected a mapping"),
        ("name: [unclosed\n", r"exp.yaml:2:1: not valid YAML"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.load(_write(tmp_path, text))


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        ExperimentConfig.load(tmp_path / "nope.yaml")
