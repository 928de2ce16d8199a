"""``keep_fp auto``: accuracy-controlled mixed precision for ONNX Q/DQ INT8.

Greedy, as NNCF's ``quantize_with_accuracy_control`` does for OpenVINO: measure the fully quantized
artifact's rank agreement SRCC(int8 scores, FP32 scores); while it is below the budget, keep the
next most sensitive layer (:func:`edgeiqa.export.sensitivity.ranked`) in float, **re-quantize** and
measure the whole artifact again. The result is the fewest layers, in sensitivity order, that meet
the budget (or every layer with a measurable cost, and ``met: false``).

The images are the INT8 calibration images (at most :data:`AUTO_IMAGES`): the format exporter is
handed only those, and the parity gate's validation images then judge the chosen artifact
independently of the choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgeiqa.errors import MissingDependencyError, require
from edgeiqa.export.images import iter_feeds
from edgeiqa.export.sensitivity import (
    LayerSensitivity,
    Scorer,
    agreement,
    layer_sensitivity,
    plot_sensitivity,
    ranked,
    write_sensitivity,
)
from edgeiqa.runtime.contract import PreprocessContract

# Each sensitivity variant and each greedy step scores every image: cap them (SRCC on 100 images
# resolves a 0.01 agreement difference; the gate measures on its own images afterwards).
AUTO_IMAGES = 100
# Greedy steps at most: beyond this many float layers an INT8 artifact has little INT8 left.
MAX_KEPT = 32

Requantize = Callable[[list[str]], None]


def search_keep_fp(
    float_path: Path,
    artifact: Path,
    requantize: Requantize,
    paths: Sequence[str],
    contract: PreprocessContract,
    budget: float,
    backend: str = "onnxruntime",
    max_kept: int = MAX_KEPT,
) -> dict[str, Any]:
    """Run the greedy search on ``artifact`` (already fully quantized from ``float_path``).

    ``requantize(extra)`` must rewrite ``artifact`` with the layers ``extra`` kept in float on top
    of the base exclusions. Returns the manifest record; ``artifact`` is left as the chosen graph.
    Files ``<artifact>.sensitivity.json`` / ``.png`` are written beside ``artifact`` and named in
    ``files``.
    """
    start = time.perf_counter()
    paths = list(paths)[:AUTO_IMAGES]
    rows = layer_sensitivity(float_path, artifact, paths, contract, backend=backend)
    files = _write_files(rows, artifact)
    scorer = Scorer(list(iter_feeds(paths, contract, 8)), backend)
    reference = scorer.scores(float_path)
    measure = lambda: agreement(scorer.scores(artifact), reference)  # noqa: E731
    srcc_now, delta_now = measure()
    steps = [{"kept": 0, "rank_agreement": srcc_now, "mean_abs_delta": delta_now}]
    kept: list[LayerSensitivity] = []
    # Layers whose cost is not measurable (agreement 1.0 and no score change) cannot buy anything.
    candidates = [r for r in ranked(rows) if r.cost > 0 or r.mean_abs_delta > 0][:max_kept]
    for row in candidates:
        if srcc_now >= budget:
            break
        kept.append(row)
        requantize([r.layer for r in kept])
        srcc_now, delta_now = measure()
        steps.append({"kept": len(kept), "layer": row.layer, "rank_agreement": srcc_now, "mean_abs_delta": delta_now})
    return {
        "budget": budget,
        "metric": "SRCC(int8 scores, fp32 scores)",
        "backend": backend,
        "images": {"source": "INT8 calibration images", "n": len(paths)},
        "met": bool(srcc_now >= budget),
        "rank_agreement": srcc_now,
        "mean_abs_delta": delta_now,
        "kept_fp": [r.to_dict() | {"why": _why(r)} for r in kept],
        "steps": steps,
        "layers_measured": len(rows),
        "files": files,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _why(row: LayerSensitivity) -> str:
    error = "" if row.tensor_error is None else f", input SQNR {row.tensor_error:.1f} dB"
    return (
        f"quantized alone it ranks at SRCC {row.rank_agreement:.4f} with FP32 "
        f"(mean |Δ score| {row.mean_abs_delta:.3g}{error})"
    )


def _write_files(rows: list[LayerSensitivity], artifact: Path) -> list[str]:
    names = [write_sensitivity(rows, artifact.with_name(artifact.name + ".sensitivity.json")).name]
    try:
        require("matplotlib", "report", "the sensitivity plot")
    except MissingDependencyError:  # the plot is optional; the JSON carries every number
        return names
    names.append(plot_sensitivity(rows, artifact.with_name(artifact.name + ".sensitivity.png")).name)
    return names
