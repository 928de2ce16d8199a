"""What an export starts from: a torch model that outputs MOS, its contract, score mapping and provenance.

:func:`load_export_source` accepts a module (with a ``contract`` attribute) or a checkpoint folder
written by the distillation: ``state.json`` with ``model`` (registry name), ``model_kwargs`` and
``score_mapping`` (``{"kind": "logistic4", "params": [...]}``), and ``model.safetensors`` holding the
state dict of ``CalibratedModel(student, ScoreCalibration(fit))`` (keys ``model.*`` and
``calibration.*``), so the score calibration is part of the traced graph and every artifact speaks MOS.

A quantization-aware student (``student/qat_final``, its ``state.json`` has ``quantization``) is a
fake-quantized source: it exports only as ``onnx int8-qat`` (or a TensorRT INT8 engine built from
that), and its parity gate compares with the *float* student its ``float_reference`` names
(``student/final``, sha256-checked), the same reference post-training INT8 is gated against, so both
INT8 paths answer to one fidelity rule.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from torch import nn

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.manifest import sha256_file
from edgeiqa.runtime.zoo import resolve_checkpoint_name

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
    # A QAT source's fake-quant settings (None: a float model) and what its parity gate compares with
    # (None: the model itself, the rule for float sources).
    quantization: dict[str, Any] | None = None
    reference: nn.Module | None = None
    reference_name: str = "torch"

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.contract.input_names

    @property
    def fake_quantized(self) -> bool:
        return self.quantization is not None

    @property
    def reference_model(self) -> nn.Module:
        """The torch model the parity gate scores beside the artifact."""
        return self.reference if self.reference is not None else self.model


def weights_digest(model: nn.Module) -> str:
    """sha256 over a module's class and state (names, dtypes, bytes): equal digests, equal model."""
    import torch

    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def load_export_source(path_or_model: SourceLike, name: str | None = None, verify: bool = True) -> ExportSource:
    """An :class:`ExportSource` from a module, a checkpoint folder, a bundled model's name
    (:mod:`edgeiqa.runtime.zoo`), or an ExportSource (returned as is)."""
    if isinstance(path_or_model, ExportSource):
        return path_or_model
    if isinstance(path_or_model, nn.Module):
        return _from_module(path_or_model, name)
    # A bundled model's name (no file of that name here) exports its half-precision checkpoint.
    return _from_checkpoint(resolve_checkpoint_name(path_or_model), name, verify)


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
    from edgeiqa.models.fake_quant import SCHEME, is_fake_quantized  # the models floor imports timm

    quantization = {"scheme": SCHEME} if is_fake_quantized(model) else None
    return ExportSource(model.eval(), str(model_name), contract, mapping, quantization=quantization)


def _from_checkpoint(path: Path, name: str | None, verify: bool = True) -> ExportSource:
    from edgeiqa.distill.saved_model import load_model

    if not path.exists():
        raise ConfigError(f"{path}: checkpoint not found")
    loaded = load_model(path, verify=verify)
    if loaded.kind != "calibrated":
        raise ConfigError(
            f"{loaded.folder}: a {loaded.kind} checkpoint has no score calibration; export the final "
            "student (run the distillation's calibrate stage first)"
        )
    source = _from_module(loaded.model, name or loaded.name)
    source.score_mapping = dict(loaded.score_mapping)
    # A verified load already hashed the weights and found the recorded digest.
    recorded = (loaded.checkpoint.state.get("sha256") or {}).get("model")
    source.checkpoint_sha256 = recorded if verify and recorded else sha256_file(loaded.folder / "model.safetensors")
    source.checkpoint_path = str(loaded.folder)
    if loaded.quantization is not None:
        source.quantization = dict(loaded.quantization)
        source.reference, source.reference_name = _float_reference(loaded, verify)
    return source


def _float_reference(loaded: Any, verify: bool) -> tuple[nn.Module, str]:
    """The float student a QAT checkpoint's state names (``float_reference``), checked against its sha256."""
    from edgeiqa.distill.saved_model import load_model

    state_file = loaded.folder / "state.json"
    recorded = loaded.checkpoint.state.get("float_reference")
    if not isinstance(recorded, dict) or not recorded.get("stage"):
        raise ConfigError(
            f"{state_file}: a QAT checkpoint needs 'float_reference' (the float student its INT8 "
            "export is gated against); re-run `edgeiqa distill --stages qat`"
        )
    folder = (loaded.folder.parent / str(recorded["stage"])).resolve()
    if not folder.exists():
        raise ConfigError(
            f"{folder}: the float student {state_file} is gated against is missing; run the "
            "calibrate stage (then qat) in this run folder"
        )
    reference = load_model(folder, verify=verify)
    digest = (reference.checkpoint.state.get("sha256") or {}).get("model")
    if recorded.get("sha256") and digest != recorded["sha256"]:
        raise ConfigError(
            f"{reference.folder}: sha256 {digest} is not the {recorded['sha256']} the QAT student "
            f"was trained beside ({state_file}); the float student changed: re-run the qat stage"
        )
    if reference.kind != "calibrated" or reference.quantization is not None:
        raise ConfigError(
            f"{reference.folder}: the float reference of a QAT student must be a score-calibrated "
            "float student (student/final)"
        )
    return reference.model, f"torch float student ({reference.folder.parent.name}/{reference.folder.name})"
