"""The folded score calibration is strictly increasing everywhere and never ties or goes constant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeiqa.distill.calibration import (
    CalibrationError,
    MonotoneScoreMap,
    ScoreCalibration,
    fit_score_map,
    score_map_from_dict,
)
from edgeiqa.metrics import Logistic4Fit


def _steep_data(seed: int = 0, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    # A steep S-curve: the plain 4PL fitted to this saturates in float32 a few widths outside the data.
    rng = np.random.default_rng(seed)
    raw = rng.normal(0.5, 0.1, n)
    return raw, 100 / (1 + np.exp(-(raw - 0.5) / 0.02)) + rng.normal(0, 3, n)


def test_order_is_kept_exactly_far_outside_the_fitted_range() -> None:
    raw, mos = _steep_data()
    calibration = ScoreCalibration(fit_score_map(raw, mos)).eval()
    rng = np.random.default_rng(1)
    probe = np.unique(np.concatenate([rng.uniform(-1e4, 1e4, 4000), rng.uniform(-3, 4, 4000)]).astype(np.float32))
    out = calibration(torch.from_numpy(probe)).numpy()
    assert np.array_equal(np.argsort(out, kind="stable"), np.argsort(probe, kind="stable"))
    assert np.all(np.diff(out) > 0), "two different raw scores got the same calibrated score"


def test_plain_4pl_would_have_tied_these_scores() -> None:
    # Guards the test above: the same probe through the old saturating 4PL does create ties.
    raw, mos = _steep_data()
    from edgeiqa.metrics import fit_logistic4

    legacy = ScoreCalibration(fit_logistic4(raw, mos)).eval()
    probe = torch.linspace(2.0, 50.0, 1000)
    assert len(torch.unique(legacy(probe))) < 10


def test_torch_module_matches_the_numpy_map_and_fit_quality() -> None:
    raw, mos = _steep_data()
    score_map = fit_score_map(raw, mos)
    probe = np.linspace(-2, 3, 501)
    torch_out = ScoreCalibration(score_map)(torch.tensor(probe, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(torch_out, score_map(probe), atol=5e-3)
    # Inside the data the blend moves the 4PL by at most 2 % of the MOS span: the fit stays good.
    residual = np.sqrt(np.mean((score_map(raw) - mos) ** 2))
    assert residual < 4.5


def test_negative_or_constant_raw_scores_fail_with_a_clear_message() -> None:
    raw, mos = _steep_data()
    with pytest.raises(CalibrationError, match="not positive"):
        fit_score_map(raw, -mos)
    with pytest.raises(CalibrationError, match="constant"):
        fit_score_map(np.ones(10), mos[:10])


def test_round_trip_and_legacy_mapping() -> None:
    score_map = fit_score_map(*_steep_data())
    again = score_map_from_dict(score_map.to_dict())
    assert again == score_map
    restored = ScoreCalibration(score_map).to_fit()
    assert isinstance(restored, MonotoneScoreMap)
    np.testing.assert_allclose(restored.params, score_map.params, rtol=1e-6)
    legacy = score_map_from_dict({"kind": "logistic4", "params": [90.0, 10.0, 0.5, 0.1]})
    assert isinstance(legacy, Logistic4Fit)


def test_flat_fit_falls_back_to_an_increasing_line() -> None:
    # MOS that rises only slightly and noisily: whatever the 4PL does, the map must strictly increase.
    rng = np.random.default_rng(3)
    raw = rng.uniform(0, 1, 60)
    mos = 50 + 0.5 * raw + rng.normal(0, 0.05, 60)
    score_map = fit_score_map(raw, mos)
    values = score_map(np.linspace(-10, 10, 1001))
    assert np.all(np.diff(values) > 0)
