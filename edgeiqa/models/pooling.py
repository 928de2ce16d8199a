"""Pooling that turns feature maps and patch sets into vectors.

Mean pooling keeps *what* is in the image; the standard deviation across positions keeps *how evenly*
it is there, which is where noise, blur and blocking show up (the spatial statistics a plain mean
averages away). Both use only ReduceMean / Sqrt, so they export to ONNX and Core ML unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

# Keeps sqrt differentiable where a channel is constant (its variance is exactly zero).
STD_EPS = 1e-6


def mean_std_pool(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, 2C]: per-channel spatial mean, then per-channel spatial std."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = (x - mean).pow(2).mean(dim=(2, 3))
    return torch.cat([mean.flatten(1), torch.sqrt(var + STD_EPS)], dim=1)


class AttentionPool(nn.Module):
    """Masked attention pooling over a variable number of patch embeddings.

    A small gated scorer (tanh x sigmoid, as in attention-based multiple-instance learning) rates each
    patch; a softmax over the valid patches weights them. Images in one batch use different patch
    counts, so padded slots are masked out of the softmax.
    """

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.value = nn.Linear(dim, hidden)
        self.gate = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1)

    def weights(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """[N, K, D] (+ bool mask [N, K], True = real patch) -> attention weights [N, K], rows sum to 1."""
        logits = self.score(torch.tanh(self.value(x)) * torch.sigmoid(self.gate(x))).squeeze(-1)
        if mask is not None:
            # finfo.min rather than -inf: a fully masked row then degrades to uniform weights, not NaN.
            logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
        return torch.softmax(logits, dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """[N, K, D] -> [N, D]."""
        return torch.einsum("nk,nkd->nd", self.weights(x, mask), x)
