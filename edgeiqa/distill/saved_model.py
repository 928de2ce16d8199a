"""The one way from a checkpoint folder to a model: :func:`load_model`.

Training, export, the torch benchmark runner and ``Predictor.load(folder)`` all call it, so every
reader applies the same integrity check (sha256 of the weights against ``state.json``), the same
key-prefix rules and the same handling of tied weights. What a checkpoint holds depends on the stage
that wrote it (see :mod:`edgeiqa.distill.checkpoint` for the folder layout):

* a teacher stage: the state dict of ``TeacherTrainModule`` (keys ``teacher.*``);
* a student stage (pretrain / finetune): ``StudentTrainModule`` (``student.*`` plus projectors, which
  only training needs);
* the final, score-calibrated student: ``CalibratedModel`` (``model.*`` and ``calibration.*``), with the
  fitted map in ``state.json``'s ``score_mapping``; its output is already on the MOS scale.

A quantization-aware (QAT) student, of either stage kind, says so in ``state.json``'s ``quantization``
(the :class:`~edgeiqa.models.fake_quant.QuantSettings` it was trained with): the registered model is
rebuilt, its Conv2d/Linear layers are replaced by their fake-quant twins with those settings, and the
weights, calibrated input ranges (``*.input_quantizer.amax``) included, are loaded strictly into that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeiqa.distill.calibration import CalibratedModel, ScoreCalibration, score_map_from_dict
from edgeiqa.distill.checkpoint import Checkpoint, resolve_checkpoint
from edgeiqa.errors import ConfigError
from edgeiqa.runtime.contract import PreprocessContract

PathLike = str | os.PathLike
# Prefix of the scorer's weights in each kind of checkpoint (see the module docstring).
_PREFIX = {"teacher": "teacher.", "student": "student.", "calibrated": ""}


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint, in eval mode on CPU.

    Attributes:
        model: the scorer. ``calibrated``: MOS-scale output. ``teacher``/``student``: the raw output,
            trained against MOS normalised to 0..1 (see :meth:`to_mos`).
        kind: ``teacher``, ``student`` (an uncalibrated stage) or ``calibrated`` (a final student).
        name: the registry name the checkpoint was built from.
        contract: the preprocessing contract (for a teacher, the global view's; see ``views``).
        score_mapping: the folded score map (``{"kind": "identity"}`` for uncalibrated models).
        mos_range: the MOS scale the model was trained on, when the checkpoint records it.
        checkpoint: the checkpoint folder it came from.
    """

    model: nn.Module
    kind: str
    name: str
    contract: PreprocessContract
    score_mapping: dict[str, Any]
    mos_range: tuple[float, float] | None
    checkpoint: Checkpoint

    @property
    def folder(self) -> Path:
        return self.checkpoint.folder

    @property
    def quantization(self) -> dict[str, Any] | None:
        """The fake-quant settings of a QAT checkpoint (``state.json``'s ``quantization``); None when float."""
        return self.checkpoint.state.get("quantization")

    @property
    def views(self) -> Any:
        """The teacher's view spec (global view + native patches); None for students."""
        return getattr(getattr(self.model, "config", None), "views", None)

    def to_mos(self, raw: torch.Tensor) -> torch.Tensor:
        """Scores on the MOS scale: identity for calibrated students, the 0..1 -> MOS line otherwise."""
        if self.kind == "calibrated" or self.mos_range is None:
            return raw
        low, high = self.mos_range
        return raw * (high - low) + low


def checkpoint_kind(state: dict[str, Any]) -> str:
    """Which kind of model a ``state.json`` describes (see :class:`LoadedModel`)."""
    if "score_mapping" in state or state.get("stage") == "final":
        return "calibrated"
    kind = state.get("kind")
    if kind not in ("teacher", "student"):
        raise ConfigError(f"checkpoint state has kind {kind!r}; expected 'teacher', 'student' or a final student")
    return str(kind)


