"""Quality-comparison head (in the spirit of QCN, CVPR 2024): score an image against ordered pivots.

K learnable pivot embeddings each carry a score. The scores are ordered *by construction*: the first
is a free parameter and every next one adds a softplus increment plus a small floor (strictly positive),
so no optimiser step, however large, can swap two pivots on the quality axis. An image's embedding is compared with
every pivot by cosine similarity; a softmax over ``scale * similarity`` weights the pivot scores and
the weighted sum is the raw score. That is matmul + softmax + multiply-sum: it exports cleanly
(no argmax, no sort, no gather of a neighbour index).

Raw scores start spread evenly over ``score_range`` (default 0..1): train on targets scaled to that
range, and let the score calibration map raw scores to MOS afterwards.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgeiqa.errors import ConfigError

# Upper bound on the similarity scale (CLIP uses the same clamp): keeps the softmax from saturating.
MAX_SCALE = 100.0


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class ComparisonHead(nn.Module):
    """Embedding [N, D] -> raw score [N] as a similarity-weighted mix of ordered pivot scores."""

    def __init__(
        self,
        dim: int,
        num_pivots: int = 16,
        score_range: tuple[float, float] = (0.0, 1.0),
        init_scale: float = 10.0,
        order_margin: float = 0.02,
    ) -> None:
        super().__init__()
        if num_pivots < 2:
            raise ConfigError(f"the comparison head needs >= 2 pivots, got {num_pivots}")
        low, high = score_range
        step = (high - low) / (num_pivots - 1)
        if step <= 0:
            raise ConfigError(f"score_range must increase, got {score_range}")
        self.pivots = nn.Parameter(torch.randn(num_pivots, dim) * dim**-0.5)
        self.score_base = nn.Parameter(torch.tensor(float(low)))
        # A floor under each increment keeps scores strictly increasing even where softplus
        # underflows to 0 after a wild step (equal neighbours would make the anchor loss 0/0).
        self.min_gap = 1e-3 * step
        self.score_steps = nn.Parameter(torch.full((num_pivots - 1,), _inverse_softplus(step - self.min_gap)))
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))
        self.order_margin = order_margin

    def pivot_scores(self) -> torch.Tensor:
        """[K] strictly increasing scores of the pivots."""
        steps = torch.cumsum(F.softplus(self.score_steps) + self.min_gap, dim=0)
        return torch.cat([self.score_base.reshape(1), self.score_base + steps])

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """[N, D] -> [N, K] scaled cosine similarity to every pivot."""
        scale = self.log_scale.exp().clamp(max=MAX_SCALE)
        return scale * F.normalize(embedding, dim=1) @ F.normalize(self.pivots, dim=1).t()

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        # A broadcast multiply + sum, not a matrix-vector product: Core ML's matmul wants 2-D operands.
        return (torch.softmax(self.logits(embedding), dim=1) * self.pivot_scores()).sum(dim=1)

    def order_losses(self, embedding: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named losses that keep the embedding space ordered along the quality axis.

        ``pivot_anchor``: cross-entropy pulling each embedding toward the two pivots whose scores
        bracket its target, in proportion to how close the target is to each (linear interpolation).
        ``pivot_order``: pivot embeddings ordered like their scores: along each row of the pivot
        distance matrix, distance must grow by ``order_margin`` per step away from the diagonal.
        """
        return {"pivot_anchor": self._anchor_loss(embedding, target), "pivot_order": self._order_loss()}

    def _anchor_loss(self, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        scores = self.pivot_scores().detach()
        t = target.detach().to(scores.dtype).clamp(scores[0], scores[-1])
        upper = torch.searchsorted(scores, t.contiguous()).clamp(1, scores.numel() - 1)
        lower = upper - 1
        frac = ((t - scores[lower]) / (scores[upper] - scores[lower])).clamp(0.0, 1.0)
        soft = torch.zeros(t.numel(), scores.numel(), dtype=scores.dtype, device=scores.device)
        soft.scatter_(1, lower[:, None], (1 - frac)[:, None])
        soft.scatter_add_(1, upper[:, None], frac[:, None])
        return -(soft * torch.log_softmax(self.logits(embedding), dim=1)).sum(1).mean()

    def _order_loss(self) -> torch.Tensor:
        unit = F.normalize(self.pivots, dim=1)
        dist = 1.0 - unit @ unit.t()  # cosine distance, symmetric, zero diagonal
        # Looking right from each pivot, then (flipped matrix) looking left: each must grow.
        return 0.5 * (self._rightward_violation(dist) + self._rightward_violation(dist.flip(0, 1)))

    def _rightward_violation(self, dist: torch.Tensor) -> torch.Tensor:
        """Mean hinge on dist[i, j] + margin <= dist[i, j + 1] for every j >= i."""
        k = dist.shape[0]
        right_of_diagonal = torch.triu(torch.ones(k, k - 1, dtype=torch.bool, device=dist.device))
        violation = F.relu(dist[:, :-1] - dist[:, 1:] + self.order_margin)
        return (violation * right_of_diagonal).sum() / right_of_diagonal.sum()
