"""Score calibration: the strictly increasing map from a model's raw output to the MOS scale, as a module.

Not to be confused with the INT8 calibration of the export layer. The fit starts from
:func:`edgeiqa.metrics.fit_logistic4` (scipy, VQEG practice, on a held-out split) and this module folds
it into the network so every exported artifact outputs MOS-scale scores.

Why not the plain 4PL: ranking is what the toolkit preserves, and a 4PL saturates. In float32 its
sigmoid is exactly 0 or 1 for raw outputs a few widths outside the fitted range, so different images get
identical scores (measured on the old quickstart student: 20 of 24 4K photos scored exactly 57.705639).
:class:`MonotoneScoreMap` is therefore

* inside the fitted raw range [lo, hi]: ``(1 - a) * 4PL(x) + a * line(x)``, where ``line`` joins
  ``(lo, 4PL(lo))`` and ``(hi, 4PL(hi))``: the same end values, and a slope of at least
  ``a * (4PL(hi) - 4PL(lo)) / (hi - lo) > 0`` everywhere, however steep or flat the 4PL is;
* outside it: straight lines continuing with the slope the map has at each end.

So it is strictly increasing on the whole real line, never constant, and continuous. A fit on raw
outputs that do not correlate positively with MOS is refused (:class:`CalibrationError`): a map that
must be increasing cannot repair a model that ranks backwards, and a constant map would tie everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.metrics import Logistic4Fit, fit_logistic4, logistic4, srcc

MONOTONE_KIND = "logistic4_monotone"
MONOTONE_FORM = (
    "inside [lo, hi]: (1 - a) * 4PL(x) + a * line(x), line through (lo, 4PL(lo)) and (hi, 4PL(hi)); "
    "outside: linear with the slope at the nearer end"
)
# Weight of the line: 2 % of the MOS span spread evenly over the raw range guarantees a usable slope
# while moving the fitted curve by at most 2 % of its span.
DEFAULT_BLEND = 0.02


class CalibrationError(EdgeIQAError):
    """The raw scores cannot be mapped to MOS by an increasing function (they do not rank positively)."""


@dataclass(frozen=True)
class MonotoneScoreMap:
    """A strictly increasing raw -> MOS map (see the module docstring); JSON-ready, foldable into a graph."""

    params: tuple[float, float, float, float]  # the 4PL (b1, b2, b3, b4) of :func:`edgeiqa.metrics.logistic4`
    raw_range: tuple[float, float]
    blend: float = DEFAULT_BLEND

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.raw_range)
        values = [*map(float, self.params), lo, hi, float(self.blend)]
        if not all(math.isfinite(v) for v in values) or not hi > lo or not 0.0 < self.blend <= 1.0:
            raise ConfigError(
                f"a monotone score map needs finite params, raw_range lo < hi and 0 < blend <= 1; "
                f"got params={self.params} raw_range={self.raw_range} blend={self.blend}"
            )
        if not self.end_values()[1] > self.end_values()[0]:
            raise ConfigError(f"a monotone score map must increase over its raw range; got params={self.params}")

    def end_values(self) -> tuple[float, float]:
        lo, hi = self.raw_range
        f = logistic4(np.array([lo, hi], dtype=np.float64), self.params)
        return float(f[0]), float(f[1])

    def end_slopes(self) -> tuple[float, float]:
        """The map's derivative at ``lo`` and ``hi``: the slopes of the two linear tails (both > 0)."""
        (lo, hi), (f_lo, f_hi), a = self.raw_range, self.end_values(), self.blend
        b1, b2, b3, b4 = self.params
        line = (f_hi - f_lo) / (hi - lo)

        def d4pl(x: float) -> float:
            s = 1.0 / (1.0 + math.exp(-(x - b3) / abs(b4)))
            return (b1 - b2) * s * (1.0 - s) / abs(b4)

        return (1 - a) * d4pl(lo) + a * line, (1 - a) * d4pl(hi) + a * line

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        (lo, hi), (f_lo, f_hi), a = self.raw_range, self.end_values(), self.blend
        s_lo, s_hi = self.end_slopes()
        xc = np.clip(x, lo, hi)
        inner = (1 - a) * logistic4(xc, self.params) + a * (f_lo + (xc - lo) * (f_hi - f_lo) / (hi - lo))
        return inner + s_lo * np.minimum(x - lo, 0.0) + s_hi * np.maximum(x - hi, 0.0)

    def tensor_params(self) -> tuple[float, ...]:
        """What :class:`ScoreCalibration` stores: 4PL, ends, blend, end values and end slopes (11 floats)."""
        return (*self.params, *self.raw_range, self.blend, *self.end_values(), *self.end_slopes())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": MONOTONE_KIND,
            "form": MONOTONE_FORM,
            "params": list(self.params),
            "raw_range": list(self.raw_range),
            "blend": self.blend,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonotoneScoreMap:
        if not isinstance(data, dict) or data.get("kind") != MONOTONE_KIND:
            raise ConfigError(f"not a {MONOTONE_KIND} score mapping: {data!r}")
        try:
            params = tuple(float(v) for v in data["params"])
            raw_range = tuple(float(v) for v in data["raw_range"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{MONOTONE_KIND} mapping needs 4 params and a 2-value raw_range: {data!r}") from exc
        if len(params) != 4 or len(raw_range) != 2:
            raise ConfigError(f"{MONOTONE_KIND} mapping needs 4 params and a 2-value raw_range: {data!r}")
        return cls(params, raw_range, float(data.get("blend", DEFAULT_BLEND)))  # type: ignore[arg-type]


ScoreMap = MonotoneScoreMap | Logistic4Fit


def score_map_from_dict(data: dict[str, Any]) -> ScoreMap:
    """The map a checkpoint's ``score_mapping`` describes (plain ``logistic4`` from older checkpoints too)."""
    if isinstance(data, dict) and data.get("kind") == MONOTONE_KIND:
        return MonotoneScoreMap.from_dict(data)
    return Logistic4Fit.from_dict(data)


def fit_score_map(raw: Any, mos: Any, blend: float = DEFAULT_BLEND) -> MonotoneScoreMap:
    """Fit the strictly increasing map ``mos ~ f(raw)`` on a held-out split.

    Raises :class:`CalibrationError` when raw and MOS do not correlate positively (SRCC <= 0) or the raw
    outputs are constant: then no increasing map is meaningful and the stage must fail, not tie scores.
    """
    raw, mos = np.asarray(raw, dtype=np.float64).reshape(-1), np.asarray(mos, dtype=np.float64).reshape(-1)
    if raw.size < 4 or np.ptp(raw) == 0:
        raise CalibrationError(
            f"score calibration needs >= 4 varying raw scores, got {raw.size} "
            f"with range {float(np.ptp(raw)) if raw.size else 0:g}; the model's output is constant"
        )
    rho = srcc(raw, mos)
    if not rho > 0:
        raise CalibrationError(
            f"score calibration refused: raw scores rank the {raw.size} calibration images "
            f"against MOS at SRCC {rho:.3f} (not positive); the model has not learned to rank"
        )
    fit = fit_logistic4(raw, mos)
    raw_range = (float(raw.min()), float(raw.max()))
    f = logistic4(np.array(raw_range), fit.params)
    if not f[1] > f[0]:  # the best increasing 4PL is flat over the data: fall back to the least-squares line
        slope = max(float(np.polyfit(raw, mos, 1)[0]), 1e-6 * max(float(np.ptp(mos)), 1e-6) / float(np.ptp(raw)))
        fit = _line_as_4pl(slope, float(np.mean(mos) - slope * np.mean(raw)), raw_range)
    return MonotoneScoreMap(fit.params, raw_range, blend)


def _line_as_4pl(slope: float, intercept: float, raw_range: tuple[float, float]) -> Logistic4Fit:
    """y = slope * x + intercept over ``raw_range`` written as a 4PL wide enough to be linear there."""
    centre = 0.5 * (raw_range[0] + raw_range[1])
    width = 100.0 * max(raw_range[1] - raw_range[0], 1e-12)
    span = 4.0 * slope * width  # a 4PL's central slope is (b1 - b2) / (4 b4)
    mid = slope * centre + intercept
    return Logistic4Fit((mid + span / 2, mid - span / 2, centre, width), method="linear")


class ScoreCalibration(nn.Module):
    """The folded score map; exports as Clip/Min/Max/Sigmoid arithmetic (ONNX, Core ML, LiteRT, TensorRT).

    Holds either a :class:`MonotoneScoreMap` (11 params, strictly increasing) or, for checkpoints written
    before it existed, a plain :class:`~edgeiqa.metrics.Logistic4Fit` (4 params).
    """

    def __init__(self, fit: ScoreMap | None = None) -> None:
        super().__init__()
        # Identity-like default (a 4PL this wide is linear over 0..1) so an uncalibrated model loads.
        params = (
            fit.tensor_params()
            if isinstance(fit, MonotoneScoreMap)
            else (fit.params if fit is not None else (200.0, -200.0, 0.5, 100.0))
        )
        self.register_buffer("params", torch.tensor(params, dtype=torch.float32))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        if self.params.numel() == 4:
            b1, b2, b3, b4 = self.params.unbind()
            return (b1 - b2) * torch.sigmoid((raw - b3) / b4.abs().clamp_min(1e-12)) + b2
        b1, b2, b3, b4, lo, hi, a, f_lo, f_hi, s_lo, s_hi = self.params.unbind()
        x = torch.minimum(torch.maximum(raw, lo), hi)
        curve = (b1 - b2) * torch.sigmoid((x - b3) / b4.abs().clamp_min(1e-12)) + b2
        inner = (1 - a) * curve + a * (f_lo + (x - lo) * ((f_hi - f_lo) / (hi - lo)))
        return inner + s_lo * torch.clamp(raw - lo, max=0.0) + s_hi * torch.clamp(raw - hi, min=0.0)

    def to_fit(self) -> ScoreMap:
        values = [float(v) for v in self.params.tolist()]
        if len(values) == 4:
            return Logistic4Fit(tuple(values))  # type: ignore[arg-type]
        return MonotoneScoreMap(tuple(values[:4]), (values[4], values[5]), values[6])  # type: ignore[arg-type]


class CalibratedModel(nn.Module):
    """A scorer followed by its score calibration; what export traces, so artifacts speak MOS."""

    def __init__(self, model: nn.Module, calibration: ScoreCalibration) -> None:
        super().__init__()
        self.model = model
        self.calibration = calibration
        self.contract = getattr(model, "contract", None)

    def forward(self, *inputs: Any) -> torch.Tensor:
        return self.calibration(self.model(*inputs))
