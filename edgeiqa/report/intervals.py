"""How sure the report may be: bootstrap intervals of SRCC and *paired* intervals of SRCC differences.

On ~120 test images one artifact's SRCC has a 95 % interval about ±0.1 wide, so two artifacts whose
single SRCCs differ by 0.005 cannot be ranked from those numbers. Their *difference* is far better
determined when it is measured on the same images: both are resampled with the same indices, so the
image-to-image variation that moves both SRCCs together cancels (the paired bootstrap). The
decision against a budget then has three outcomes: ``within`` (the whole interval of
SRCC(candidate) - SRCC(reference) lies above -budget), ``outside`` (the whole interval lies below it)
and ``undecided`` (the interval straddles -budget: the data cannot tell).

The resampling and the rank correlation are :mod:`edgeiqa.metrics`' own (:func:`~edgeiqa.metrics.bootstrap_indices`,
:func:`~edgeiqa.metrics.srcc_rows`), so a single artifact's interval here is the one
:func:`edgeiqa.metrics.bootstrap_ci` gives for the same seed; SRCC is computed for all resamples at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeiqa.metrics import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    MetricInputError,
    bootstrap_indices,
    percentile_interval,
    srcc_rows,
)

LEVEL = 0.95
WITHIN, OUTSIDE, UNDECIDED = "within", "outside", "undecided"


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    return percentile_interval(values, 1.0 - level)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile-bootstrap interval at ``level``."""

    value: float
    low: float
    high: float
    n: int
    level: float = LEVEL
    resamples: int = BOOTSTRAP_RESAMPLES

    def text(self, digits: int = 3) -> str:
        """``0.812 [0.741, 0.866]``."""
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "level": self.level,
            "resamples": self.resamples,
        }


def srcc_interval(
    pred: Sequence[float],
    mos: Sequence[float],
    n_boot: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = LEVEL,
) -> Interval:
    """SRCC of ``pred`` against ``mos`` with its bootstrap interval."""
    p, m = np.asarray(pred, dtype=np.float64), np.asarray(mos, dtype=np.float64)
    idx = bootstrap_indices(p.size, n_boot, seed)
    value = float(srcc_rows(p[None, :], m[None, :])[0])
    low, high = _interval(srcc_rows(p[idx], m[idx]), level)
    return Interval(value, low, high, int(p.size), level, n_boot)


@dataclass(frozen=True)
class PairedDifference:
    """SRCC(candidate, MOS) - SRCC(reference, MOS) on the same images, its paired interval, and the
    decision against ``budget`` (``within``, ``outside`` or ``undecided``)."""

    difference: Interval
    budget: float
    decision: str

    @property
    def indistinguishable(self) -> bool:
        """The interval contains 0: the data cannot tell the two apart at all."""
        return self.difference.low <= 0.0 <= self.difference.high

    def text(self) -> str:
        """``ΔSRCC -0.0021 [-0.0060, +0.0013]``, four decimals: budgets are in the thousandths."""
        d = self.difference
        return f"ΔSRCC {d.value:+.4f} [{d.low:+.4f}, {d.high:+.4f}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "difference": self.difference.to_dict(),
            "budget": self.budget,
            "decision": self.decision,
            "indistinguishable": self.indistinguishable,
        }


def paired_srcc_difference(
    candidate: Sequence[float],
    reference: Sequence[float],
    mos: Sequence[float],
    budget: float,
    n_boot: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = LEVEL,
) -> PairedDifference:
    """Paired bootstrap of SRCC(candidate) - SRCC(reference) against ``mos``: one set of resampled
    images, used for both. ``budget`` >= 0 is the SRCC the candidate may lose."""
    c, r, m = (np.asarray(v, dtype=np.float64) for v in (candidate, reference, mos))
    if not c.size == r.size == m.size:
        raise MetricInputError(f"paired scores need equal lengths, got {c.size}, {r.size} and {m.size}")
    idx = bootstrap_indices(c.size, n_boot, seed)
    point = float(srcc_rows(c[None, :], m[None, :])[0] - srcc_rows(r[None, :], m[None, :])[0])
    mi = m[idx]
    diffs = srcc_rows(c[idx], mi) - srcc_rows(r[idx], mi)
    low, high = _interval(diffs, level)
    return PairedDifference(
        Interval(point, low, high, int(c.size), level, n_boot), float(budget), decide(low, high, budget)
    )


class PairedBootstrap:
    """Paired comparisons of many candidates with one reference on the same images: the resampled
    reference SRCCs are computed once and reused for every candidate that scored the same images."""

    def __init__(
        self,
        reference: Sequence[float | None],
        mos: Sequence[float],
        n_boot: int = BOOTSTRAP_RESAMPLES,
        seed: int = BOOTSTRAP_SEED,
        level: float = LEVEL,
    ) -> None:
        self.reference, self.mos = list(reference), list(mos)
        self.n_boot, self.seed, self.level = n_boot, seed, level
        self._cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, float]] = {}

    def compare(self, candidate: Sequence[float | None], budget: float) -> PairedDifference | None:
        """None when fewer than 4 images were scored by both."""
        keep = tuple(i for i, (x, y) in enumerate(zip(candidate, self.reference)) if _finite(x) and _finite(y))
        if len(keep) < 4 or len(candidate) != len(self.reference):
            return None
        pick = np.asarray(keep, dtype=np.int64)
        c = np.asarray([candidate[i] for i in keep], dtype=np.float64)
        if keep not in self._cache:
            r, m = np.asarray(self.reference, dtype=object)[pick].astype(np.float64), np.asarray(self.mos)[pick]
            idx = bootstrap_indices(len(keep), self.n_boot, self.seed)
            ref_point = float(srcc_rows(r[None, :], m[None, :])[0])
            self._cache[keep] = (idx, srcc_rows(r[idx], m[idx]), ref_point)
        idx, ref_boot, ref_point = self._cache[keep]
        m = np.asarray(self.mos, dtype=np.float64)[pick]
        point = float(srcc_rows(c[None, :], m[None, :])[0]) - ref_point
        low, high = _interval(srcc_rows(c[idx], m[idx]) - ref_boot, self.level)
        return PairedDifference(
            Interval(point, low, high, len(keep), self.level, self.n_boot), float(budget), decide(low, high, budget)
        )


def decide(low: float, high: float, budget: float, eps: float = 1e-12) -> str:
    """``within`` when all of [low, high] is >= -budget, ``outside`` when all of it is < -budget."""
    if low >= -budget - eps:
        return WITHIN
    if high < -budget - eps:
        return OUTSIDE
    return UNDECIDED


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))
