"""``loss_options``: the settings the named losses share come from the config, and default to the old constants."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from edgeiqa.distill.config import LossOptions
from edgeiqa.distill.losses import LossInputs, WeightedLoss
from edgeiqa.experiment import ExperimentConfig

PRED = torch.tensor([0.30, 0.20, 0.65, 0.70, 0.15])
TARGET = torch.tensor([0.10, 0.40, 0.50, 0.90, 0.05])
TEACHER = torch.tensor([0.25, 0.35, 0.55, 0.80, 0.10])
INPUTS = LossInputs(pred=PRED, target=TARGET, teacher_pred=TEACHER)
ALL_TERMS = {"regression": 1.0, "rank": 1.0, "kd_score": 1.0, "kd_rank": 1.0}


def _fidelity(pred: torch.Tensor, target_prob: torch.Tensor, scale: float) -> torch.Tensor:
    """The pairwise fidelity loss written out independently of the module's helper."""
    prob = torch.sigmoid((pred[:, None] - pred[None, :]) / scale)
    loss = 1 - torch.sqrt(prob * target_prob + 1e-8) - torch.sqrt((1 - prob) * (1 - target_prob) + 1e-8)
    return loss[~torch.eye(len(pred), dtype=torch.bool)].mean()


def _old_values() -> dict[str, float]:
    """What losses.py computed with its hard-coded 0.1 / 0.05 / beta 0.1 before they became config."""
    hard = (torch.sign(TARGET[:, None] - TARGET[None, :]) + 1) / 2
    soft = torch.sigmoid((TEACHER[:, None] - TEACHER[None, :]) / 0.05)
    return {
        "regression": float(F.smooth_l1_loss(PRED, TARGET, beta=0.1)),
        "rank": float(_fidelity(PRED, hard, 0.1)),
        "kd_score": float(F.smooth_l1_loss(PRED, TEACHER, beta=0.1)),
        "kd_rank": float(_fidelity(PRED, soft, 0.1)),
    }


def test_the_defaults_are_the_old_constants_and_give_the_old_values() -> None:
    assert LossOptions() == LossOptions(fidelity_scale=0.1, teacher_pair_scale=0.05, smooth_l1_beta=0.1)
    assert ExperimentConfig().loss_options == LossOptions()
    _, implicit = WeightedLoss(ALL_TERMS)(INPUTS)
    _, explicit = WeightedLoss(ALL_TERMS, LossOptions())(INPUTS)
    old = _old_values()
    assert implicit == explicit
    for name, value in old.items():
        assert implicit[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


@pytest.mark.parametrize(
    "option, value, changed, unchanged",
    [
        ("fidelity_scale", 0.5, {"rank", "kd_rank"}, {"regression", "kd_score"}),
        ("teacher_pair_scale", 0.5, {"kd_rank"}, {"regression", "rank", "kd_score"}),
        ("smooth_l1_beta", 0.01, {"regression", "kd_score"}, {"rank", "kd_rank"}),
    ],
)
def test_each_option_changes_exactly_the_losses_that_use_it(option, value, changed, unchanged) -> None:
    _, default = WeightedLoss(ALL_TERMS)(INPUTS)
    _, other = WeightedLoss(ALL_TERMS, dataclasses.replace(LossOptions(), **{option: value}))(INPUTS)
    for name in changed:
        assert other[name] != pytest.approx(default[name], rel=1e-4), name
    for name in unchanged:
        assert other[name] == default[name], name


def test_two_weighted_losses_in_one_process_keep_their_own_options() -> None:
    wide = WeightedLoss({"rank": 1.0}, LossOptions(fidelity_scale=1.0))
    narrow = WeightedLoss({"rank": 1.0}, LossOptions(fidelity_scale=0.01))
    first = wide(INPUTS)[1]["rank"]
    narrow(INPUTS)
    assert wide(INPUTS)[1]["rank"] == first  # no option leaks from one instance to another


def test_loss_options_come_from_the_yaml(tmp_path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("loss_options: {fidelity_scale: 0.2, smooth_l1_beta: 1}\n")
    assert ExperimentConfig.load(path).loss_options == LossOptions(fidelity_scale=0.2, smooth_l1_beta=1.0)
