"""Fake-quantized Conv2d/Linear (edgeiqa.models.fake_quant): TensorRT's INT8 grid, calibration, closeness to float."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from edgeiqa.errors import ConfigError
from edgeiqa.metrics import srcc
from edgeiqa.models import create_model
from edgeiqa.models.fake_quant import (
    QUANT_MAX,
    QUANT_MIN,
    SYMMETRIC_LEVELS,
    QuantConv2d,
    QuantLinear,
    QuantSettings,
    calibrate_activations,
    fake_quantize_weight,
    quantize_model,
    quantized_layers,
    require_calibrated,
    weight_scales,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _views(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed images whose content moves from a smooth ramp to noise: a tiny random net scores them apart."""
    g = torch.Generator().manual_seed(seed)
    level = torch.linspace(0, 1, n).view(n, 1, 1, 1)
    ramp = torch.linspace(-1, 1, 64).view(1, 1, 1, 64)
    image = (
        0.3 * torch.rand(n, 3, 64, 64, generator=g)
        + 0.5 * level * torch.randn(n, 3, 64, 64, generator=g)
        + (1 - level) * ramp
    )
    return image, image[:, :, :32, :32].contiguous()


def _calibrated(model: nn.Module, settings: QuantSettings) -> nn.Module:
    quantized = copy.deepcopy(model)
    quantize_model(quantized, settings)
    batches = [_views(8, seed) for seed in (1, 2)]
    calibrate_activations(quantized, lambda: iter(batches), settings)
    return quantized


def test_weights_sit_exactly_on_the_per_channel_int8_grid_with_a_straight_through_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    weight = (torch.randn(6, 4, 3, 3, generator=g) * torch.logspace(-3, 1, 6).view(6, 1, 1, 1)).requires_grad_()
    scale = weight.detach().abs().amax(dim=(1, 2, 3)) / SYMMETRIC_LEVELS
    torch.testing.assert_close(weight_scales(weight), scale, rtol=0, atol=0)
    quantized = fake_quantize_weight(weight)
    levels = quantized.detach() / scale.view(6, 1, 1, 1)
    # Every value is an integer level in [-127, 127] (symmetric: max |w| lands on +-127 exactly) ...
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)
    assert levels.abs().amax(dim=(1, 2, 3)).round().tolist() == [SYMMETRIC_LEVELS] * 6
    # ... and it is round-half-even(w / s) * s, the rounding ONNX QuantizeLinear and TensorRT apply.
    expected = torch.clamp(torch.round(weight.detach() / scale.view(6, 1, 1, 1)), QUANT_MIN, QUANT_MAX) * scale.view(
        6, 1, 1, 1
    )
    torch.testing.assert_close(quantized.detach(), expected, rtol=0, atol=0)
    # Each channel keeps its own resolution: a tiny-weight channel is not rounded to zero by a big one.
    assert torch.count_nonzero(quantized[0]) > 0.9 * quantized[0].numel()
    upstream = torch.randn(weight.shape, generator=g)
    quantized.backward(upstream)
    torch.testing.assert_close(weight.grad, upstream)  # straight-through: nothing is in the clipped range


def test_quantize_model_wraps_every_conv_and_linear_outside_keep_fp_and_keeps_tied_weights() -> None:
    torch.manual_seed(0)
    model = create_model("test_eqcnet", shared_backbone=True)
    convs = {n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    linears = {n for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    names = quantize_model(model, QuantSettings(keep_fp=("head", "embed.3")))
    assert set(names) == convs | (linears - {"embed.3"})
    assert isinstance(model.get_submodule("backbone.conv_stem"), QuantConv2d)
    assert isinstance(model.get_submodule("embed.0"), QuantLinear)
    assert type(model.get_submodule("embed.3")) is nn.Linear  # kept float by its dotted path
    # The fragment backbone still uses the image backbone's weights (one Parameter), its own input range.
    image_stem, fragment_stem = model.backbone.conv_stem, model.fragment_backbone.conv_stem
    assert image_stem.weight is fragment_stem.weight and image_stem.input_quantizer is not fragment_stem.input_quantizer
    with pytest.raises(ConfigError, match="already fake-quantized"):
        quantize_model(model, QuantSettings())


def test_bad_settings_and_unsupported_layers_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="keep_fp entry 'haed' matches no module"):
        quantize_model(create_model("test_eqcnet"), QuantSettings(keep_fp=("haed",)))
    with pytest.raises(ConfigError, match="activation calibration 'mse' is not one of max, percentile"):
        QuantSettings(activation_calibration="mse")
    with pytest.raises(ConfigError, match="percentile must be in"):
        QuantSettings(percentile=10.0)
    from timm.layers import Conv2dSame

    with pytest.raises(ConfigError, match=r"cannot fake-quantize 0 \(Conv2dSame.*keep_fp: \[0\]"):
        quantize_model(nn.Sequential(Conv2dSame(3, 4, 3)), QuantSettings(keep_fp=()))
    model = create_model("test_eqcnet")
    quantize_model(model, QuantSettings())
    with pytest.raises(ConfigError, match="have no calibrated input range"):
        require_calibrated(model, "test")


def test_max_calibration_measures_the_largest_input_and_percentile_clips_below_it() -> None:
    torch.manual_seed(0)
    float_model = create_model("test_eqcnet").eval()
    batches = [_views(8, seed) for seed in (1, 2)]
    by_method = {}
    for method in ("max", "percentile"):
        settings = QuantSettings(activation_calibration=method, percentile=99.0)
        model = copy.deepcopy(float_model)
        quantize_model(model, settings)
        record = calibrate_activations(model, lambda: iter(batches), settings)
        assert record["images"] == 16 and record["layers"] == len(quantized_layers(model))
        by_method[method] = {n: float(m.input_quantizer.amax) for n, m in quantized_layers(model).items()}
    # The stem reads the image itself: its max range is exactly the largest |pixel| it was shown.
    largest = max(float(image.abs().max()) for image, _ in batches)
    assert by_method["max"]["backbone.conv_stem"] == pytest.approx(largest, rel=1e-6)
    assert all(by_method["percentile"][n] <= by_method["max"][n] * (1 + 1e-6) for n in by_method["max"])
    assert sum(by_method["percentile"][n] < 0.999 * by_method["max"][n] for n in by_method["max"]) > 10


@pytest.mark.parametrize("method", ["max", "percentile"])
def test_a_calibrated_fake_quant_student_scores_close_to_its_float_self(method: str) -> None:
    torch.manual_seed(0)
    float_model = create_model("test_eqcnet").eval()
    quantized = _calibrated(float_model, QuantSettings(activation_calibration=method)).eval()
    inputs = _views(32, seed=3)
    with torch.no_grad():
        want, got = float_model(*inputs).numpy(), quantized(*inputs).numpy()
    assert srcc(got, want) >= 0.9  # measured 0.92 (max) / 0.95 (percentile) on this untrained net
    assert np.abs(got - want).max() <= 0.3 * np.ptp(want)
    # One layer alone: 8-bit input and weight leave its output within ~1 % (relative L2).
    layer = quantized.get_submodule("backbone.conv_stem")
    reference = float_model.get_submodule("backbone.conv_stem")
    with torch.no_grad():
        y, y_q = reference(inputs[0]), layer(inputs[0])
    assert float((y_q - y).norm() / y.norm()) < 0.02
    assert not torch.equal(y_q, y)  # and it is quantized, not passed through
