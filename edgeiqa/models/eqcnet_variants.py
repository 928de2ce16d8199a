"""Registered EQCNet (student) variants. Keyword arguments override :class:`EQCNetConfig` fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeiqa.models._build import make_config
from edgeiqa.models.eqcnet import EQCNet, EQCNetConfig
from edgeiqa.models.pretrained import overlay_contract, with_backbone_normalisation
from edgeiqa.models.registry import register_model
from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract


def _eqcnet(variant: str, defaults: dict[str, Any], pretrained: bool, **kwargs: Any) -> EQCNet:
    overlay = kwargs.pop("pretrained_cfg_overlay", None)
    # The contract carries the backbone's own mean/std (also when only the backbone is overridden);
    # a partial contract mapping keeps the variant's other values and any mean/std it names.
    backbone = kwargs.get("backbone", defaults["backbone"])
    if "contract" not in kwargs:
        defaults = {**defaults, "contract": with_backbone_normalisation(defaults["contract"], backbone)}
    elif isinstance(kwargs["contract"], Mapping):
        kwargs["contract"] = overlay_contract(defaults["contract"], kwargs["contract"], backbone)
    config = make_config(EQCNetConfig, variant, defaults, kwargs)
    return EQCNet(config, pretrained=pretrained, pretrained_cfg_overlay=overlay)


@register_model
def eqcnet_mobilenetv3_large(pretrained: bool = False, **kwargs: Any) -> EQCNet:
    """Default edge student: MobileNetV3-Large, 384 px whole image + 8x8 mosaic of 32 px native patches."""
    contract = PreprocessContract(working_size=384, fragments=FragmentSpec(grid=8, patch=32))
    defaults = dict(backbone="mobilenetv3_large_100", contract=contract)
    return _eqcnet("eqcnet_mobilenetv3_large", defaults, pretrained, **kwargs)


@register_model
def eqcnet_lite0(pretrained: bool = False, **kwargs: Any) -> EQCNet:
    """Edge student: EfficientNet-Lite0 (ImageNet offline), 384 px whole image + 8x8 mosaic of 32 px patches.

    ``efficientnet_lite0`` (symmetric padding: no dynamic Pad nodes for Core ML/LiteRT/TensorRT) with the
    TF weights: frozen-feature ridge on LIVE-C ranks as well as ``tf_efficientnet_lite0`` (SRCC 0.783 vs
    0.785, 10 splits, sd 0.048). 1.61 GMACs on a 4K photo.

    ``reducing_gap=1``: Pillow first box-reduces by the whole factor, then resizes the rest antialiased.
    On a 3840x2160 photo the whole-image view costs 6.9 ms instead of 27 ms with the default gap of 3,
    the largest step of the 4K pipeline after the decode; on photos under twice the working size (LIVE-C's
    500 px) both gaps give the same pixels.
    """
    contract = PreprocessContract(working_size=384, reducing_gap=1.0, fragments=FragmentSpec(grid=8, patch=32))
    defaults = dict(backbone="efficientnet_lite0", contract=contract)
    return _eqcnet("eqcnet_lite0", defaults, pretrained, **kwargs)


@register_model
def eqcnet_lite0_m(pretrained: bool = False, **kwargs: Any) -> EQCNet:
    """The ladder's middle student: ``eqcnet_lite0`` at a 256 px whole image + 6x6 mosaic (0.77 GMACs at 4K)."""
    contract = PreprocessContract(working_size=256, reducing_gap=1.0, fragments=FragmentSpec(grid=6, patch=32))
    return _eqcnet("eqcnet_lite0_m", dict(backbone="efficientnet_lite0", contract=contract), pretrained, **kwargs)


@register_model
def eqcnet_lite0_s(pretrained: bool = False, **kwargs: Any) -> EQCNet:
    """The ladder's smallest student: a 144 px whole image + 4x4 mosaic of 32 px patches (0.29 GMACs at 4K),
    for the cheapest devices, where a teacher's labels matter most."""
    contract = PreprocessContract(working_size=144, reducing_gap=1.0, fragments=FragmentSpec(grid=4, patch=32))
    return _eqcnet("eqcnet_lite0_s", dict(backbone="efficientnet_lite0", contract=contract), pretrained, **kwargs)


@register_model
def eqcnet_mobilenetv4_conv_small(pretrained: bool = False, **kwargs: Any) -> EQCNet:
    """MobileNetV4-Conv-Small student, same views as the default: fewer params, similar cost."""
    contract = PreprocessContract(working_size=384, fragments=FragmentSpec(grid=8, patch=32))
    defaults = dict(backbone="mobilenetv4_conv_small", contract=contract)
    return _eqcnet("eqcnet_mobilenetv4_conv_small", defaults, pretrained, **kwargs)


@register_model
def eqcnet_mobilenetv3_small(pretrained: bool = False, **kwargs: Any) -> EQCNet:
    """CPU-quickstart student: MobileNetV3-Small, 224 px whole image + 7x7 mosaic of 32 px patches."""
    contract = PreprocessContract(working_size=224, fragments=FragmentSpec(grid=7, patch=32))
    defaults = dict(backbone="mobilenetv3_small_100", contract=contract, fuse_channels=64, embed_dim=128)
    return _eqcnet("eqcnet_mobilenetv3_small", defaults, pretrained, **kwargs)


@register_model
def test_eqcnet(pretrained: bool = False, **kwargs: Any) -> EQCNet:
    """Tiny CI student (MobileNetV3-Small x0.5, real mobile ops): 64 px image + 2x2 mosaic of 16 px."""
    contract = PreprocessContract(working_size=64, fragments=FragmentSpec(grid=2, patch=16))
    defaults = dict(backbone="mobilenetv3_small_050", contract=contract, fuse_channels=16, embed_dim=32, num_pivots=8)
    return _eqcnet("test_eqcnet", defaults, pretrained, **kwargs)
