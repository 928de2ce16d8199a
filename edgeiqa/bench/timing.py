"""Latency of one callable: warm-up, then repeated calls until a minimum duration, as robust statistics.

Every call is timed on its own with :func:`time.perf_counter` (monotonic, the highest resolution clock);
the garbage collector is paused while timing, as :mod:`timeit` does, so a collection triggered by an
unrelated allocation is not charged to the model. Percentiles use numpy's linear interpolation, which
keeps ``p50 <= p90 <= p99`` by construction.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeiqa.errors import ConfigError


@dataclass(frozen=True)
class LatencyStats:
    """Latency of ``n`` timed calls on batches of ``batch`` items, in milliseconds.

    ``throughput_ips`` is images per second over the timed calls, ``batch * n / sum(latencies)``, which
    equals ``1000 * batch / mean_ms``: the rate one sequential stream of calls sustains. ``total_s`` is
    that sum; ``wall_s`` the elapsed time of the timed loop (>= the requested minimum duration).
    """

    batch: int
    n: int
    warmup: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    total_s: float
    wall_s: float
    throughput_ips: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_samples(
        cls, seconds: np.ndarray | list[float], batch: int, warmup: int, wall_s: float | None = None
    ) -> LatencyStats:
        """Statistics of per-call durations given in seconds (``wall_s`` defaults to their sum)."""
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        if ms.size == 0:
            raise ConfigError("latency statistics need at least one timed call")
        p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
        total_s = float(ms.sum() / 1e3)
        return cls(
            batch=int(batch),
            n=int(ms.size),
            warmup=int(warmup),
            mean_ms=float(ms.mean()),
            std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
            p50_ms=p50,
            p90_ms=p90,
            p99_ms=p99,
            min_ms=float(ms.min()),
            max_ms=float(ms.max()),
            total_s=total_s,
            wall_s=float(wall_s) if wall_s is not None else total_s,
            throughput_ips=float(batch * ms.size / total_s) if total_s > 0 else float("inf"),
        )


def time_calls(
    fn: Callable[[], Any],
    *,
    min_seconds: float,
    warmup: int,
    min_iters: int,
    max_iters: int = 100_000,
) -> tuple[list[float], float]:
    """Durations in seconds of calls to ``fn``, and the wall time of the timed loop: ``warmup`` untimed calls, then
    timed ones until both
    ``min_seconds`` have passed and ``min_iters`` calls were made (or ``max_iters``, whichever first).

    Warm-up calls absorb one-off costs (lazy kernel selection, allocator growth, CUDA context and
    cuDNN autotuning, OpenVINO's first-inference compilation) that a deployed scorer pays once.
    """
    if min_seconds < 0 or warmup < 0 or min_iters < 1 or max_iters < min_iters:
        raise ConfigError(
            f"timing needs min_seconds >= 0, warmup >= 0 and 1 <= min_iters <= max_iters; got min_seconds="
            f"{min_seconds} warmup={warmup} min_iters={min_iters} max_iters={max_iters}"
        )
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            samples.append(t1 - t0)
            enough = t1 - start >= min_seconds and len(samples) >= min_iters
            if enough or len(samples) >= max_iters:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples, t1 - start


def measure_latency(
    fn: Callable[[], Any], batch: int, *, min_seconds: float, warmup: int, min_iters: int
) -> LatencyStats:
    """:func:`time_calls` summarised as :class:`LatencyStats` for calls on ``batch`` items.

    No defaults here: a run's are :class:`edgeiqa.bench.spec.BenchOptions`' (the one place they live)."""
    samples, wall = time_calls(fn, min_seconds=min_seconds, warmup=warmup, min_iters=min_iters)
    return LatencyStats.from_samples(samples, batch, warmup, wall)
