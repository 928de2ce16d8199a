"""The TensorRT engine plan: which build path, flags, profile shapes and ``trtexec`` line, without TensorRT.

TensorRT engines are specific to the GPU and TensorRT version: they are built on the target from the
ONNX files the export layer writes. What the builder does depends on the TensorRT major version and
on what the ONNX graph already holds (docs/architecture.md, "Deployment facts"):

================  =======================================  ==========================================
ONNX holds        TensorRT 10 (JetPack 6)                  TensorRT 11
================  =======================================  ==========================================
FP16 graph        strongly typed (``--stronglyTyped``)      strongly typed (always on)
INT8 Q/DQ graph   strongly typed, explicit quantization     strongly typed, explicit quantization
FP32 graph, fp16  implicit ``BuilderFlag.FP16`` (deprecated)  refused: export an FP16 ONNX first
FP32 graph, int8  implicit ``BuilderFlag.INT8`` + entropy    refused: export ``int8-trt`` (Q/DQ)
                  calibrator + cache (deprecated)
================  =======================================  ==========================================

Both INT8 Q/DQ ONNX precisions take the explicit-quantization row: ``int8-trt`` (post-training,
symmetric S8S8) and ``int8-qat`` (a quantization-aware student's own trained Q/DQ); :data:`ONNX_FOR_ENGINE`
names them per engine precision.

TensorRT 11 removed ``BuilderFlag.FP16/INT8``, the INT8 calibrators and trtexec's ``--fp16``/
``--int8``/``--calib``; ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` is accepted but ignored
there. Sources: the TensorRT 10.x -> 11.x migration guides (Python API, trtexec) on docs.nvidia.com.
This module needs neither TensorRT nor torch: the plan is computed and tested anywhere.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.contract import PreprocessContract

Shape = tuple[int, ...]
PATH_STRONGLY_TYPED = "strongly-typed"
PATH_IMPLICIT_FP16 = "implicit-fp16"
PATH_IMPLICIT_INT8 = "implicit-int8-calibrator"
ENGINE_PRECISIONS = ("fp16", "int8")
# The ONNX export precisions whose graph an engine precision builds from directly (strongly typed).
ONNX_FOR_ENGINE = {"fp16": ("fp16",), "int8": ("int8-trt", "int8-qat")}


@dataclass(frozen=True)
class ProfileShapes:
    """One optimisation profile: min/opt/max shape of every input, by name."""

    min: dict[str, Shape]
    opt: dict[str, Shape]
    max: dict[str, Shape]

    def __post_init__(self) -> None:
        for name in self.opt:
            lo, mid, hi = self.min[name], self.opt[name], self.max[name]
            if not (len(lo) == len(mid) == len(hi) and all(a <= b <= c for a, b, c in zip(lo, mid, hi))):
                raise ConfigError(
                    f"TensorRT profile for {name!r} needs min <= opt <= max per axis, got {lo}, {mid}, {hi}"
                )

    def arg(self, which: str) -> str:
        """``image:1x3x224x224,fragments:1x3x224x224`` for trtexec's ``--minShapes`` etc."""
        shapes = getattr(self, which)
        return ",".join(f"{name}:{'x'.join(str(d) for d in shape)}" for name, shape in shapes.items())


@dataclass(frozen=True)
class EnginePlan:
    """Everything a TensorRT build does, computed before (and without) TensorRT."""

    onnx: str
    engine: str
    precision: str
    trt_major: int
    graph_precision: str
    path: str
    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    profile: ProfileShapes
    workspace_mb: int
    calibration_cache: str | None = None
    calibration_batch: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def trtexec(self) -> str:
        """The equivalent trtexec command line."""
        args = ["trtexec", f"--onnx={self.onnx}", f"--saveEngine={self.engine}"]
        args += [f"--{w}Shapes={self.profile.arg(w)}" for w in ("min", "opt", "max")]
        args.append(f"--memPoolSize=workspace:{self.workspace_mb}")
        if self.path == PATH_STRONGLY_TYPED and self.trt_major < 11:
            args.append("--stronglyTyped")  # TensorRT 11: always on, the flag is a no-op
        elif self.path == PATH_IMPLICIT_FP16:
            args.append("--fp16")
        elif self.path == PATH_IMPLICIT_INT8:
            args += ["--int8", "--fp16"]
            if self.calibration_cache:
                args.append(f"--calib={self.calibration_cache}")
        return shlex.join(args)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["profile"] = {w: {k: list(v) for k, v in getattr(self.profile, w).items()} for w in ("min", "opt", "max")}
        data["trtexec"] = self.trtexec
        return data


