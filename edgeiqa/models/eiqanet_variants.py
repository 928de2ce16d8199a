"""Registered EIQANet (teacher) variants. Keyword arguments override :class:`EIQANetConfig` fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from edgeiqa.models._build import make_config
from edgeiqa.models.eiqanet import EIQANet, EIQANetConfig
from edgeiqa.models.pretrained import overlay_contract, with_backbone_normalisation
from edgeiqa.models.registry import register_model
from edgeiqa.models.teacher_views import TeacherViewSpec
from edgeiqa.runtime.contract import PreprocessContract


def _eiqanet(variant: str, defaults: dict[str, Any], pretrained: bool, **kwargs: Any) -> EIQANet:
    overlay = kwargs.pop("pretrained_cfg_overlay", None)
    # The global view's contract carries the backbone's own mean/std (also when only the backbone is
    # overridden); views the caller passes keep any mean/std they name.
    backbone = kwargs.get("backbone", defaults["backbone"])
    base: TeacherViewSpec = defaults["views"]
    views = kwargs.get("views")
    if views is None:
        defaults = {
            **defaults,
            "views": dataclasses.replace(base, contract=with_backbone_normalisation(base.contract, backbone)),
        }
    elif isinstance(views, Mapping):
        # A partial mapping (YAML's ``views: {contract: {working_size: 384}}``) keeps the variant's
        # patch size, density, patch cap and contract values for everything it does not name.
        contract = views.get("contract", {})
        contract = (
            overlay_contract(base.contract, contract, backbone)
            if isinstance(contract, Mapping)
            else with_backbone_normalisation(contract, backbone)
        )
        base_values = {k: v for k, v in base.to_dict().items() if k != "contract"}
        kwargs["views"] = {**base_values, **views, "contract": contract}
    config = make_config(EIQANetConfig, variant, defaults, kwargs)
    return EIQANet(config, pretrained=pretrained, pretrained_cfg_overlay=overlay)


def _views(global_size: int, patch: int, density: float, max_patches: int) -> TeacherViewSpec:
    contract = PreprocessContract(working_size=global_size, fragments=None)
    return TeacherViewSpec(contract, patch, density, max_patches)


@register_model
def eiqanet_convnext_tiny(pretrained: bool = False, **kwargs: Any) -> EIQANet:
    """Paper-scale teacher: ConvNeXt-T, 384 px global view + up to 16 native 224 px patches (16 at 4K)."""
    defaults = dict(backbone="convnext_tiny", views=_views(384, 224, 10.0, 16))
    return _eiqanet("eiqanet_convnext_tiny", defaults, pretrained, **kwargs)


@register_model
def eiqanet_lite2(pretrained: bool = False, **kwargs: Any) -> EIQANet:
    """Teacher: EfficientNet-Lite2 (ImageNet offline), 260 px global view + up to 6 native 224 px patches.

    One patch for a LIVE-C 500x500 photo (1.38 GMACs), 6 from 1080p up (4.14 GMACs on a 4K photo).
    """
    defaults = dict(
        backbone="efficientnet_lite2",
        views=_views(260, 224, 8.0, 6),
        stage_dim=128,
        embed_dim=256,
        head_hidden=128,
        attn_hidden=64,
    )
    return _eiqanet("eiqanet_lite2", defaults, pretrained, **kwargs)


@register_model
def eiqanet_cpu(pretrained: bool = False, **kwargs: Any) -> EIQANet:
    """CPU teacher: ConvNeXt-Atto, 224 px global view + up to 8 native 128 px patches."""
    defaults = dict(
        backbone="convnext_atto",
        views=_views(224, 128, 8.0, 8),
        stage_dim=64,
        embed_dim=256,
        head_hidden=128,
        attn_hidden=64,
    )
    return _eiqanet("eiqanet_cpu", defaults, pretrained, **kwargs)


@register_model
def test_eiqanet(pretrained: bool = False, **kwargs: Any) -> EIQANet:
    """Tiny CI teacher (timm ``test_convnext``): 64 px global view + up to 4 native 32 px patches."""
    defaults = dict(
        backbone="test_convnext",
        views=_views(64, 32, 4.0, 4),
        stage_dim=16,
        embed_dim=32,
        head_hidden=32,
        attn_hidden=16,
        drop_rate=0.0,
    )
    return _eiqanet("test_eiqanet", defaults, pretrained, **kwargs)
