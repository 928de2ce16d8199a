"""Model registry and factory, timm style: ``create_model(name, pretrained=False, **kwargs)``.

Variant builders register themselves with :func:`register_model` into one explicit dict. The variant
modules are listed in :data:`VARIANT_MODULES` and imported on first use of the registry, never by a
star-import side effect, so importing this module stays cheap and the set of variants is greppable.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from edgeiqa.errors import ConfigError

VARIANT_MODULES = ("edgeiqa.models.eqcnet_variants", "edgeiqa.models.eiqanet_variants")

Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)

_MODELS: dict[str, Builder] = {}


def register_model(fn: B) -> B:
    """Decorator: register ``fn`` under its function name; duplicate names are a programming error."""
    name = fn.__name__
    if name in _MODELS and _MODELS[name] is not fn:
        raise ValueError(f"model {name!r} is registered twice ({_MODELS[name].__module__} and {fn.__module__})")
    _MODELS[name] = fn
    return fn


def _load_variants() -> None:
    for module in VARIANT_MODULES:
        importlib.import_module(module)


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered names matching a shell-style ``pattern`` (e.g. ``"eqcnet_*"``)."""
    _load_variants()
    return sorted(name for name in _MODELS if fnmatch.fnmatchcase(name, pattern))


def is_model(name: str) -> bool:
    _load_variants()
    return name in _MODELS


def create_model(
    name: str, pretrained: bool = False, checkpoint_path: str | os.PathLike | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered model.

    ``pretrained`` loads ImageNet weights into the timm backbone (``pretrained_cfg_overlay=dict(file=...)``
    names a local copy); ``checkpoint_path`` then loads a whole-model state dict. Other keyword
    arguments override fields of the variant's config (e.g. ``embed_dim=128``, ``contract=...``).
    The model gets ``model_name`` and JSON-ready ``model_kwargs`` so a checkpoint can rebuild it with
    ``create_model(model_name, **model_kwargs)`` (or with ``**model.config.to_dict()``, the full config).
    """
    _load_variants()
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}")
    model = _MODELS[name](pretrained=pretrained, **kwargs)
    if checkpoint_path is not None:
        from edgeiqa.models.pretrained import load_checkpoint

        load_checkpoint(model, checkpoint_path)
    model.model_name = name
    # Dataclass options (contract, views) stored as dicts: the factory takes either, JSON takes dicts.
    model.model_kwargs = {
        k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in kwargs.items() if k != "pretrained_cfg_overlay"
    }
    return model
