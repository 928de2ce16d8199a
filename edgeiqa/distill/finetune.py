"""What fine-tuning a pretrained backbone on a few hundred photos needs, the way timm users expect it.

* **A lower learning rate for the backbone** than for the new layers (``backbone_lr_mult``): the
  ImageNet features are the asset; a head's learning rate on them forgets what makes them good.
* **No weight decay on norms and biases** (timm's ``param_groups_weight_decay`` rule).
* **BatchNorm statistics frozen** (``freeze_bn``): with batches of 8 on a CPU, per-batch statistics are
  noisy, and updating the running estimates from them drags the pretrained ones away.
* **The backbone frozen for the first epochs** (``freeze_backbone_epochs``): the randomly initialised head
  first learns to read the features, so its large early gradients never reach the backbone.

A backbone parameter is one under a module whose name ends in ``backbone`` (EQCNet's ``backbone`` and
``fragment_backbone``, EIQANet's ``backbone``), wherever the model sits inside the training module.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgeiqa.distill.config import OptimConfig


def is_backbone_param(name: str) -> bool:
    return any(part.endswith("backbone") for part in name.split(".")[:-1])


def param_groups(module: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """AdamW groups: backbone / new layers x decayed / not decayed; each keeps its ``base_lr``."""
    groups: dict[tuple[bool, bool], list[torch.Tensor]] = {}
    # Every parameter, even one frozen right now: freeze_backbone_epochs thaws the backbone later, and
    # AdamW skips parameters without gradients anyway.
    for name, param in module.named_parameters():
        no_decay = param.ndim <= 1  # norms, biases, pivots' scalars: decaying them only hurts
        groups.setdefault((is_backbone_param(name), no_decay), []).append(param)
    out = []
    for (backbone, no_decay), params in sorted(groups.items()):
        base_lr = cfg.lr * (cfg.backbone_lr_mult if backbone else 1.0)
        out.append(
            {
                "params": params,
                "lr": base_lr,
                "base_lr": base_lr,
                "weight_decay": 0.0 if no_decay else cfg.weight_decay,
                "backbone": backbone,
            }
        )
    return out


def set_backbone_trainable(module: nn.Module, trainable: bool) -> None:
    for name, param in module.named_parameters():
        if is_backbone_param(name):
            param.requires_grad_(trainable)


def apply_train_mode(module: nn.Module, cfg: OptimConfig, epoch: int) -> None:
    """After ``module.train()``: freeze BatchNorm statistics (all of them, or the frozen backbone's)."""
    backbone_frozen = epoch < cfg.freeze_backbone_epochs
    set_backbone_trainable(module, not backbone_frozen)
    for name, child in module.named_modules():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            in_backbone = is_backbone_param(name + ".x")
            if cfg.freeze_bn or (backbone_frozen and in_backbone):
                child.eval()
