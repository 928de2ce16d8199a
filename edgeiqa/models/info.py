"""Size and compute of a model on the inputs a given image produces after preprocessing.

Compute is counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which counts FLOPs of
convolutions and matrix products as 2 x multiply-accumulates and ignores element-wise work
(activations, normalisation, pooling, resize). We report MACs = FLOPs / 2, the convention of
model-zoo tables (timm, the MobileNet papers). Counting runs on the ``meta`` device: no memory, no
arithmetic, so a 4K teacher costs milliseconds to measure.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgeiqa.models.eiqanet import EIQANet
from edgeiqa.models.eqcnet import EQCNet
from edgeiqa.models.registry import create_model
from edgeiqa.models.teacher_views import patch_count
from edgeiqa.runtime.preprocess import working_shape


@dataclass(frozen=True)
class ModelInfo:
    """What a model costs on one image of ``input_hw`` (height, width). JSON-ready via :meth:`to_dict`."""

    name: str
    role: str  # "student" or "teacher"
    params: int
    macs: int
    input_hw: tuple[int, int]
    working_hw: tuple[int, int]  # (height, width) of the whole-image / global view
    inputs: dict[str, tuple[int, ...]]  # model input shapes for this one image
    fragment_mosaic: int | None = None  # student: side of the native-resolution mosaic
    patches: int | None = None  # teacher: native-resolution patches used for this image
    patch_size: int | None = None

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "gmacs": self.gmacs}


def _meta_copy(model: nn.Module) -> nn.Module:
    # A copy, so the caller's model keeps its device, weights and train/eval mode.
    return copy.deepcopy(model).to("meta").eval()


def _inputs(model: nn.Module, height: int, width: int) -> dict[str, tuple[int, ...]]:
    w, h = working_shape(width, height, model.contract)
    if isinstance(model, EIQANet):
        p = model.view_spec.patch
        return {"global_view": (1, 3, h, w), "patches": (1, patch_count(width, height, model.view_spec), 3, p, p)}
    shapes = {"image": (1, 3, h, w)}
    if model.contract.fragments is not None:
        side = model.contract.fragments.mosaic_size
        shapes["fragments"] = (1, 3, side, side)
    return shapes


def count_macs(model: nn.Module, inputs: dict[str, tuple[int, ...]]) -> int:
    """Multiply-accumulates of one forward pass on zero tensors of these shapes (on the meta device)."""
    meta = _meta_copy(model)
    args = [torch.zeros(shape, device="meta") for shape in inputs.values()]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(*args)
    return counter.get_total_flops() // 2


def model_info(name_or_model: str | nn.Module, input_hw: tuple[int, int] = (2160, 3840)) -> ModelInfo:
    """Params and MACs of a registered model name (built on ``meta``) or a model instance."""
    if isinstance(name_or_model, str):
        with torch.device("meta"):
            model = create_model(name_or_model)
    else:
        model = name_or_model
    if not isinstance(model, (EQCNet, EIQANet)):
        raise TypeError(f"model_info needs an EQCNet or EIQANet, got {type(model).__name__}")
    height, width = input_hw
    inputs = _inputs(model, height, width)
    teacher = isinstance(model, EIQANet)
    return ModelInfo(
        name=getattr(model, "model_name", type(model).__name__),
        role="teacher" if teacher else "student",
        params=sum(p.numel() for p in model.parameters()),
        macs=count_macs(model, inputs),
        input_hw=(height, width),
        working_hw=tuple(inputs["global_view" if teacher else "image"][2:]),
        inputs=inputs,
        fragment_mosaic=None if teacher or "fragments" not in inputs else inputs["fragments"][-1],
        patches=inputs["patches"][1] if teacher else None,
        patch_size=model.view_spec.patch if teacher else None,
    )


def format_info(info: ModelInfo) -> str:
    """Human-readable multi-line summary (what ``edgeiqa info`` prints)."""
    h, w = info.input_hw
    shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in info.inputs.items())
    lines = [
        f"{info.name} ({info.role})",
        f"  input image     {w}x{h}",
        f"  params          {info.params / 1e6:.2f} M",
        f"  compute         {info.gmacs:.3f} GMACs per image (conv/linear/matmul; FlopCounterMode FLOPs / 2)",
        f"  working view    {info.working_hw[1]}x{info.working_hw[0]} (antialiased resize)",
        f"  model inputs    {shapes}",
    ]
    if info.fragment_mosaic is not None:
        side = info.fragment_mosaic
        lines.append(f"  fragments       {side}x{side} mosaic of native-resolution patches")
    if info.patches is not None:
        lines.append(f"  patches         {info.patches} native-resolution patches of {info.patch_size} px")
    return "\n".join(lines)
