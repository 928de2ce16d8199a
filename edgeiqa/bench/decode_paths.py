"""Pure full decode, today's decode path and the ``jpeg_regions`` one, side by side on the same files.

Each setting runs in its own spawned process, so its peak resident memory (VmHWM) is its own, one after
another so they never share the cores. A setting reports its rate over every pass (images/s), and the
``today`` and ``regions`` paths also their per-stage cost (decode, views, network: medians over the files,
one thread) and their scores, from which the rank agreement between the two paths is computed. The
``regions`` path runs the same artifact with ``jpeg_regions`` switched on in its contract: the network is
the same, only the decode rule differs. Results: ``studies/results/uhd_decode_paths.json``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeiqa.metrics import srcc


@dataclass(frozen=True)
class PathSetting:
    """One measured setting: ``full_decode`` (Pillow, full frame, nothing else) or a Predictor run with
    ``regions`` on or off under a memory bound (``auto``, ``one_frame``, ``unbounded`` or a size);
    ``trim`` overrides whether freed frames go back to the OS (None: the Predictor's own rule)."""

    name: str
    kind: str  # "full_decode" or "predict"
    regions: bool = False
    memory: str = "auto"
    trim: bool | None = None


DEFAULT_SETTINGS = (
    PathSetting("full_decode", "full_decode"),
    PathSetting("today", "predict", regions=False),
    PathSetting("regions", "predict", regions=True),
    PathSetting("today_one_frame", "predict", regions=False, memory="one_frame"),
    PathSetting("regions_150MB", "predict", regions=True, memory="150MB"),
)


def _budget(memory: str) -> dict[str, Any]:
    from edgeiqa.runtime.frames import DEFAULT_BUDGET_PIXELS

    if memory == "auto":
        return {}
    if memory == "one_frame":
        return {"max_decoded_pixels": DEFAULT_BUDGET_PIXELS}
    if memory == "unbounded":
        return {"max_decoded_pixels": None}
    return {"max_memory": memory}


def _rates(n: int, fn: Any, repeats: int) -> list[float]:
    fn()  # warm-up pass
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
    return rates


def _stage_ms(predictor: Any, paths: list[Path]) -> dict[str, float]:
    """Median per-image ms of decode, views and network (batch 1), on one thread."""
    from edgeiqa.runtime.preprocess import preprocess_image

    stages: dict[str, list[float]] = {"decode": [], "views": [], "network": []}
    for path in paths:
        t0 = time.perf_counter()
        img = predictor._decode(path, predictor.contract)
        t1 = time.perf_counter()
        feed = preprocess_image(img, predictor.contract)
        t2 = time.perf_counter()
        predictor.predict_arrays({k: v[None] for k, v in feed.items()})
        t3 = time.perf_counter()
        for key, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2)):
            stages[key].append(seconds * 1000)
    return {key: statistics.median(values) for key, values in stages.items()}


def run_setting(
    setting: PathSetting, artifact: str, paths: list[str], workers: int, repeats: int, allow_invalid: bool = False
) -> dict:
    """One setting in this process (the child's entry point): rates, stages, scores, peak RSS (MiB)."""
    from edgeiqa.bench.memory import peak_rss_mb
    from edgeiqa.runtime.predictor import Predictor
    from edgeiqa.runtime.preprocess import decode_image

    files = [Path(p) for p in paths]
    out: dict[str, Any] = {"setting": dataclasses.asdict(setting)}
    if setting.kind == "full_decode":
        with Predictor.load(artifact, workers=workers, allow_invalid=allow_invalid) as predictor:
            full = dataclasses.replace(predictor.contract, jpeg_regions=False, jpeg_draft=False)
            with ThreadPoolExecutor(workers) as pool:
                decode_all = lambda: list(pool.map(lambda p: decode_image(p, full).size, files))  # noqa: E731
                out["rates"] = _rates(len(files), decode_all, repeats)
    else:
        with Predictor.load(
            artifact, workers=workers, allow_invalid=allow_invalid, **_budget(setting.memory)
        ) as predictor:
            predictor.contract = dataclasses.replace(predictor.contract, jpeg_regions=setting.regions)
            if setting.trim is not None:
                predictor.frames.trim = setting.trim
            out["rates"] = _rates(len(files), lambda: predictor(files), repeats)
            out["scores"] = predictor(files).tolist()
            out["budget_bytes"] = predictor.frames.limit
            out["stage_ms"] = _stage_ms(predictor, files)
    out["ips"] = statistics.median(out["rates"])
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def measure_decode_paths(
    artifact: Path,
    images: Sequence[Path],
    workers: int = 2,
    repeats: int = 3,
    settings: Sequence[PathSetting] = DEFAULT_SETTINGS,
    allow_invalid: bool = False,
) -> dict:
    """Every setting in its own spawned process, one after the other; ratios to the full decode and the
    rank agreement (SRCC) between today's scores and the regions path's on the same files."""
    context = multiprocessing.get_context("spawn")
    results = {}
    for setting in settings:
        with context.Pool(1) as pool:
            results[setting.name] = pool.apply(
                run_setting, (setting, str(artifact), [str(p) for p in images], workers, repeats, allow_invalid)
            )
    base = next((results[s.name]["ips"] for s in settings if s.kind == "full_decode"), None)
    for result in results.values():
        result["vs_full_decode"] = result["ips"] / base if base else None
    summary: dict[str, Any] = {"n_images": len(images), "workers": workers, "repeats": repeats, "settings": results}
    if "today" in results and "regions" in results:
        summary["srcc_today_vs_regions"] = srcc(results["regions"]["scores"], results["today"]["scores"])
    return summary
