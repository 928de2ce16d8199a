"""The quality-comparison head: ordered pivot scores, score as a pivot mixture, order losses."""

from __future__ import annotations

import pytest
import torch

from edgeiqa.errors import ConfigError
from edgeiqa.models.comparison_head import ComparisonHead


def test_pivot_scores_start_evenly_spread_over_the_range() -> None:
    head = ComparisonHead(8, num_pivots=5, score_range=(0.0, 1.0))
    torch.testing.assert_close(head.pivot_scores(), torch.linspace(0, 1, 5), atol=1e-6, rtol=0)


def test_pivot_order_survives_large_learning_rate_steps() -> None:
    torch.manual_seed(0)
    head = ComparisonHead(16, num_pivots=8)
    opt = torch.optim.Adam(head.parameters(), lr=2.0)  # every parameter moves by ~2 per step
    for _ in range(10):
        # A loss that pulls every pivot score toward reversed targets: unconstrained scores would swap.
        emb = torch.randn(32, 16)
        loss = (head.pivot_scores() - torch.linspace(10, -10, 8)).pow(2).sum() + head(emb).sum()
        loss = loss + sum(head.order_losses(emb, torch.rand(32)).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    scores = head.pivot_scores()
    assert torch.isfinite(scores).all()
    assert (scores[1:] > scores[:-1]).all(), scores


def test_score_is_the_score_of_the_pivot_an_embedding_matches() -> None:
    head = ComparisonHead(4, num_pivots=4, init_scale=100.0)
    with torch.no_grad():
        head.pivots.copy_(torch.eye(4))
    out = head(torch.eye(4)[[2, 0, 3]] * 7.0)  # scale-free: cosine similarity
    torch.testing.assert_close(out, head.pivot_scores()[[2, 0, 3]].detach(), atol=1e-3, rtol=0)
    assert ((out >= 0) & (out <= 1)).all()


def test_anchor_loss_prefers_the_bracketing_pivots() -> None:
    head = ComparisonHead(5, num_pivots=5, init_scale=20.0)  # scores 0, .25, .5, .75, 1
    with torch.no_grad():
        head.pivots.copy_(torch.eye(5))
    target = torch.tensor([0.5, 0.5])
    near = head.order_losses(torch.eye(5)[[2, 2]], target)["pivot_anchor"]
    far = head.order_losses(torch.eye(5)[[0, 4]], target)["pivot_anchor"]
    assert near < far


def test_order_loss_is_zero_for_pivots_on_a_line_and_positive_when_shuffled() -> None:
    head = ComparisonHead(2, num_pivots=6)
    angles = torch.linspace(0, 3.0, 6)  # < pi: cosine distance grows with the angle gap
    line = torch.stack([angles.cos(), angles.sin()], dim=1)
    with torch.no_grad():
        head.pivots.copy_(line)
    assert head.order_losses(line[:1], torch.tensor([0.3]))["pivot_order"].item() == 0.0
    with torch.no_grad():
        head.pivots.copy_(line[[0, 3, 1, 5, 2, 4]])
    assert head.order_losses(line[:1], torch.tensor([0.3]))["pivot_order"].item() > 0.05


def test_head_rejects_a_single_pivot() -> None:
    with pytest.raises(ConfigError, match="the comparison head needs >= 2 pivots, got 1"):
        ComparisonHead(4, num_pivots=1)
    with pytest.raises(ConfigError, match=r"score_range must increase, got \(1.0, 0.0\)"):
        ComparisonHead(4, score_range=(1.0, 0.0))
