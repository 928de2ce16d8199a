"""Settings of one export: typed, frozen, JSON-describable; no positional flags.

:class:`Int8Settings` is the **INT8 calibration** (activation ranges for quantization), never the
**score calibration** (the 4PL from raw output to MOS, see :mod:`edgeiqa.distill.calibration`).
Pure Python: importable without torch, onnx or any backend.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from edgeiqa.errors import ConfigError

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# Module-path groups the score calibration lives under: it is kept in float32 in every reduced precision
# (FP16 is too coarse for large 4PL params, and an 8-bit "score" output would step the MOS scale).
SCORE_CALIBRATION_GROUP = "calibration"


@dataclass(frozen=True)
class Int8Settings:
    """How activation ranges are measured on the INT8 calibration images.

    ``num_bins`` None takes 512 for entropy and 2048 for percentile. ONNX Runtime's own entropy
    default is 128 bins with 128 quantized bins, which leaves its KL search exactly one candidate (the
    full range): entropy then silently equals MinMax. Its KL search is pure Python and costs about
    (num_bins - num_quantized_bins) / 2 candidates per tensor: 2048 bins took 130 s for the 329
    tensors of ``test_eqcnet`` here, 512 bins a quarter of that. ``chunk`` images are fed per ``collect_data`` call,
    which bounds memory (the histogram calibrators hold every intermediate output of a call).
    """

    method: str = "minmax"
    n_images: int = 300
    num_bins: int | None = None
    num_quantized_bins: int = 128
    percentile: float = 99.999
    per_channel: bool = True
    chunk: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise ConfigError(f"INT8 calibration method {self.method!r} is not one of {', '.join(CALIBRATION_METHODS)}")
        if self.n_images < 1 or self.chunk < 1:
            raise ConfigError(f"INT8 calibration needs n_images >= 1 and chunk >= 1, got {self.n_images}, {self.chunk}")
        if self.method == "entropy" and self.bins <= self.num_quantized_bins:
            raise ConfigError(
                f"entropy calibration needs num_bins > num_quantized_bins (got {self.bins} <= "
                f"{self.num_quantized_bins}): with equal counts the KL search has one candidate and equals minmax"
            )
        if not 50.0 < self.percentile <= 100.0:
            raise ConfigError(f"INT8 calibration percentile must be in (50, 100], got {self.percentile}")

    @property
    def bins(self) -> int:
        """Histogram bins actually used (entropy / percentile)."""
        if self.num_bins is not None:
            return int(self.num_bins)
        return 512 if self.method == "entropy" else 2048

    def calibrator_options(self, symmetric: bool) -> dict[str, Any]:
        """The exact keys :func:`onnxruntime.quantization.calibrate.create_calibrator` reads, per method."""
        if self.method == "entropy":
            return {"num_bins": self.bins, "num_quantized_bins": self.num_quantized_bins, "symmetric": symmetric}
        if self.method == "percentile":
            return {"num_bins": self.bins, "percentile": self.percentile, "symmetric": symmetric}
        return {"symmetric": symmetric}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Tolerances:
    """Parity-gate limits. FP32 is held to a score difference, reduced precisions to a ranking loss.

    ``delta_srcc`` is SRCC(torch, MOS) - SRCC(artifact, MOS) when MOS is known, else
    1 - SRCC(artifact, torch). Against MOS on a small validation set the artifact can "gain" SRCC
    by chance while ranking the images differently from torch; ``max_rank_loss`` (off by default)
    also requires 1 - SRCC(artifact, torch) <= it for FP16/INT8.
    """

    fp32_max_abs: float = 1e-3
    fp16_delta_srcc: float = 0.002
    int8_delta_srcc: float = 0.01
    max_rank_loss: float | None = None

    def rule(self, precision_class: str) -> tuple[str, float]:
        """(metric, limit) for a precision class (``fp32``, ``fp16``, ``int8``)."""
        rules = {
            "fp32": ("max_abs_diff", self.fp32_max_abs),
            "fp16": ("delta_srcc", self.fp16_delta_srcc),
            "int8": ("delta_srcc", self.int8_delta_srcc),
        }
        if precision_class not in rules:
            raise ConfigError(f"no parity tolerance for precision class {precision_class!r}")
        return rules[precision_class]


@dataclass(frozen=True)
class ExportOptions:
    """Everything about an export except what (source, format, precision) and where (out_dir).

    ``keep_fp`` names parts kept in float in FP16/INT8 artifacts: module-path groups (``head``,
    ``backbone``, ``model.fuse``), ``first_conv`` (the first convolution on each input), ``variance``
    (standard-deviation pooling: x - mean, its square, mean, sqrt) or exact ONNX node names. The
    score calibration is always kept in float32 on top of these.
    """

    opset: int = 17
    slim: bool = True
    keep_fp: tuple[str, ...] = ("head", "variance")
    int8: Int8Settings = field(default_factory=Int8Settings)
    tolerances: Tolerances = field(default_factory=Tolerances)
    batch_size: int = 8
    # OpenVINO on bf16-capable CPUs runs "FP32" in bf16 unless told otherwise; the gate asks for this.
    openvino_inference_precision: str | None = "f32"
    coreml_target: str = "iOS16"
    coreml_max_batch: int = 16
    # Largest side a flexible-shape artifact (Core ML, TensorRT profile) accepts, in working sizes.
    max_side_factor: float = 2.0

    def __post_init__(self) -> None:
        if self.opset < 13:
            raise ConfigError(f"ONNX opset must be >= 13 (per-channel Q/DQ), got {self.opset}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        object.__setattr__(self, "keep_fp", tuple(self.keep_fp))

    def keep_fp_with_calibration(self) -> tuple[str, ...]:
        """``keep_fp`` plus the score-calibration group, without duplicates, in order."""
        return tuple(dict.fromkeys((*self.keep_fp, SCORE_CALIBRATION_GROUP)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
