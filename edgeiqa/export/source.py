"""What an export starts from: a torch model that outputs MOS, its contract, score mapping and provenance.

:func:`load_export_source` accepts a module (with a ``contract`` attribute) or a checkpoint folder
written by the distillation: ``state.json`` with ``model`` (registry name), ``model_kwargs`` and
``score_mapping`` (``{"kind": "logistic4", "params": [...]}``), and ``model.safetensors`` holding the
state dict of ``CalibratedModel(student, ScoreCalibration(fit))`` (keys ``model.*`` and
``calibration.*``), so the score calibration is part of the traced graph and every artifact speaks MOS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

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


def load_export_source(path_or_model: SourceLike, name: str | None = None, verify: bool = True) -> ExportSource:
    """An :class:`ExportSource` from a module, a checkpoint folder, or an ExportSource (returned as is)."""
    if isinstance(path_or_model, ExportSource):
        return path_or_model
    if isinstance(path_or_model, nn.Module):
        return _from_module(path_or_model, name)
    return _from_checkpoint(Path(path_or_model), name, verify)


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


def _from_checkpoint(path: Path, name: str | None, verify: bool = True) -> ExportSource:
    from edgeiqa.distill.saved_model import load_model

    if not path.exists():
        raise ConfigError(f"{path}: checkpoint not found")
    loaded = load_model(path, verify=verify)
    if loaded.kind != "calibrated":
        raise ConfigError(f"{loaded.folder}: a {loaded.kind} checkpoint has no score calibration; export the final "
                          "student (run the distillation's calibrate stage first)")
    source = _from_module(loaded.model, name or loaded.name)
    source.score_mapping = dict(loaded.score_mapping)
    # A verified load already hashed the weights and found the recorded digest.
    recorded = (loaded.checkpoint.state.get("sha256") or {}).get("model")
    source.checkpoint_sha256 = recorded if verify and recorded else sha256_file(loaded.folder / "model.safetensors")
    source.checkpoint_path = str(loaded.folder)
    return source
