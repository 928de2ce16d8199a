"""Fake-quantized Conv2d / Linear for quantization-aware training (QAT), in TensorRT's explicit-INT8 form.

The convention is NVIDIA's (pytorch-quantization, ModelOpt), which is what TensorRT's explicit
quantization consumes: every quantized layer has a Q/DQ pair on its **input** (INT8, per-tensor,
symmetric, zero point 0) and on its **weight** (INT8, per-output-channel, symmetric). TensorRT then
fuses the float ops between them (BatchNorm, bias, activation, residual add) into the INT8 kernels.

* **Weights**: scale = max |w| per output channel / 127, recomputed on every forward from the current
  weights, rounded with a straight-through estimator (``torch.fake_quantize_per_channel_affine``). The
  scale carries no gradient: it follows the weights, it is not a parameter.
* **Input activations**: scale = amax / 127 per tensor, with ``amax`` measured once on real images
  before training (:func:`calibrate_activations`: the max of |x|, or a percentile of it) and then
  **fixed**, not learned. Why fixed: QAT here is a short, small-lr fine-tune on batches of 8-16 CPU
  images; learned ranges (LSQ/PACT) need their own learning rate and many steps to settle and are
  noisy on small batches, while TensorRT's own QAT recipe (pytorch-quantization) calibrates amax and
  keeps it. The weights learn to live with the fixed grid instead.
* **BatchNorm**: left in place and **frozen** (eval statistics) during QAT, not folded into the
  convolutions first. With per-output-channel symmetric weight scales the two are the same network:
  folding multiplies channel c of the weight by g_c = gamma_c / sqrt(var_c + eps), which multiplies its
  max |w| and therefore its scale by |g_c| too, so round(w g / (s g)) = round(w / s) and the folded
  layer sits on exactly the grid trained here. TensorRT performs that fold itself when it builds the
  engine (Conv -> BatchNormalization after a weight DQ is fused), so the module tree, the checkpoint
  keys and the export stay those of the float student. Frozen because batch statistics in training
  would train a network other than the one TensorRT folds (its running statistics).
* **What stays float**: modules under ``QuantSettings.keep_fp`` (default the comparison ``head``, as in
  the post-training path), every op that is not a Conv2d/Linear (pooling, the standard-deviation
  pooling, resize, adds: TensorRT runs them in float or fuses them), and the folded score calibration,
  which wraps the student from outside.

Q/DQ uses the full signed range [-128, 127]: the TorchScript ONNX exporter maps only that pair to INT8
``QuantizeLinear``/``DequantizeLinear`` (opset >= 13 for the per-channel axis), and it is ONNX's own
saturation range, so ONNX Runtime, TensorRT and this module round and clip identically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edgeiqa.errors import ConfigError

QUANT_MIN, QUANT_MAX = -128, 127
# Symmetric: amax maps to +-127 (the narrow range TensorRT's scale = amax / 127 implies).
SYMMETRIC_LEVELS = 127
# Floor under every scale: an all-zero weight channel or a dead input would give scale 0, which
# fake_quantize divides by and TensorRT refuses (scales must be strictly positive).
MIN_AMAX = 1e-8
ACTIVATION_CALIBRATIONS = ("max", "percentile")
# Histogram resolution for percentile calibration (pytorch-quantization's HistogramCalibrator default).
HISTOGRAM_BINS = 2048
SCHEME = (
    "int8 symmetric: weights per output channel (amax = max|w|, every forward, straight-through), "
    "input activations per tensor (amax calibrated on images, then fixed); BatchNorm frozen, folded by TensorRT"
)


@dataclass(frozen=True)
class QuantSettings:
    """How a student is fake-quantized; recorded in every QAT checkpoint so :func:`load_model` rebuilds it.

    ``keep_fp``: module-path groups left in float, matched like the export's ``keep_fp`` (a component of
    the dotted module path, ``head``, or a dotted path prefix, ``embed.0``).
    """

    activation_calibration: str = "percentile"
    percentile: float = 99.99
    keep_fp: tuple[str, ...] = ("head",)

    def __post_init__(self) -> None:
        if self.activation_calibration not in ACTIVATION_CALIBRATIONS:
            raise ConfigError(
                f"QAT activation calibration {self.activation_calibration!r} is not one of "
                f"{', '.join(ACTIVATION_CALIBRATIONS)}"
            )
        if not (isinstance(self.percentile, (int, float)) and 50.0 < self.percentile <= 100.0):
            raise ConfigError(f"QAT activation percentile must be in (50, 100], got {self.percentile!r}")
        object.__setattr__(self, "keep_fp", tuple(str(k) for k in self.keep_fp))

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "keep_fp": list(self.keep_fp),
            "scheme": SCHEME,
            "quant_range": [QUANT_MIN, QUANT_MAX],
        }

    @classmethod
    def from_dict(cls, data: Any) -> QuantSettings:
        if not isinstance(data, dict):
            raise ConfigError(f"quantization settings must be a mapping, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if k == "keep_fp" else v) for k, v in data.items() if k in known})


def _zero_points(scale: torch.Tensor) -> torch.Tensor:
    return torch.zeros(scale.shape, dtype=torch.int32, device=scale.device)


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric scales of ``weight`` (axis 0): max |w| / 127, never 0."""
    amax = weight.detach().abs().amax(dim=tuple(range(1, weight.dim())))
    return amax.clamp_min(MIN_AMAX) / SYMMETRIC_LEVELS


