"""What an export starts from: a torch model that outputs MOS, its contract, score mapping and provenance.

:func:`load_export_source` accepts a module (with a ``contract`` attribute) or a checkpoint folder
written by the distillation: ``state.json`` with ``model`` (registry name), ``model_kwargs`` and
``score_mapping`` (``{"kind": "logistic4", "params": [...]}``), and ``model.safetensors`` holding the
state dict of ``CalibratedModel(student, ScoreCalibration(fit))`` (keys ``model.*`` and
``calibration.*``), so the score calibration is part of the traced graph and every artifact speaks MOS.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.manifest import sha256_file

SourceLike = Union["ExportSource", nn.Module, str, os.PathLike]
IDENTITY_MAPPING = {"kind": "identity"}


@dataclass
class ExportSource:
    """A model ready to export: in eval mode, its output on the MOS scale (score calibration folded)."""

    model: nn.Module
    name: str
    contract: PreprocessContract
    score_mapping: dict[str, Any]
    checkpoint_sha256: str | None = None
    checkpoint_path: str | None = None

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.contract.input_names


def load_export_source(path_or_model: SourceLike, name: str | None = None) -> ExportSource:
    """An :class:`ExportSource` from a module, a checkpoint folder, or an ExportSource (returned as is)."""
    if isinstance(path_or_model, ExportSource):
        return path_or_model
    if isinstance(path_or_model, nn.Module):
        return _from_module(path_or_model, name)
    return _from_checkpoint(Path(path_or_model), name)


def _from_module(model: nn.Module, name: str | None) -> ExportSource:
    contract = getattr(model, "contract", None)
    if not isinstance(contract, PreprocessContract):
        raise ConfigError(
            f"{type(model).__name__} has no 'contract' attribute (a PreprocessContract): the exporter needs "
            "the preprocessing the model was trained with"
        )
    inner = getattr(model, "model", model)
    mapping = dict(IDENTITY_MAPPING)
    calibration = getattr(model, "calibration", None)
    if calibration is not None and hasattr(calibration, "to_fit"):
        mapping = calibration.to_fit().to_dict()
    model_name = name or getattr(inner, "model_name", None) or type(inner).__name__.lower()
    return ExportSource(model.eval(), str(model_name), contract, mapping)


def _from_checkpoint(path: Path, name: str | None) -> ExportSource:
    folder = _checkpoint_folder(path)
    state = _read_state(folder / "state.json")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{folder}: checkpoint has no model.safetensors")
    digest = sha256_file(weights)
    recorded = (state.get("sha256") or {}).get("model")
    if recorded is not None and recorded != digest:
        raise ConfigError(f"{weights}: sha256 differs from the one in state.json (corrupt or replaced checkpoint)")
    model = _build_calibrated(state, folder / "state.json")
    _load_weights(model, weights)
    source = _from_module(model.eval(), name or state["model"])
    source.score_mapping = dict(state["score_mapping"])
    source.checkpoint_sha256 = digest
    source.checkpoint_path = str(folder)
    return source


def _checkpoint_folder(path: Path) -> Path:
    """``path`` itself when it holds ``state.json``; else the stage/run folder's best (or last) checkpoint."""
    if (path / "state.json").is_file():
        return path
    if not path.exists():
        raise ConfigError(f"{path}: checkpoint not found")
    from edgeiqa.distill.checkpoint import resolve_checkpoint

    return resolve_checkpoint(path).folder


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read checkpoint state ({exc})") from exc
    for key in ("model", "score_mapping"):
        if key not in state:
            raise ConfigError(
                f"{path}: missing key {key!r} (an exportable checkpoint needs model, model_kwargs, score_mapping)")
    return state


def _build_calibrated(state: dict[str, Any], where: Path) -> nn.Module:
    from edgeiqa.metrics import Logistic4Fit
    from edgeiqa.distill.calibration import CalibratedModel, ScoreCalibration
    from edgeiqa.models import create_model

    kwargs = dict(state.get("model_kwargs") or {})
    contract = kwargs.get("contract", state.get("contract"))
    if isinstance(contract, dict):
        kwargs["contract"] = PreprocessContract.from_dict(contract)
    try:
        fit = Logistic4Fit.from_dict(state["score_mapping"])
    except ConfigError as exc:
        raise ConfigError(f"{where}: key 'score_mapping': {exc}") from exc
    student = create_model(state["model"], **kwargs)
    return CalibratedModel(student, ScoreCalibration(fit))


def _load_weights(model: nn.Module, weights: Path) -> None:
    """Strict load of ``model.safetensors``; mismatches are one-line ConfigErrors naming the file.

    EQCNet ties its fragment backbone's weights to the image backbone's; ``safetensors.save_model``
    stores such a tensor once, ``save_file`` of a cloned state dict under both names. Both load: a
    missing key is fine when a tensor it shares storage with was in the file.
    """
    from safetensors.torch import load_file

    tensors = load_file(str(weights))
    try:
        result = model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        detail = str(exc).strip().splitlines()[-1].strip()
        raise ConfigError(f"{weights}: weights do not fit the model named in state.json ({detail})") from exc
    aliases = _tied_aliases(model)
    missing = [k for k in result.missing_keys if not any(a in tensors for a in aliases.get(k, ()))]
    if missing or result.unexpected_keys:
        raise ConfigError(
            f"{weights}: weights do not fit the model named in state.json (missing {missing[:3]}, unexpected "
            f"{result.unexpected_keys[:3]}); keys must be those of CalibratedModel (model.*, calibration.*)"
        )


def _tied_aliases(model: nn.Module) -> dict[str, list[str]]:
    """State-dict key -> the other keys whose tensor shares its storage (tied weights)."""
    groups: dict[tuple[int, tuple[int, ...]], list[str]] = {}
    for key, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault((tensor.data_ptr(), tuple(tensor.shape)), []).append(key)
    return {k: [o for o in keys if o != k] for keys in groups.values() if len(keys) > 1 for k in keys}


def example_inputs(contract: PreprocessContract, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Seeded random inputs in the contract's shapes (working size), in the order models take them."""
    generator = torch.Generator().manual_seed(seed)
    size = contract.working_size
    inputs = [torch.randn(batch, 3, size, size, generator=generator)]
    if contract.fragments is not None:
        mosaic = contract.fragments.mosaic_size
        inputs.append(torch.randn(batch, 3, mosaic, mosaic, generator=generator))
    return tuple(inputs)
