"""Small building blocks shared by the teacher and the student.

Everything here maps onto operators that ONNX (opset 17), TensorRT, OpenVINO and Core ML all have:
1x1 / depthwise convolutions, BatchNorm, Hardswish, bilinear Resize. No transposed convolutions (they
leave checkerboard artifacts a quality model would learn to see) and no bicubic resize.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# timm's BatchNormAct2d subclasses nn.BatchNorm2d, so this also catches the fused norm+act layers.
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class MLP(nn.Sequential):
    """Linear -> activation -> dropout -> Linear: the projection/fusion head used by both models."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, drop: float = 0.0, act: type[nn.Module] = nn.GELU):
        super().__init__(nn.Linear(in_dim, hidden), act(), nn.Dropout(drop), nn.Linear(hidden, out_dim))


class TopDownFuse(nn.Module):
    """Fuse multi-level feature maps at the size of the shallowest one.

    Each level is first projected to ``channels`` by a 1x1 convolution at its own (small) resolution:
    a 1x1 convolution commutes with bilinear interpolation, so projecting first costs a fraction of
    projecting after. Deeper maps are then brought to the shallowest map's size with bilinear
    interpolation (align_corners=False, the one definition every runtime agrees on), summed, and
    smoothed by a depthwise-separable 3x3 convolution, which removes the blockiness that upsampling
    a coarse map leaves without a transposed convolution.
    """

    def __init__(self, in_channels: Sequence[int], channels: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1, bias=False) for c in in_channels)
        self.smooth = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.Hardswish(),
        )
        self.out_channels = channels

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Feature maps ordered shallow -> deep -> one map [N, channels, H0, W0]."""
        fused = self.lateral[0](features[0])
        size = fused.shape[-2:]
        for proj, feat in zip(self.lateral[1:], features[1:]):
            fused = fused + F.interpolate(proj(feat), size=size, mode="bilinear", align_corners=False)
        return self.smooth(fused)


def tie_weights_except_batchnorm(source: nn.Module, target: nn.Module) -> int:
    """Make ``target`` use ``source``'s parameters everywhere except in BatchNorm layers; returns the count.

    Why not simply run one backbone on both views: the views have different statistics (a reduced
    whole image vs native-resolution crops), training normalises each view's batch separately, but
    one set of BatchNorm running statistics would average the two, so eval-mode scores drift from
    what training optimised (measured: a test_eqcnet overfit to SRCC 1.0 in train mode scored 0.76 in
    eval mode). Per-view BatchNorm ("split BN", as in AdvProp) keeps weights shared, the
    statistics apart, and the cost the same. The modules must be the same architecture.
    """
    tied = 0
    source_modules = dict(source.named_modules())
    for name, module in target.named_modules():
        if isinstance(module, _BATCHNORMS):
            continue
        for pname, _ in list(module.named_parameters(recurse=False)):
            setattr(module, pname, getattr(source_modules[name], pname))
            tied += 1
    return tied
