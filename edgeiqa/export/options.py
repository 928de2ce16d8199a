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
# Where INT8 calibration images are drawn from unless told otherwise (never the test split, see
# edgeiqa.export.images): the CLI's --calib-split and an experiment's export.calibration.split.
DEFAULT_CALIBRATION_SPLIT = "train"
# NNCF's bias correction after INT8 rounding: "full" runs each layer's sub-graph on the quantized inputs
# (errors accumulated upstream included), "fast" shifts biases by per-layer statistics alone. Full is the
# default: on the LIVE-C student (EfficientNet-Lite0, 300 images) fast left SRCC(int8, fp32) at 0.9898 on
# the 63 validation photos (gate: 0.99) and 0.9943 on 125 test photos, full 0.9967 and 0.9972, for about
# 75 s more per export on 2 cores beside a training job (146 vs 71 s; full alone, quiet: 58 s).
NNCF_BIAS_CORRECTIONS = ("full", "fast")
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
    ``nncf_bias_correction`` applies to OpenVINO INT8 (NNCF) only: see :data:`NNCF_BIAS_CORRECTIONS`.
    """

    method: str = "minmax"
    n_images: int = 300
    num_bins: int | None = None
    num_quantized_bins: int = 128
    percentile: float = 99.999
    per_channel: bool = True
    chunk: int = 16
    seed: int = 0
    nncf_bias_correction: str = "full"

    def __post_init__(self) -> None:
        if self.nncf_bias_correction not in NNCF_BIAS_CORRECTIONS:
            raise ConfigError(
                f"NNCF bias correction {self.nncf_bias_correction!r} is not one of {', '.join(NNCF_BIAS_CORRECTIONS)}"
            )
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


PRECISION_CLASSES = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ClassLimits:
    """The gate's thresholds for one precision class; ``None`` switches a rule off (still measured)."""

    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    min_rank_agreement: float | None = None
    delta_srcc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Tolerances:
    """Parity-gate limits per precision class: fidelity to the FP32 reference first, accuracy second.

    Every reduced precision is held to **rank agreement** with the reference on the same images,
    SRCC(artifact, reference) >= ``*_min_agreement``: it is what a quality ranking keeps, it is
    scale-free, and unlike ΔSRCC against MOS it cannot pass by luck (on ~120 images an artifact can
    "gain" SRCC against MOS while ranking the images differently from torch). ``*_delta_srcc`` bounds
    SRCC(reference, MOS) - SRCC(artifact, MOS) when MOS is known, else 1 - SRCC(artifact, reference).
    ``*_max_abs`` / ``*_mean_abs`` bound |Δscore| on the MOS scale; only FP32 has a default, because
    the scale differs between datasets (0-1 for UHD-IQA, 0-100 for LIVE-C).

    Defaults, and why: FP32 must reproduce torch (1e-3 MOS and SRCC >= 0.9999, which on a small set
    allows no swapped pair and on 200 images a few swaps of near-ties); FP16 rounds at ~1e-3 relative,
    so >= 0.999; INT8 >= 0.99, the level at which an INT8 student still orders photos as its FP32 self
    (issue 12: 0.84-0.90 was measured for artifacts the old ΔSRCC-only gate could not tell apart).
    """

    fp32_max_abs: float | None = 1e-3
    fp16_max_abs: float | None = None
    int8_max_abs: float | None = None
    fp32_mean_abs: float | None = None
    fp16_mean_abs: float | None = None
    int8_mean_abs: float | None = None
    fp32_min_agreement: float | None = 0.9999
    fp16_min_agreement: float | None = 0.999
    int8_min_agreement: float | None = 0.99
    fp32_delta_srcc: float | None = None
    fp16_delta_srcc: float | None = 0.002
    int8_delta_srcc: float | None = 0.01

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"parity tolerance {f.name} must be a number >= 0 or null, got {value!r}")
            if f.name.endswith("_min_agreement") and value > 1:
                raise ConfigError(f"parity tolerance {f.name} is an SRCC: it must be <= 1, got {value!r}")

    def limits(self, precision_class: str) -> ClassLimits:
        """The thresholds of ``fp32``, ``fp16`` or ``int8``."""
        if precision_class not in PRECISION_CLASSES:
            raise ConfigError(f"no parity tolerance for precision class {precision_class!r}")
        return ClassLimits(
            max_abs_diff=getattr(self, f"{precision_class}_max_abs"),
            mean_abs_diff=getattr(self, f"{precision_class}_mean_abs"),
            min_rank_agreement=getattr(self, f"{precision_class}_min_agreement"),
            delta_srcc=getattr(self, f"{precision_class}_delta_srcc"),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
