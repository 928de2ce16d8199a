"""Named losses: each term rewards what its name says, and the weighted sum is configured by name."""

from __future__ import annotations

import pytest
import torch

from edgeiqa.distill.losses import LOSSES, LossInputs, WeightedLoss, pairwise_fidelity
from edgeiqa.errors import ConfigError

TARGET = torch.tensor([0.1, 0.4, 0.5, 0.9])


def _loss(name: str, pred: torch.Tensor, **kw) -> float:
    return float(LOSSES[name](LossInputs(pred=pred, target=TARGET, **kw)))


@pytest.mark.parametrize("name", ["regression", "rank", "plcc"])
def test_label_losses_prefer_the_right_order(name: str) -> None:
    right = TARGET * 0.8 + 0.05  # same order, other scale
    wrong = TARGET.flip(0)
    assert _loss(name, right) < _loss(name, wrong)


def test_plcc_loss_ignores_offset_and_scale_and_regression_does_not() -> None:
    shifted = TARGET * 3 + 2
    assert _loss("plcc", shifted) == pytest.approx(0.0, abs=1e-6)
    assert _loss("regression", shifted) > 0.5


def test_rank_loss_is_lower_for_well_separated_correct_pairs() -> None:
    assert _loss("rank", TARGET * 10) < _loss("rank", TARGET) < _loss("rank", -TARGET)


def test_fidelity_is_bounded_and_zero_at_certain_agreement() -> None:
    pred = torch.tensor([0.0, 10.0])
    target = torch.tensor([[0.5, 0.0], [1.0, 0.5]])
    assert float(pairwise_fidelity(pred, target)) == pytest.approx(0.0, abs=1e-3)
    assert 0.99 < float(pairwise_fidelity(-pred, target)) <= 1.0


def test_distillation_losses_follow_the_teacher_and_need_it() -> None:
    teacher = torch.tensor([0.2, 0.3, 0.6, 0.8])
    assert _loss("kd_score", teacher, teacher_pred=teacher) == pytest.approx(0.0)
    assert _loss("kd_rank", teacher, teacher_pred=teacher) < _loss("kd_rank", teacher.flip(0), teacher_pred=teacher)
    with pytest.raises(ConfigError, match="'kd_score' needs teacher scores"):
        _loss("kd_score", teacher)


def test_feature_alignment_is_cosine_distance() -> None:
    a = torch.randn(4, 8)
    assert _loss("feature", TARGET, features={"embed": (a, a * 2)}) == pytest.approx(0.0, abs=1e-6)
    assert _loss("feature", TARGET, features={"embed": (a, -a)}) == pytest.approx(2.0, abs=1e-6)


def test_weighted_loss_sums_named_terms_and_rejects_unknown_names() -> None:
    pred = torch.tensor([0.3, 0.2, 0.6, 0.7], requires_grad=True)
    combo = WeightedLoss({"regression": 2.0, "plcc": 0.5, "rank": 0.0})
    total, parts = combo(LossInputs(pred=pred, target=TARGET))
    assert set(parts) == {"regression", "plcc"}
    assert float(total.detach()) == pytest.approx(2.0 * parts["regression"] + 0.5 * parts["plcc"], rel=1e-6)
    total.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    with pytest.raises(ConfigError, match=r"unknown loss name\(s\) \['mse'\]"):
        WeightedLoss({"mse": 1.0})