def graph_precision(model: Any) -> str:
    """``int8-qdq`` (Q/DQ nodes), ``fp16`` (float16 initializers) or ``fp32``, of an ``onnx.ModelProto``."""
    from onnx import TensorProto

    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        return "int8-qdq"
    if any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer):
        return "fp16"
    return "fp32"


def choose_path(precision: str, graph: str, trt_major: int) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(path, network flags, builder flags) for this precision, ONNX content and TensorRT version."""
    if precision not in ENGINE_PRECISIONS:
        raise ConfigError(f"TensorRT engine precision must be one of {', '.join(ENGINE_PRECISIONS)}, got {precision!r}")
    if trt_major < 10:
        raise ConfigError(f"TensorRT {trt_major} is not supported: the engine builder needs TensorRT 10 or 11")
    wanted = {"fp16": "fp16", "int8": "int8-qdq"}[precision]
    if graph == wanted:
        return PATH_STRONGLY_TYPED, ("STRONGLY_TYPED",), ()
    onnx_choices = " or ".join(ONNX_FOR_ENGINE[precision])
    if graph != "fp32":
        raise ConfigError(
            f"a {precision} engine cannot be built from a {graph} ONNX graph: export it with --precision {onnx_choices}"
        )
    if trt_major >= 11:
        fix = (
            "--precision fp16"
            if precision == "fp16"
            else ("--precision int8-trt (symmetric Q/DQ) or, from a QAT student, int8-qat")
        )
        raise ConfigError(
            f"TensorRT {trt_major} is strongly typed: it builds {precision} only from a graph that already is "
            f"{precision} (no BuilderFlag.FP16/INT8, no calibrators); export the ONNX with {fix}"
        )
    if precision == "fp16":
        return PATH_IMPLICIT_FP16, (), ("FP16",)
    return PATH_IMPLICIT_INT8, (), ("INT8", "FP16")


def image_hw_range(contract: PreprocessContract, max_side_factor: float = 2.0) -> tuple[tuple[int, int], ...]:
    """(min, opt, max) (H, W) of the ``image`` input for the contract's size policy."""
    size, mult = contract.working_size, contract.size_multiple
    if contract.size_policy == "square":
        return ((size, size),) * 3
    big = int(math.ceil(size * max_side_factor / mult) * mult)
    if contract.size_policy == "short_side":  # short side == size, long side up to size * factor
        return (size, size), (size, _round(size * 4 / 3, mult)), (big, big)
    return (mult, mult), (_round(size * 3 / 4, mult), size), (size, size)  # long_side


def _round(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def default_profile(
    contract: PreprocessContract, batch: tuple[int, int, int] = (1, 8, 16), max_side_factor: float = 2.0
) -> ProfileShapes:
    """Profile from the contract: dynamic batch, image H/W per size policy, fixed fragment mosaic."""
    hw = image_hw_range(contract, max_side_factor)
    shapes: list[dict[str, Shape]] = [{"image": (b, 3, *s)} for b, s in zip(batch, hw)]
    if contract.fragments is not None:
        mosaic = contract.fragments.mosaic_size
        for b, entry in zip(batch, shapes):
            entry["fragments"] = (b, 3, mosaic, mosaic)
    return ProfileShapes(*shapes)


def plan_engine(
    onnx_path: str | Path,
    precision: str,
    engine_path: str | Path,
    *,
    trt_major: int,
    contract: PreprocessContract,
    graph: str,
    profile: ProfileShapes | None = None,
    cache: str | Path | None = None,
    workspace_mb: int = 1024,
) -> EnginePlan:
    """The plan for building ``onnx_path`` (whose content is ``graph``) with TensorRT ``trt_major``."""
    path, network_flags, builder_flags = choose_path(precision, graph, trt_major)
    profile = profile or default_profile(contract)
    notes = []
    if path != PATH_STRONGLY_TYPED:
        notes.append(f"{path} uses weak typing, deprecated in TensorRT 10 and removed in 11")
    implicit_int8 = path == PATH_IMPLICIT_INT8
    if implicit_int8 and cache is None:
        cache = str(Path(engine_path).with_suffix(".calib.cache"))
    return EnginePlan(
        onnx=str(onnx_path),
        engine=str(engine_path),
        precision=precision,
        trt_major=trt_major,
        graph_precision=graph,
        path=path,
        network_flags=network_flags,
        builder_flags=builder_flags,
        profile=profile,
        workspace_mb=workspace_mb,
        calibration_cache=str(cache) if implicit_int8 else None,
        calibration_batch=profile.opt["image"][0] if implicit_int8 else None,
        notes=tuple(notes),
    )