def load_model(path: PathLike, verify: bool = True) -> LoadedModel:
    """Rebuild the model a checkpoint folder (or its stage / run folder) holds; see the module docstring.

    ``verify=False`` skips the sha256 check (the CLI's ``--no-verify``). Every problem is one
    :class:`~edgeiqa.errors.EdgeIQAError` line naming the folder.
    """
    ckpt = resolve_checkpoint(Path(path), verify=verify)
    state = ckpt.state
    if "model" not in state:
        raise ConfigError(f"{ckpt.folder / 'state.json'}: missing key 'model' (the registry name to rebuild)")
    kind = checkpoint_kind(state)
    scorer = _build_registered(state, ckpt.folder)
    quantization = state.get("quantization")
    if quantization is not None:
        _fake_quantize(scorer, quantization, ckpt.folder)
    mapping: dict[str, Any] = {"kind": "identity"}
    if kind == "calibrated":
        try:
            score_map = score_map_from_dict(state["score_mapping"])
        except (ConfigError, KeyError) as exc:
            raise ConfigError(f"{ckpt.folder / 'state.json'}: key 'score_mapping': {exc}") from exc
        scorer = CalibratedModel(scorer, ScoreCalibration(score_map))
        mapping = dict(state["score_mapping"])
    _load_weights(scorer, ckpt, _PREFIX[kind])
    if quantization is not None:
        from edgeiqa.models.fake_quant import require_calibrated

        require_calibrated(scorer, str(ckpt.folder / "model.safetensors"))
    mos_range = state.get("mos_range") or (state.get("score_mapping") or {}).get("mos_range")
    return LoadedModel(
        scorer.eval(),
        kind,
        str(state["model"]),
        scorer.contract,
        mapping,
        tuple(float(v) for v in mos_range) if mos_range else None,
        ckpt,
    )  # type: ignore[arg-type]


def _build_registered(state: dict[str, Any], folder: Path) -> nn.Module:
    # A contract stays a mapping, as the config gave it: the variant fills in what it leaves out (the
    # backbone's own mean/std). Turned into a PreprocessContract here, the omitted mean/std would become
    # the dataclass defaults, and a student pre-trained at 0.5/0.5 would be fine-tuned at ImageNet's.
    kwargs = dict(state.get("model_kwargs") or {})
    model = _create(state["model"], kwargs, folder)
    saved = state.get("contract")
    if not (isinstance(saved, dict) and hasattr(model, "contract")):
        return model
    trained = PreprocessContract.from_dict(saved)
    if model.contract != trained and "contract" in getattr(model.config, "__dataclass_fields__", {}):
        # A student is rebuilt with the full contract it was trained with, so a later change to its
        # variant's defaults (a new reducing_gap, say) cannot re-preprocess an old checkpoint.
        model = _create(state["model"], {**kwargs, "contract": saved}, folder)
    if model.contract != trained:
        raise ConfigError(
            f"{folder / 'state.json'}: model {state['model']!r} rebuilt from model_kwargs preprocesses "
            f"differently from how it was trained (contract {model.contract.to_dict()} vs {saved})"
        )
    return model


def _create(name: str, kwargs: dict[str, Any], folder: Path) -> nn.Module:
    from edgeiqa.models import create_model

    try:
        # pretrained=False: the checkpoint's weights replace whatever the backbone starts from.
        return create_model(name, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{folder / 'state.json'}: cannot rebuild model {name!r}: {exc}") from exc


def _fake_quantize(model: nn.Module, quantization: Any, folder: Path) -> None:
    from edgeiqa.models.fake_quant import QuantSettings, quantize_model  # imports timm, like create_model

    try:
        quantize_model(model, QuantSettings.from_dict(quantization))
    except ConfigError as exc:
        raise ConfigError(f"{folder / 'state.json'}: key 'quantization': {exc}") from exc


def _load_weights(model: nn.Module, ckpt: Checkpoint, prefix: str) -> None:
    """Strict load of the scorer's tensors (those under ``prefix``); mismatches name the file.

    EQCNet may tie its fragment backbone's weights to the image backbone's; checkpoints store such a
    tensor under both names, older exports once: a missing key is fine when a tensor it shares storage
    with was in the file.
    """
    weights = ckpt.folder / "model.safetensors"
    tensors = {k[len(prefix) :]: v for k, v in ckpt.model_state().items() if k.startswith(prefix)}
    try:
        result = model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        detail = str(exc).strip().splitlines()[-1].strip()
        raise ConfigError(f"{weights}: weights do not fit the model named in state.json ({detail})") from exc
    aliases = _tied_aliases(model)
    missing = [k for k in result.missing_keys if not any(a in tensors for a in aliases.get(k, ()))]
    if missing or result.unexpected_keys:
        raise ConfigError(
            f"{weights}: weights do not fit the model named in state.json (missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}; expected keys under {prefix or 'model./calibration.'!r})"
        )


def _tied_aliases(model: nn.Module) -> dict[str, list[str]]:
    """State-dict key -> the other keys whose tensor shares its storage (tied weights)."""
    groups: dict[tuple[int, tuple[int, ...]], list[str]] = {}
    for key, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault((tensor.data_ptr(), tuple(tensor.shape)), []).append(key)
    return {k: [o for o in keys if o != k] for keys in groups.values() if len(keys) > 1 for k in keys}
