"""EIQANet, the teacher: rich multi-level features over a global view and dynamic native-resolution patches.

Inputs come from :func:`edgeiqa.models.teacher_views.teacher_views` + :func:`collate_teacher_views`.

Named submodules, for forward hooks:

* ``backbone``: timm ``features_only`` model; runs on the global view, then on the real patches;
* ``stage_proj``: one Linear + GELU per stage over that stage's mean+std pooled map;
* ``fuse``: MLP over the concatenated stage projections -> per-view embedding [*, embed_dim];
* ``attn_pool``: masked attention pooling over the patch embeddings -> [N, embed_dim];
* ``head``: MLP over [global, pooled patches] -> raw score [N].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgeiqa.models.layers import MLP
from edgeiqa.models.pooling import AttentionPool, mean_std_pool
from edgeiqa.models.pretrained import create_backbone
from edgeiqa.models.teacher_views import TeacherViewSpec


@dataclass(frozen=True)
class EIQANetConfig:
    """Everything that defines an EIQANet's architecture; JSON-serialisable via :meth:`to_dict`."""

    backbone: str = "convnext_tiny"
    out_indices: tuple[int, ...] | None = None  # None: every stage timm exposes
    stage_dim: int = 128
    embed_dim: int = 512
    head_hidden: int = 256
    attn_hidden: int = 128
    drop_rate: float = 0.1
    views: TeacherViewSpec = field(default_factory=TeacherViewSpec)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class EIQANet(nn.Module):
    """Teacher: ``forward(global_view, patches, patch_mask=None) -> raw score [N]``."""

    def __init__(
        self, config: EIQANetConfig, pretrained: bool = False, pretrained_cfg_overlay: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.view_spec = config.views
        self.contract = config.views.contract
        self.backbone = create_backbone(
            config.backbone, config.out_indices, pretrained=pretrained, pretrained_cfg_overlay=pretrained_cfg_overlay
        )
        channels = self.backbone.feature_info.channels()
        self.stage_proj = nn.ModuleList(nn.Sequential(nn.Linear(2 * c, config.stage_dim), nn.GELU()) for c in channels)
        stages_dim = len(channels) * config.stage_dim
        self.fuse = MLP(stages_dim, config.embed_dim, config.embed_dim, drop=config.drop_rate)
        self.attn_pool = AttentionPool(config.embed_dim, config.attn_hidden)
        self.head = MLP(2 * config.embed_dim, config.head_hidden, 1, drop=config.drop_rate)

    def embed_view(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] -> [B, embed_dim]: every stage pooled by mean and std, projected, fused."""
        stages = [proj(mean_std_pool(f)) for proj, f in zip(self.stage_proj, self.backbone(x))]
        return self.fuse(torch.cat(stages, dim=1))

    def embed_patches(self, patches: torch.Tensor, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[N, K, 3, P, P] -> [N, K, embed_dim]; padded slots (mask False) are skipped and left zero."""
        n, k = patches.shape[:2]
        if patch_mask is None:
            return self.embed_view(patches.flatten(0, 1)).reshape(n, k, -1)
        # Only real patches go through the backbone: a batch mixing a 4K and a small image would
        # otherwise spend most of its compute on padding.
        real = self.embed_view(patches[patch_mask])
        out = real.new_zeros(n, k, real.shape[-1])
        out[patch_mask] = real
        return out

    def forward_features(
        self, global_view: torch.Tensor, patches: torch.Tensor, patch_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Embedding [N, 2 * embed_dim]: global view and attention-pooled patches, concatenated."""
        pooled = self.attn_pool(self.embed_patches(patches, patch_mask), patch_mask)
        return torch.cat([self.embed_view(global_view), pooled], dim=1)

    def forward_head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Embedding [N, 2 * embed_dim] -> raw score [N]."""
        return self.head(embedding).squeeze(1)

    def forward(
        self, global_view: torch.Tensor, patches: torch.Tensor, patch_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.forward_head(self.forward_features(global_view, patches, patch_mask))
