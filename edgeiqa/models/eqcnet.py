"""EQCNet, the edge student: a mobile backbone over two cheap views, fused, compared with pivots.

Views (built by :func:`edgeiqa.runtime.preprocess.preprocess_image` from ``model.contract``):

* ``image`` [N, 3, H, W]: the whole image reduced to the working size with an antialiased resize
  (composition, content, global blur);
* ``fragments`` [N, 3, F, F]: a mosaic of native-resolution patches (noise, compression, fine blur:
  exactly what a 7x reduction of a 4K photo destroys).

Named submodules, for forward hooks (e.g. feature distillation):

* ``backbone``: timm ``features_only`` model over ``image`` -> list of maps (shallow -> deep);
* ``fragment_backbone``: the same architecture over ``fragments``, with its own weights by default
  (``shared_backbone=False``). With ``shared_backbone=True`` it shares every convolution/linear weight
  with ``backbone`` and keeps only its own BatchNorm layers (see
  :func:`edgeiqa.models.layers.tie_weights_except_batchnorm`);
* ``fuse`` / ``fragment_fuse``: :class:`TopDownFuse` per view -> one map at the shallowest level;
* ``embed``: MLP over the concatenated mean+std pooled views -> embedding [N, embed_dim];
* ``head``: :class:`ComparisonHead` -> raw score [N].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgeiqa.models.comparison_head import ComparisonHead
from edgeiqa.models.inputs import example_inputs
from edgeiqa.models.layers import MLP, TopDownFuse, tie_weights_except_batchnorm
from edgeiqa.models.pooling import mean_std_pool
from edgeiqa.models.pretrained import create_backbone
from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract


def _default_contract() -> PreprocessContract:
    return PreprocessContract(working_size=384, fragments=FragmentSpec(grid=8, patch=32))


@dataclass(frozen=True)
class EQCNetConfig:
    """Everything that defines an EQCNet's architecture; JSON-serialisable via :meth:`to_dict`."""

    backbone: str = "mobilenetv3_large_100"
    # timm feature levels to fuse (for MobileNets 2, 3, 4 = strides 8, 16, 32): stride 8 still
    # resolves 8x8 JPEG blocks, stride 32 carries semantics.
    out_indices: tuple[int, ...] = (2, 3, 4)
    fuse_channels: int = 96
    embed_dim: int = 256
    num_pivots: int = 16
    # Share the backbone's weights between the two views (BatchNorm kept per view) or not. Same MACs;
    # sharing halves the backbone parameters (eqcnet_mobilenetv3_large: 3.40 M vs 6.35 M). Accuracy
    # decides the default: from scratch, 200 steps of batch 32 gave held-out SRCC 0.19 / 0.04 (seeds
    # 0 / 1) shared vs 0.28 / 0.05 separate; 10 quickstart epochs (batch 8, lr 3e-3, seed 0) peaked at
    # val SRCC 0.38 shared vs 0.54 separate. The views see different statistics: let them specialise.
    shared_backbone: bool = False
    drop_rate: float = 0.0
    score_range: tuple[float, float] = (0.0, 1.0)
    contract: PreprocessContract = field(default_factory=_default_contract)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class EQCNet(nn.Module):
    """Student: ``forward(image, fragments=None) -> raw score [N]``; see the module docstring."""

    def __init__(
        self, config: EQCNetConfig, pretrained: bool = False, pretrained_cfg_overlay: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.contract = config.contract

        def make() -> nn.Module:
            return create_backbone(
                config.backbone,
                config.out_indices,
                pretrained=pretrained,
                pretrained_cfg_overlay=pretrained_cfg_overlay,
            )

        self.backbone = make()
        channels = self.backbone.feature_info.channels()
        self.fuse = TopDownFuse(channels, config.fuse_channels)
        self.has_fragments = config.contract.fragments is not None
        views = 1
        if self.has_fragments:
            views = 2
            self.fragment_backbone = make()
            if config.shared_backbone:
                tie_weights_except_batchnorm(self.backbone, self.fragment_backbone)
            self.fragment_fuse = TopDownFuse(channels, config.fuse_channels)
        self.embed = MLP(
            views * 2 * config.fuse_channels,
            config.embed_dim,
            config.embed_dim,
            drop=config.drop_rate,
            act=nn.Hardswish,
        )
        self.head = ComparisonHead(config.embed_dim, config.num_pivots, tuple(config.score_range))

    def forward_features(self, image: torch.Tensor, fragments: torch.Tensor | None = None) -> torch.Tensor:
        """Both views -> embedding [N, embed_dim]."""
        pooled = [mean_std_pool(self.fuse(self.backbone(image)))]
        if self.has_fragments:
            if fragments is None:
                raise ValueError("this EQCNet's contract has a fragment view: pass fragments [N, 3, F, F]")
            pooled.append(mean_std_pool(self.fragment_fuse(self.fragment_backbone(fragments))))
        return self.embed(torch.cat(pooled, dim=1))

    def forward_head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Embedding [N, D] -> raw score [N]."""
        return self.head(embedding)

    def forward(self, image: torch.Tensor, fragments: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(image, fragments))

    def order_losses(self, embedding: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named losses keeping the embedding space ordered (see :meth:`ComparisonHead.order_losses`)."""
        return self.head.order_losses(embedding, target)

    def example_inputs(self, batch: int = 1, image_hw: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
        """Random inputs in the contract's shapes (working size unless ``image_hw``): the export's own."""
        return example_inputs(self.contract, batch, image_hw, device=next(self.parameters()).device)
