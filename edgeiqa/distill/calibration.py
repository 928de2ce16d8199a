"""Score calibration: the monotonic 4PL map from a model's raw output to the MOS scale, as a module.

Not to be confused with the INT8 calibration of the export layer. The fit itself is
:func:`edgeiqa.benchmarks.accuracy.fit_logistic4` (scipy, on a held-out split); this module folds the
fitted parameters into the network so every exported artifact outputs MOS-scale scores.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgeiqa.benchmarks.accuracy import Logistic4Fit


class ScoreCalibration(nn.Module):
    """``(b1 - b2) * sigmoid((x - b3) / |b4|) + b2``: the same formula as :func:`logistic4`."""

    def __init__(self, fit: Logistic4Fit | None = None) -> None:
        super().__init__()
        # Identity-like default (a 4PL this wide is linear over 0..1) so an uncalibrated model loads.
        params = fit.params if fit is not None else (200.0, -200.0, 0.5, 100.0)
        self.register_buffer("params", torch.tensor(params, dtype=torch.float32))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        b1, b2, b3, b4 = self.params.unbind()
        return (b1 - b2) * torch.sigmoid((raw - b3) / b4.abs().clamp_min(1e-12)) + b2

    def to_fit(self) -> Logistic4Fit:
        return Logistic4Fit(tuple(float(v) for v in self.params.tolist()))  # type: ignore[arg-type]


class CalibratedModel(nn.Module):
    """A scorer followed by its score calibration; what export traces, so artifacts speak MOS."""

    def __init__(self, model: nn.Module, calibration: ScoreCalibration) -> None:
        super().__init__()
        self.model = model
        self.calibration = calibration
        self.contract = getattr(model, "contract", None)

    def forward(self, *inputs: Any) -> torch.Tensor:
        return self.calibration(self.model(*inputs))
