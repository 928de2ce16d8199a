"""Fine-tuning options for pretrained backbones: backbone lr multiplier, frozen BN statistics, frozen backbone."""

from __future__ import annotations

import torch

from edgeiqa.distill.config import OptimConfig
from edgeiqa.distill.finetune import apply_train_mode, is_backbone_param, param_groups
from edgeiqa.models import create_model


class _Wrapper(torch.nn.Module):  # training modules hold the model under a name, like StudentTrainModule
    def __init__(self) -> None:
        super().__init__()
        self.student = create_model("test_eqcnet")


def _step(module: _Wrapper, cfg: OptimConfig, epoch: int) -> None:
    optimizer = torch.optim.AdamW(param_groups(module, cfg))
    module.train()
    apply_train_mode(module, cfg, epoch)
    image, fragments = module.student.example_inputs(batch=4)
    loss = module.student(image, fragments).square().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def test_backbone_params_get_the_multiplied_lr_and_norms_no_decay() -> None:
    module = _Wrapper()
    cfg = OptimConfig(lr=1e-3, backbone_lr_mult=0.1, weight_decay=0.05)
    groups = param_groups(module, cfg)
    by_id = {id(p): g for g in groups for p in g["params"]}
    for name, param in module.named_parameters():
        group = by_id[id(param)]
        assert group["lr"] == (1e-4 if is_backbone_param(name) else 1e-3), name
        assert group["weight_decay"] == (0.0 if param.ndim <= 1 else 0.05), name
    assert is_backbone_param("student.fragment_backbone.blocks.0.conv.weight")
    assert not is_backbone_param("student.head.pivots")


def test_frozen_batchnorm_keeps_running_statistics() -> None:
    torch.manual_seed(0)
    module = _Wrapper()
    bn = next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    _step(module, OptimConfig(freeze_bn=True), epoch=0)
    assert torch.equal(bn.running_mean, before)
    _step(module, OptimConfig(freeze_bn=False), epoch=0)
    assert not torch.equal(bn.running_mean, before)  # guards the assertion above


def test_backbone_sits_out_its_frozen_epochs_while_the_head_learns() -> None:
    torch.manual_seed(0)
    module = _Wrapper()
    cfg = OptimConfig(lr=1e-2, freeze_backbone_epochs=1)
    stem = module.student.backbone.conv_stem.weight.detach().clone()
    head = module.student.embed.state_dict()
    head = {k: v.clone() for k, v in head.items()}
    _step(module, cfg, epoch=0)
    assert torch.equal(module.student.backbone.conv_stem.weight, stem)
    assert any(not torch.equal(v, head[k]) for k, v in module.student.embed.state_dict().items())
    _step(module, cfg, epoch=1)  # past the frozen epochs the backbone trains
    assert not torch.equal(module.student.backbone.conv_stem.weight, stem)
