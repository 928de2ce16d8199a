"""Accuracy of quality scores against MOS: SRCC, KRCC, PLCC (raw and after a 4PL fit), RMSE, MAE.

Training (validation metrics), score calibration (the 4-parameter logistic folded into exported models)
and the benchmarks all use these functions, so a number means the same thing everywhere.

Conventions, chosen so that no metric ever crashes on valid data or leaks a silent NaN:

* Inputs are 1-D arrays of finite numbers of equal length (an ``(n, 1)`` model output is accepted and
  flattened). Anything else raises :class:`MetricInputError` (a ``ValueError``) whose message says what
  is wrong: different lengths, too few samples, how many NaN/inf values.
* A correlation with constant predictions (or constant MOS) is **0.0**: such scores carry no ranking
  information, which is what a collapsed model should report (scipy would return NaN with a warning).
* Ties are handled as scipy does: average ranks for SRCC, Kendall's tau-b for KRCC.

Torch-free: numpy + scipy only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from edgeiqa.errors import ConfigError, EdgeIQAError

ArrayLike = Any  # anything np.asarray turns into numbers: list, ndarray, CPU tensor
MetricFn = Callable[[ArrayLike, ArrayLike], float]

LOGISTIC4_FORM = "f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2"
_LOGISTIC4_KIND = "logistic4"


class MetricInputError(EdgeIQAError, ValueError):
    """Predictions or MOS cannot be scored (wrong length, too few samples, NaN/inf, constant)."""


# --------------------------------------------------------------------------------------- validation


def _as_vector(values: ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"{name} must be numbers, got {type(values).__name__} ({exc})") from exc
    # One score per image: (n,), (n, 1) and (1, n) are fine; a real 2-D table is a caller's mistake.
    if arr.ndim > 1 and arr.size != max(arr.shape):
        raise MetricInputError(f"{name} must be 1-D (one score per image), got shape {arr.shape}")
    arr = arr.reshape(-1)
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise MetricInputError(f"{name} contains {bad} non-finite value(s) (NaN or inf) out of {arr.size}")
    return arr


def _validate(pred: ArrayLike, mos: ArrayLike, *, what: str, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as finite float64 vectors of equal length >= ``min_n``, or a one-line error."""
    p, m = _as_vector(pred, "pred"), _as_vector(mos, "mos")
    if p.size != m.size:
        raise MetricInputError(f"pred and mos have different lengths ({p.size} vs {m.size})")
    if p.size < min_n:
        raise MetricInputError(f"{what} needs at least {min_n} samples, got {p.size}")
    return p, m


def _is_constant(values: np.ndarray) -> bool:
    return bool(np.ptp(values) == 0.0)


# ------------------------------------------------------------------------------------- point metrics


def _correlation(pred: ArrayLike, mos: ArrayLike, what: str, fn: Callable[..., Any]) -> float:
    p, m = _validate(pred, mos, what=what, min_n=2)
    if _is_constant(p) or _is_constant(m):
        return 0.0  # no ranking information; scipy would warn and return NaN
    return float(fn(p, m).statistic)


def srcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Spearman rank-order correlation (average ranks for ties); 0.0 if either input is constant."""
    return _correlation(pred, mos, "srcc", stats.spearmanr)


def krcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Kendall rank correlation, tau-b (tie-corrected); 0.0 if either input is constant."""
    return _correlation(pred, mos, "krcc", stats.kendalltau)


def plcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Pearson linear correlation of the raw predictions; 0.0 if either input is constant."""
    return _correlation(pred, mos, "plcc", stats.pearsonr)


def rmse(pred: ArrayLike, mos: ArrayLike) -> float:
    """Root-mean-square error of the raw predictions; meaningful only when pred is on the MOS scale."""
    p, m = _validate(pred, mos, what="rmse", min_n=1)
    return float(np.sqrt(np.mean((p - m) ** 2)))


def mae(pred: ArrayLike, mos: ArrayLike) -> float:
    """Mean absolute error of the raw predictions; meaningful only when pred is on the MOS scale."""
    p, m = _validate(pred, mos, what="mae", min_n=1)
    return float(np.mean(np.abs(p - m)))


# ------------------------------------------------------------------------------- 4-parameter logistic


def logistic4(x: ArrayLike, params: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
    """The VQEG 4-parameter logistic, ``f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``.

    ``params = (b1, b2, b3, b4)``: b1 is the upper asymptote (x -> +inf), b2 the lower one, b3 the
    midpoint, |b4| the scale (the slope at b3 is (b1 - b2) / (4 |b4|)). Increasing in x iff b1 >= b2.
    Evaluated through ``scipy.special.expit``, so large |x| saturates without overflow warnings.
    """
    b1, b2, b3, b4 = (float(v) for v in params)
    # b4 == 0 is the limit of a step; the floor keeps it defined instead of dividing by zero.
    scale = max(abs(b4), np.finfo(np.float64).tiny)
    with np.errstate(over="ignore"):  # (x - b3) / tiny may be inf: expit(+-inf) is exactly 1 / 0
        z = (np.asarray(x, dtype=np.float64) - b3) / scale
    return (b1 - b2) * special.expit(z) + b2


@dataclass(frozen=True)
class Logistic4Fit:
    """A fitted, non-decreasing 4PL mapping from raw scores to MOS (see :func:`logistic4`).

    ``params`` are plain floats so the fit serialises to JSON and folds into an exported model as one
    formula. ``method`` records which candidate won: ``"logistic4"`` (curve_fit) or ``"linear"`` (a
    least-squares line with slope >= 0, written as a 4PL so wide that it is linear over the data).
    """

    params: tuple[float, float, float, float]
    method: str = "logistic4"

    def __post_init__(self) -> None:
        try:
            values = tuple(float(v) for v in self.params)
        except (TypeError, ValueError):
            values = ()  # reported below with the offending value
        if len(values) != 4 or not all(np.isfinite(values)):
            raise ConfigError(f"a 4PL mapping needs 4 finite params (b1, b2, b3, b4), got {self.params!r}")
        object.__setattr__(self, "params", values)

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return logistic4(x, self.params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; ``form`` spells out the formula for readers of a manifest."""
        return {"kind": _LOGISTIC4_KIND, "form": LOGISTIC4_FORM, "params": list(self.params), "method": self.method}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Logistic4Fit:
        """Inverse of :meth:`to_dict`; raises :class:`ConfigError` naming what is wrong."""
        if not isinstance(data, dict) or data.get("kind", _LOGISTIC4_KIND) != _LOGISTIC4_KIND or "params" not in data:
            raise ConfigError(f"not a 4PL score mapping (need kind='logistic4' and params): {data!r}")
        try:
            params = tuple(float(v) for v in data["params"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"4PL params must be 4 numbers, got {data['params']!r}") from exc
        return cls(params=params, method=str(data.get("method", "logistic4")))  # type: ignore[arg-type]


# The fit runs on z-scored data, so MOS in 0-1 or 0-100 and raw outputs of any scale condition the
# optimiser alike. Normalised model: v = B + D * expit((u - c) / s) with D >= 0 (non-decreasing) and
# s > 0. A concave or convex relation is fitted best by one tail of the S-curve with its far asymptote
# at infinity: unbounded, the optimiser crawls there (LIVE-C sharpness vs MOS: 1,200 evaluations,
# b2 = -2e5 on a 0-100 scale) to gain 0.01 % of SSE. Bounding the asymptotes to at most
# _MAX_SPAN_RANGES MOS ranges apart keeps the fit fast (~60 evaluations) and its params on a scale
# that survives float32 when folded into an exported model.
_MAX_SPAN_RANGES = 5.0
_NORM_LOWER = (-1e4, 0.0, -20.0, 1e-3)
_NORM_UPPER_FIXED = (1e4, 20.0, 1e2)  # B, c, s; D's bound depends on the data's range
# Initial scales, in std(pred) units: the VQEG guess b4 ~ std(pred) / k for two values of k, so both a
# steep and a gentle S-curve get a start; the lower-SSE result wins.
_START_SCALES = (0.5, 2.0)
_LINEAR_WIDTH = 100.0  # linear candidate: s = 100 * max|u|, so expit is linear to ~1e-5 over the data


def _norm_model(u: np.ndarray, b: float, d: float, c: float, s: float) -> np.ndarray:
    return b + d * special.expit((u - c) / s)


def _norm_jac(u: np.ndarray, b: float, d: float, c: float, s: float) -> np.ndarray:
    sig = special.expit((u - c) / s)
    slope = d * sig * (1.0 - sig) / s
    return np.stack([np.ones_like(u), sig, -slope, -slope * (u - c) / s], axis=1)


def _sse(u: np.ndarray, v: np.ndarray, theta: tuple[float, ...]) -> float:
    return float(np.sum((_norm_model(u, *theta) - v) ** 2))


def _logistic_candidates(u: np.ndarray, v: np.ndarray, max_iter: int) -> list[tuple[float, ...]]:
    b_max, c_max, s_max = _NORM_UPPER_FIXED
    upper = (b_max, _MAX_SPAN_RANGES * float(np.ptp(v)), c_max, s_max)
    out = []
    for scale in _START_SCALES:
        p0 = (float(v.min()), float(np.ptp(v)), 0.0, scale)
        try:
            with warnings.catch_warnings():
                # curve_fit warns when it cannot estimate the covariance, which this fit never uses.
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                theta, _ = optimize.curve_fit(
                    _norm_model,
                    u,
                    v,
                    p0=p0,
                    jac=_norm_jac,
                    bounds=(_NORM_LOWER, upper),
                    method="trf",
                    max_nfev=max_iter,
                    xtol=1e-12,
                    ftol=1e-12,
                    gtol=1e-12,
                )
        except (RuntimeError, ValueError):
            continue  # did not converge from this start: other candidates remain
        if np.all(np.isfinite(theta)):
            out.append(tuple(float(t) for t in theta))
    return out


def _linear_candidate(u: np.ndarray, v: np.ndarray) -> tuple[float, ...]:
    """Least-squares line with slope clipped at 0 (anti-correlated data -> constant mean MOS), as a 4PL."""
    slope = max(0.0, float(np.mean(u * v)))  # z-scored: the LS slope is the Pearson r, the intercept 0
    s = _LINEAR_WIDTH * float(np.max(np.abs(u)))
    d = 4.0 * slope * s  # expit(z) ~ 1/2 + z/4 near 0, so the 4PL's central slope is d / (4 s)
    return (-d / 2.0, d, 0.0, s)


def _best_candidate(u: np.ndarray, v: np.ndarray, max_iter: int) -> tuple[float, float, float, float, str]:
    """The lowest-SSE candidate; the line wins unless a 4PL is better beyond rounding noise.

    Preferring the line on near-ties makes anti-correlated data map to an exactly constant MOS (slope
    clipped to 0) rather than to a 4PL whose range is 1e-15 wide, which scipy calls "nearly constant".
    """
    line = _linear_candidate(u, v)
    best, best_sse = line, _sse(u, v, line) * (1.0 - 1e-9) - 1e-12 * u.size
    method = "linear"
    for theta in _logistic_candidates(u, v, max_iter):
        sse = _sse(u, v, theta)
        if sse < best_sse:  # strict: the first of equal candidates wins, so the choice is deterministic
            best, best_sse, method = theta, sse, "logistic4"
    return (*best, method)


def fit_logistic4(pred: ArrayLike, mos: ArrayLike, *, max_iter: int = 2000) -> Logistic4Fit:
    """Fit a non-decreasing 4PL mapping ``mos ~ f(pred)`` (VQEG practice), deterministically.

    curve_fit (trust-region, bounds that force b1 >= b2 so the mapping never decreases) starts from the
    VQEG guess b1 = max(mos), b2 = min(mos), b3 = mean(pred), b4 = std(pred) / 2 and from a gentler
    b4 = 2 std(pred). A least-squares line with slope >= 0 is always a candidate too; the candidate with
    the smallest squared error wins. So anti-correlated data gets the best increasing fit it allows
    (the constant mean MOS when nothing increasing fits better), and a fit that fails to converge
    falls back to the line: valid finite input with >= 4 samples and non-constant pred never raises.
    Constant MOS gives a constant mapping. The 4PL's asymptotes are kept at most 5 MOS ranges apart
    (b1 - b2 <= 5 (max(mos) - min(mos))), which costs a concave or convex relation a negligible amount
    of fit and keeps the params finite.
    """
    x, y = _validate(pred, mos, what="fit_logistic4", min_n=4)
    if _is_constant(x):
        raise MetricInputError(f"fit_logistic4 needs varying predictions, but all {x.size} equal {x[0]:g}")
    if _is_constant(y):
        return Logistic4Fit((float(y[0]), float(y[0]), float(np.mean(x)), float(np.std(x))), method="linear")
    mx, sx, my, sy = float(np.mean(x)), float(np.std(x)), float(np.mean(y)), float(np.std(y))
    u, v = (x - mx) / sx, (y - my) / sy
    b, d, c, s, method = _best_candidate(u, v, max_iter)
    b2 = my + sy * b
    return Logistic4Fit((b2 + sy * d, b2, mx + sx * c, sx * s), method=method)


def plcc_logistic(pred: ArrayLike, mos: ArrayLike) -> float:
    """PLCC between MOS and the predictions mapped by :func:`fit_logistic4` (needs >= 4 samples).

    0.0 when pred or MOS is constant, or when the best increasing mapping is constant.
    """
    p, m = _validate(pred, mos, what="plcc_logistic", min_n=4)
    if _is_constant(p) or _is_constant(m):
        return 0.0
    return plcc(fit_logistic4(p, m)(p), m)


# ---------------------------------------------------------------------------------- reports and CIs

METRICS: dict[str, MetricFn] = {
    "srcc": srcc,
    "krcc": krcc,
    "plcc": plcc,
    "plcc_logistic": plcc_logistic,
    "rmse": rmse,
    "mae": mae,
}


def iqa_metrics(pred: ArrayLike, mos: ArrayLike) -> dict[str, float]:
    """All metrics at once: srcc, krcc, plcc, plcc_logistic, rmse, mae and n (needs >= 4 samples).

    RMSE and MAE are computed on the raw predictions, so they are meaningful only when pred is already
    on the MOS scale (e.g. after score calibration); the correlations do not care about the scale.
    """
    p, m = _validate(pred, mos, what="iqa_metrics", min_n=4)
    out: dict[str, float] = {name: fn(p, m) for name, fn in METRICS.items()}
    out["n"] = int(p.size)
    return out


BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def bootstrap_indices(n: int, n_boot: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """``(n_boot, n)`` indices drawn with replacement from ``numpy.random.default_rng(seed)``.

    The one resampling of every bootstrap in the package (:func:`bootstrap_ci` here, the report's
    paired intervals in ``edgeiqa.report.intervals``): the same seed draws the same resamples, so
    their intervals agree by construction.
    """
    if n < 2 or n_boot < 1:
        raise MetricInputError(f"a bootstrap needs >= 2 samples and >= 1 resample, got {n} and {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def srcc_rows(pred: np.ndarray, mos: np.ndarray) -> np.ndarray:
    """:func:`srcc` of each row of ``pred`` against the same row of ``mos`` (2-D, same shape), all rows at
    once (ranks with ties averaged, as scipy does); 0.0 for a constant row, as in :func:`srcc`."""
    rp = stats.rankdata(pred, axis=1)
    rm = stats.rankdata(mos, axis=1)
    rp -= rp.mean(axis=1, keepdims=True)
    rm -= rm.mean(axis=1, keepdims=True)
    denom = np.sqrt((rp * rp).sum(axis=1) * (rm * rm).sum(axis=1))
    num = (rp * rm).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)
    return np.clip(out, -1.0, 1.0)


def percentile_interval(values: ArrayLike, alpha: float = 0.05) -> tuple[float, float]:
    """The ``(alpha / 2, 1 - alpha / 2)`` quantiles of bootstrap ``values``: a percentile interval."""
    low, high = np.quantile(np.asarray(values, dtype=np.float64), [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    pred: ArrayLike,
    mos: ArrayLike,
    metric: str | MetricFn = "srcc",
    n_boot: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` interval of ``metric`` at level ``1 - alpha``.

    Resamples (pred, mos) pairs with replacement ``n_boot`` times (:func:`bootstrap_indices`), so the
    interval is the same for the same seed. ``metric`` is a name from :data:`METRICS` or any
    ``fn(pred, mos) -> float``; SRCC is computed for all resamples at once (:func:`srcc_rows`). A
    resample that happens to be constant scores 0.0 by the conventions above, which widens the interval
    on tiny sets, as it should. ``plcc_logistic`` refits the 4PL per resample, which is slow.
    """
    fn = _resolve_metric(metric)
    if n_boot < 1 or not 0.0 < alpha < 1.0:
        raise MetricInputError(f"bootstrap_ci needs n_boot >= 1 and 0 < alpha < 1, got n_boot={n_boot} alpha={alpha}")
    p, m = _validate(pred, mos, what="bootstrap_ci", min_n=2)
    idx = bootstrap_indices(p.size, n_boot, seed)
    values = srcc_rows(p[idx], m[idx]) if fn is srcc else np.array([fn(p[row], m[row]) for row in idx])
    return percentile_interval(values, alpha)


def _resolve_metric(metric: str | MetricFn) -> MetricFn:
    if callable(metric):
        return metric
    if metric not in METRICS:
        raise MetricInputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    return METRICS[metric]
