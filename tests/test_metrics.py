"""Accuracy metrics: agreement with scipy, hand-checked values, the 4PL fit, errors, bootstrap."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.metrics import (
    Logistic4Fit,
    MetricInputError,
    bootstrap_ci,
    bootstrap_indices,
    fit_logistic4,
    iqa_metrics,
    krcc,
    logistic4,
    mae,
    plcc,
    plcc_logistic,
    rmse,
    srcc,
    srcc_rows,
)

# Any warning (overflow in exp, scipy's ConstantInputWarning, curve_fit's OptimizeWarning) is a failure.
pytestmark = pytest.mark.filterwarnings("error")

CORRELATIONS = {"srcc": srcc, "krcc": krcc, "plcc": plcc}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------ correlations


@pytest.mark.parametrize("ties", [False, True])
def test_correlations_match_scipy_on_random_data(ties: bool) -> None:
    rng = _rng(1)
    pred = rng.normal(size=200)
    mos = 0.6 * pred + rng.normal(size=200)
    if ties:  # coarse scores: many ties on both sides
        pred, mos = np.round(pred), np.round(mos * 2) / 2
    assert srcc(pred, mos) == pytest.approx(stats.spearmanr(pred, mos).statistic, abs=1e-12)
    assert krcc(pred, mos) == pytest.approx(stats.kendalltau(pred, mos).statistic, abs=1e-12)
    assert plcc(pred, mos) == pytest.approx(stats.pearsonr(pred, mos).statistic, abs=1e-12)


@pytest.mark.parametrize("name", list(CORRELATIONS))
def test_perfect_and_reversed_order(name: str) -> None:
    fn = CORRELATIONS[name]
    pred = [0.1, 0.4, 0.5, 0.9, 1.3]
    mos = [10.0 + 20 * p for p in pred]  # linear, so PLCC is exactly +-1 too
    assert fn(pred, mos) == pytest.approx(1.0, abs=1e-12)
    assert fn(pred, mos[::-1] if name != "plcc" else [-m for m in mos]) == pytest.approx(-1.0, abs=1e-12)


def test_tie_example_by_hand() -> None:
    # pred ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
    # Pairs: 5 concordant, 0 discordant, 1 tied in pred only: tau-b = 5 / sqrt((6 - 1) * 6).
    pred, mos = [1, 2, 2, 3], [1, 2, 3, 4]
    assert srcc(pred, mos) == pytest.approx(math.sqrt(0.9), abs=1e-12)
    assert krcc(pred, mos) == pytest.approx(5 / math.sqrt(30), abs=1e-12)


@pytest.mark.parametrize("name", [*CORRELATIONS, "plcc_logistic"])
def test_constant_input_gives_zero_without_warning(name: str) -> None:
    fn = {**CORRELATIONS, "plcc_logistic": plcc_logistic}[name]
    varying = [1.0, 3.0, 2.0, 5.0, 4.0]
    assert fn([0.7] * 5, varying) == 0.0
    assert fn(varying, [42.0] * 5) == 0.0


def test_rmse_mae_by_hand() -> None:
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    assert rmse([3.0], [1.0]) == 2.0  # errors are defined on one sample


def test_column_vector_is_accepted() -> None:
    pred = np.array([[0.1], [0.3], [0.2]])  # a model's (n, 1) output
    assert srcc(pred, [1, 3, 2]) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: srcc([1, 2, 3], [1, 2]), "pred and mos have different lengths (3 vs 2)"),
        (lambda: plcc([1.0], [2.0]), "plcc needs at least 2 samples, got 1"),
        (lambda: krcc([], []), "krcc needs at least 2 samples, got 0"),
        (
            lambda: srcc([1, np.nan, 3, np.inf], [1, 2, 3, 4]),
            "pred contains 2 non-finite value(s) (NaN or inf) out of 4",
        ),
        (lambda: plcc([1, 2, 3], [1, -np.inf, 3]), "mos contains 1 non-finite value(s) (NaN or inf) out of 3"),
        (lambda: srcc(np.ones((3, 2)), np.ones(6)), "pred must be 1-D (one score per image), got shape (3, 2)"),
        (lambda: fit_logistic4([1, 2, 3], [1, 2, 3]), "fit_logistic4 needs at least 4 samples, got 3"),
        (
            lambda: fit_logistic4([2, 2, 2, 2], [1, 2, 3, 4]),
            "fit_logistic4 needs varying predictions, but all 4 equal 2",
        ),
        (lambda: iqa_metrics([1, 2, 3], [1, 2, 3]), "iqa_metrics needs at least 4 samples, got 3"),
        (
            lambda: bootstrap_ci([1, 2, 3], [1, 2, 3], metric="auc"),
            "unknown metric 'auc'; choose one of srcc, krcc, plcc, plcc_logistic, rmse, mae",
        ),
        (
            lambda: bootstrap_ci([1, 2, 3], [1, 2, 3], alpha=1.5),
            "bootstrap_ci needs n_boot >= 1 and 0 < alpha < 1, got n_boot=1000 alpha=1.5",
        ),
    ],
)
def test_error_messages(call, message: str) -> None:
    with pytest.raises(MetricInputError) as info:
        call()
    assert str(info.value) == message
    assert isinstance(info.value, ValueError) and isinstance(info.value, EdgeIQAError)


def test_non_numeric_input_is_a_clear_error() -> None:
    with pytest.raises(MetricInputError, match=r"^pred must be numbers, got list"):
        srcc(["a", "b"], [1, 2])


# --------------------------------------------------------------------------------------- logistic


def test_logistic4_formula_and_parameter_order() -> None:
    b1, b2, b3, b4 = 80.0, 10.0, 0.5, -0.2  # the sign of b4 is ignored: |b4|
    x = np.array([-0.3, 0.5, 0.9])
    expected = (b1 - b2) / (1 + np.exp(-(x - b3) / abs(b4))) + b2
    np.testing.assert_allclose(logistic4(x, (b1, b2, b3, b4)), expected, rtol=1e-12)
    assert logistic4(b3, (b1, b2, b3, b4)) == pytest.approx((b1 + b2) / 2)


def test_logistic4_is_stable_for_huge_inputs() -> None:
    x = np.array([-1e308, -1e5, 0.0, 1e5, 1e308])
    np.testing.assert_array_equal(logistic4(x, (5.0, 1.0, 0.0, 1e-3)), [1.0, 1.0, 3.0, 5.0, 5.0])
    # b4 == 0 is the step function, not a division by zero
    np.testing.assert_array_equal(logistic4([-1.0, 0.0, 1.0], (1.0, 0.0, 0.0, 0.0)), [0.0, 0.5, 1.0])


@pytest.mark.parametrize(
    "true",
    [(80.0, 10.0, 0.45, 0.08), (1.0, 0.1, 0.3, 0.02), (5.0, 1.0, -2.0, 3.0), (0.9, 0.2, 1e-3, 1e-4)],
)
def test_fit_recovers_known_parameters(true: tuple[float, float, float, float]) -> None:
    x = _rng(2).normal(true[2], 2 * true[3], size=300)
    fit = fit_logistic4(x, logistic4(x, true))
    assert fit.method == "logistic4"
    np.testing.assert_allclose(fit.params, true, rtol=1e-3)


@pytest.mark.parametrize("slope", [1.0, 0.2, 0.0, -0.5, -1.0])
def test_fitted_mapping_is_non_decreasing(slope: float) -> None:
    rng = _rng(3)
    x = rng.normal(size=120)
    y = 50 + 10 * np.tanh(slope * x) + 3 * rng.normal(size=120)
    fit = fit_logistic4(x, y)
    b1, b2, _, _ = fit.params
    assert b1 >= b2
    grid = np.linspace(-50, 50, 20001)
    assert np.all(np.diff(fit(grid)) >= 0)


def test_anti_correlated_data_maps_to_constant_mean() -> None:
    x = np.linspace(0, 1, 50)
    y = 5 - 4 * x
    fit = fit_logistic4(x, y)
    assert fit.method == "linear"
    np.testing.assert_allclose(fit(x), np.mean(y), rtol=1e-12)
    assert plcc_logistic(x, y) == 0.0


def test_linear_data_and_non_convergence_fall_back_to_an_increasing_line() -> None:
    x = _rng(4).uniform(-3, 3, size=80)
    y = 2 * x + 1
    np.testing.assert_allclose(fit_logistic4(x, y)(x), y, atol=1e-3)
    # max_iter=1 makes every curve_fit start fail: the line remains, and nothing raises
    fit = fit_logistic4(x, np.tanh(x) + x**3, max_iter=1)
    assert fit.method == "linear"
    assert np.all(np.diff(fit(np.sort(x))) > 0)


def test_one_tailed_relation_keeps_asymptotes_bounded() -> None:
    # Concave: best fitted by the S-curve's upper tail, whose lower asymptote would run off to -inf.
    x = _rng(10).uniform(0.1, 10, size=300)
    mos = 20 * np.log(x) + _rng(11).normal(scale=3, size=300)
    fit = fit_logistic4(x, mos)
    b1, b2, _, _ = fit.params
    assert fit.method == "logistic4"
    assert 0 <= b1 - b2 <= 5 * np.ptp(mos) + 1e-9
    assert plcc(fit(x), mos) > plcc(x, mos) + 0.02


def test_constant_mos_gives_constant_mapping() -> None:
    fit = fit_logistic4([1, 2, 3, 4], [7.0] * 4)
    np.testing.assert_array_equal(fit([-100.0, 2.5, 100.0]), [7.0, 7.0, 7.0])


def test_fit_is_deterministic_and_json_round_trips() -> None:
    rng = _rng(5)
    x = rng.normal(size=100)
    y = 3 + 2 * np.tanh(x) + 0.3 * rng.normal(size=100)
    fit = fit_logistic4(x, y)
    assert fit_logistic4(x, y) == fit  # bit-identical
    data = json.loads(json.dumps(fit.to_dict()))
    assert data["kind"] == "logistic4" and all(type(v) is float for v in data["params"])
    again = Logistic4Fit.from_dict(data)
    assert again == fit
    np.testing.assert_array_equal(again(x), fit(x))


@pytest.mark.parametrize("params", [(1.0, 2.0, 3.0), (1.0, np.nan, 0.0, 1.0), 5.0])
def test_mapping_rejects_bad_params(params) -> None:
    with pytest.raises(ConfigError, match=r"^a 4PL mapping needs 4 finite params"):
        Logistic4Fit(params)


@pytest.mark.parametrize(
    "data", [{"kind": "linear", "params": [1, 2, 3, 4]}, {"params": [1, 2, 3]}, {"params": [1, "x", 3, 4]}, {}]
)
def test_from_dict_rejects_bad_mappings(data: dict) -> None:
    with pytest.raises(ConfigError, match="4PL"):
        Logistic4Fit.from_dict(data)


def test_logistic_plcc_beats_raw_plcc_on_nonlinear_monotone_relation() -> None:
    x = _rng(6).uniform(-4, 4, size=200)
    mos = 10 + 80 / (1 + np.exp(-3 * x))  # saturating S-curve, noiseless
    assert plcc(x, mos) < 0.94
    assert plcc_logistic(x, mos) == pytest.approx(1.0, abs=1e-9)
    # a convex relation with noise: the 4PL's lower tail still straightens it
    x = _rng(6).uniform(0, 5, size=200)
    mos = np.exp(x) + 5 * _rng(1).normal(size=200)
    assert plcc_logistic(x, mos) > plcc(x, mos) + 0.1


# ------------------------------------------------------------------------------ report and bootstrap


def test_iqa_metrics_agrees_with_individual_metrics() -> None:
    rng = _rng(7)
    pred = rng.uniform(0, 100, size=60)
    mos = pred + rng.normal(scale=10, size=60)
    out = iqa_metrics(pred, mos)
    assert list(out) == ["srcc", "krcc", "plcc", "plcc_logistic", "rmse", "mae", "n"]
    assert out["n"] == 60
    for name, fn in {
        "srcc": srcc,
        "krcc": krcc,
        "plcc": plcc,
        "plcc_logistic": plcc_logistic,
        "rmse": rmse,
        "mae": mae,
    }.items():
        assert out[name] == fn(pred, mos)
    json.dumps(out)  # plain floats and an int


def test_bootstrap_ci_contains_estimate_and_is_deterministic() -> None:
    rng = _rng(8)
    pred = rng.normal(size=80)
    mos = pred + rng.normal(size=80)
    low, high = bootstrap_ci(pred, mos, metric="srcc", n_boot=300, seed=0)
    assert low < srcc(pred, mos) < high
    assert 0.4 < low and high < 0.9
    assert bootstrap_ci(pred, mos, metric="srcc", n_boot=300, seed=0) == (low, high)
    assert bootstrap_ci(pred, mos, metric="srcc", n_boot=300, seed=1) != (low, high)
    narrow = bootstrap_ci(pred, mos, metric="srcc", n_boot=300, seed=0, alpha=0.5)
    assert low < narrow[0] < narrow[1] < high


def test_bootstrap_ci_takes_any_metric() -> None:
    rng = _rng(9)
    pred = rng.normal(size=40)
    mos = np.tanh(pred) + 0.3 * rng.normal(size=40)
    low, high = bootstrap_ci(pred, mos, metric="plcc_logistic", n_boot=40)
    assert low < plcc_logistic(pred, mos) < high
    low, high = bootstrap_ci(pred, mos, metric=lambda p, m: float(np.mean(p - m)), n_boot=200)
    assert low < float(np.mean(pred - mos)) < high


def test_the_vectorised_srcc_bootstrap_is_the_per_resample_one() -> None:
    # bootstrap_ci computes SRCC for all resamples at once (srcc_rows); the generic per-resample path
    # with srcc itself must give the same interval, ties and a constant resample included.
    rng = _rng(10)
    pred = np.round(rng.normal(size=12), 1)
    mos = pred + np.round(rng.normal(size=12), 1)
    fast = bootstrap_ci(pred, mos, metric="srcc", n_boot=200, seed=3)
    slow = bootstrap_ci(pred, mos, metric=lambda p, m: srcc(p, m), n_boot=200, seed=3)
    assert fast == pytest.approx(slow, abs=1e-12)
    idx = bootstrap_indices(12, 200, 3)
    assert idx.shape == (200, 12) and np.array_equal(idx, bootstrap_indices(12, 200, 3))
    assert srcc_rows(np.ones((1, 5)), np.arange(5.0)[None, :])[0] == 0.0 == srcc(np.ones(5), np.arange(5.0))