def fake_quantize_weight(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` on its per-channel INT8 grid; the gradient passes straight through (all values are in range)."""
    scale = weight_scales(weight)
    return torch.fake_quantize_per_channel_affine(weight, scale, _zero_points(scale), 0, QUANT_MIN, QUANT_MAX)


class ActivationQuantizer(nn.Module):
    """Per-tensor symmetric INT8 fake quantization of a layer's input with a calibrated, fixed ``amax``.

    ``amax`` is a buffer (saved in checkpoints, an initializer in ONNX): NaN until calibrated. While a
    :class:`RangeObserver` is attached the input passes through in float and is only observed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("amax", torch.tensor(float("nan")))
        self.observer: RangeObserver | None = None

    @property
    def calibrated(self) -> bool:
        return bool(torch.isfinite(self.amax)) and float(self.amax) > 0

    def scale(self) -> torch.Tensor:
        return self.amax.clamp_min(MIN_AMAX) / SYMMETRIC_LEVELS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observer is not None:
            self.observer.observe(x)
            return x
        scale = self.scale().to(x.dtype)
        zero_point = torch.zeros((), dtype=torch.int32, device=x.device)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, QUANT_MIN, QUANT_MAX)


class QuantConv2d(nn.Conv2d):
    """``nn.Conv2d`` with fake-quantized input and weight (see the module docstring)."""

    input_quantizer: ActivationQuantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.input_quantizer(x), fake_quantize_weight(self.weight), self.bias)


class QuantLinear(nn.Linear):
    """``nn.Linear`` with fake-quantized input and weight (exported as a Gemm with ``transB=1``)."""

    input_quantizer: ActivationQuantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(self.input_quantizer(x), fake_quantize_weight(self.weight), self.bias)


QUANT_LAYERS = (QuantConv2d, QuantLinear)


def _quantized_copy(module: nn.Module) -> nn.Module:
    """The fake-quant twin of a float Conv2d/Linear, holding the *same* Parameter objects (ties survive)."""
    if type(module) is nn.Conv2d:
        twin: nn.Module = QuantConv2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            module.groups,
            module.bias is not None,
            module.padding_mode,
            device="meta",
        )
    else:
        twin = QuantLinear(module.in_features, module.out_features, module.bias is not None, device="meta")
    twin.weight = module.weight
    twin.bias = module.bias
    twin.input_quantizer = ActivationQuantizer().to(module.weight.device)
    twin.train(module.training)
    return twin


def _kept_float(name: str, keep_fp: tuple[str, ...]) -> bool:
    parts = name.split(".")
    return any(group in parts or name == group or name.startswith(group + ".") for group in keep_fp)


def quantize_model(model: nn.Module, settings: QuantSettings) -> list[str]:
    """Replace every Conv2d/Linear of ``model`` outside ``settings.keep_fp`` by its fake-quant twin, in place.

    Returns the replaced module paths. Subclasses of Conv2d/Linear with their own forward (timm's
    ``Conv2dSame`` for TF "same" padding) are refused by name: their padding would be lost; keep them
    float with ``keep_fp`` or use the symmetric-padding backbone. A ``keep_fp`` entry that matches no
    module is refused too (a typo must not quietly quantize the head).
    """
    if is_fake_quantized(model):
        raise ConfigError(f"{type(model).__name__} is already fake-quantized")
    names = [name for name, _ in model.named_modules() if name]
    for group in settings.keep_fp:
        if not any(_kept_float(name, (group,)) for name in names):
            raise ConfigError(
                f"QAT keep_fp entry {group!r} matches no module of {type(model).__name__}; "
                f"top-level ones: {[n for n, _ in model.named_children()]}"
            )
    targets: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)) or _kept_float(name, settings.keep_fp):
            continue
        if type(module) not in (nn.Conv2d, nn.Linear):
            raise ConfigError(
                f"cannot fake-quantize {name} ({type(module).__name__}, its own forward); keep it "
                f"in float with keep_fp: [{name}] or use a backbone with plain convolutions"
            )
        targets.append((name, module))
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, _quantized_copy(module))
    return [name for name, _ in targets]


def is_fake_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, QUANT_LAYERS) for m in model.modules())


def quantized_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Module path -> fake-quant layer, in module order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, QUANT_LAYERS)}


def require_calibrated(model: nn.Module, where: str) -> None:
    """One-line :class:`ConfigError` naming the fake-quant layers whose input range was never measured."""
    missing = [name for name, m in quantized_layers(model).items() if not m.input_quantizer.calibrated]
    if missing:
        raise ConfigError(
            f"{where}: {len(missing)} fake-quantized layer(s) have no calibrated input range "
            f"(first: {missing[0]}); the calibration images never reached them"
        )


class RangeObserver:
    """Collects |x| of one layer's input over the calibration images: its max, then (percentile) a histogram."""

    def __init__(self) -> None:
        self.max = 0.0
        self.histogram: torch.Tensor | None = None

    def observe(self, x: torch.Tensor) -> None:
        values = x.detach().abs().float()
        if self.histogram is None:
            self.max = max(self.max, float(values.max()))
        elif self.max > 0:
            self.histogram += torch.histc(values, bins=HISTOGRAM_BINS, min=0.0, max=self.max).cpu()

    def start_histogram(self) -> None:
        self.histogram = torch.zeros(HISTOGRAM_BINS)

    def percentile(self, q: float) -> float:
        if self.histogram is None or self.max <= 0 or float(self.histogram.sum()) == 0:
            return self.max
        cumulative = torch.cumsum(self.histogram, 0) / self.histogram.sum()
        index = int(torch.searchsorted(cumulative, torch.tensor(q / 100.0)).clamp(max=HISTOGRAM_BINS - 1))
        return (index + 1) * self.max / HISTOGRAM_BINS  # the upper edge of the bin that reaches q


Batches = Callable[[], Iterable[tuple[torch.Tensor, ...]]]


@torch.no_grad()
def calibrate_activations(model: nn.Module, batches: Batches, settings: QuantSettings) -> dict[str, Any]:
    """Measure and set every fake-quant layer's input ``amax`` on ``batches()`` (float forward, eval mode).

    ``batches`` is called once per pass (max; percentile needs a second pass for the histogram over
    [0, max]). Returns a JSON-ready record: method, images seen, and the amax range over layers.
    """
    layers = quantized_layers(model)
    if not layers:
        raise ConfigError(f"{type(model).__name__} has no fake-quantized layer to calibrate")
    was_training = model.training
    model.eval()
    observers = {name: RangeObserver() for name in layers}
    for name, layer in layers.items():
        layer.input_quantizer.observer = observers[name]
    try:
        seen = _feed(model, batches)
        if settings.activation_calibration == "percentile":
            for observer in observers.values():
                observer.start_histogram()
            _feed(model, batches)
    finally:
        for layer in layers.values():
            layer.input_quantizer.observer = None
        model.train(was_training)
    for name, layer in layers.items():
        observer = observers[name]
        value = (
            observer.percentile(settings.percentile)
            if settings.activation_calibration == "percentile"
            else observer.max
        )
        layer.input_quantizer.amax.fill_(value if value > 0 else float("nan"))
    require_calibrated(model, "QAT activation calibration")
    amax = [float(layer.input_quantizer.amax) for layer in layers.values()]
    return {
        "method": settings.activation_calibration,
        "images": seen,
        "layers": len(layers),
        **({"percentile": settings.percentile} if settings.activation_calibration == "percentile" else {}),
        "amax_min": min(amax),
        "amax_max": max(amax),
        "amax_median": sorted(amax)[len(amax) // 2],
    }


def _feed(model: nn.Module, batches: Batches) -> int:
    seen = 0
    for inputs in batches():
        model(*inputs)
        seen += int(inputs[0].shape[0])
    return seen
