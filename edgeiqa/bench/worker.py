"""One benchmark worker: loads ONE runtime, times it, scores the dataset, reports JSON, exits.

Run as ``python -m edgeiqa.bench.worker SPEC.json OUT.json``; the harness (:mod:`.harness`) starts
one per target so the thread pools of different runtimes (ONNX Runtime's spinning intra-op threads,
OpenVINO's streams, torch's OpenMP pool) never share a process, and so the process's peak resident
memory (``VmHWM``, see :mod:`.memory`) belongs to that runtime alone.

What is timed (the ``latency`` block): model inference on already-preprocessed inputs, batched, through
``Predictor.predict_arrays`` (the runner's ``infer`` plus the copy of the scores into numpy); decoding
and preprocessing are excluded. The ``end_to_end`` block times whole file -> score passes over the
dataset's files (decode, preprocess, batch, infer; decoding runs in the predictor's thread pool).

Every runner, torch eager included, comes from the runtime's backend registry
(:func:`edgeiqa.runtime.runners.create_runner`); what differs between backends is asked of the runner
(``precision_used``, ``model_compute``, ``peak_gpu_mb``: declared on the ``Runner`` base with neutral
defaults), never decided by the target's kind.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.bench.compute import artifact_size_bytes
from edgeiqa.bench.memory import current_rss_mb, peak_rss_mb
from edgeiqa.bench.spec import BenchOptions, BenchSpec
from edgeiqa.bench.targets import Target
from edgeiqa.bench.timing import measure_latency
from edgeiqa.errors import EdgeIQAError
from edgeiqa.runtime.runners.base import Runner, first_line

_MAX_E2E_PASSES = 1000


def open_predictor(target: Target, options: BenchOptions) -> Any:
    """A :class:`Predictor` for the target: an artifact or a checkpoint folder, its runner taken from the
    runtime's backend registry (``Predictor.load`` does both)."""
    from edgeiqa.runtime.manifest import manifest_path_for, read_manifest
    from edgeiqa.runtime.predictor import Predictor
    from edgeiqa.runtime.runners import backends_for_format

    # Checkpoint targets always name their backend (torch); an artifact's default comes from its format.
    backend = target.backend or backends_for_format(read_manifest(manifest_path_for(target.path)).format)[0]
    return Predictor.load(
        target.path,
        backend,
        decoder=options.decoder,
        workers=options.workers,
        verify=options.verify,
        max_memory=options.max_memory,
        **target.runner_options(backend, options.threads),
    )


def timing_image(records: Sequence[Sequence[Any]] | None, size: Sequence[int]) -> Any:
    """The image whose preprocessed inputs are timed: the dataset's first file, else a synthetic photo
    of ``size`` (width, height) so aspect-preserving contracts see a realistic shape."""
    if records:
        return records[0][0]
    width, height = (int(v) for v in size)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width * 220, y / height * 200, (x + y) / (width + height) * 160 + 40], axis=-1)
    rgb += 25 * np.sin(x[..., None] / 9.0 + np.array([0.0, 1.0, 2.0], np.float32))
    return rgb.clip(0, 255).astype(np.uint8)


def describe_runtime(predictor: Any) -> dict[str, Any]:
    """Backend, the precision actually used and the runner's own description."""
    runner = predictor.runner
    info = runner.info()
    manifest = predictor.manifest
    # A checkpoint folder has no manifest: its format is its backend's (torch) and its runner knows the precision.
    fmt = manifest.format if manifest is not None else runner.backend
    precision = manifest.precision if manifest is not None else runner.precision
    # What the kernels compute in: OpenVINO's compiled precision (f32 vs bf16), torch's autocast;
    # the other backends run the graph as stored.
    used = runner.precision_used or precision
    return {
        "format": fmt,
        "precision": precision,
        "backend": runner.backend,
        "precision_used": used,
        "providers": info.get("providers"),
        "runtime": info,
        "model": manifest.model if manifest is not None else None,
    }


def time_batches(predictor: Any, feed: dict[str, np.ndarray], options: BenchOptions) -> list[dict[str, Any]]:
    """Latency statistics per batch size; a batch size the artifact refuses is recorded, not fatal."""
    out = []
    for batch in options.batches:
        batched = {name: np.ascontiguousarray(np.repeat(arr[None], batch, axis=0)) for name, arr in feed.items()}
        try:
            stats = measure_latency(
                lambda batched=batched: predictor.predict_arrays(batched),
                batch,
                min_seconds=options.min_seconds,
                warmup=options.warmup,
                min_iters=options.min_iters,
            )
            out.append(stats.to_dict())
        except Exception as exc:  # noqa: BLE001 - e.g. a static batch-1 engine refusing batch 8: keep batch 1
            message = first_line(exc) if isinstance(exc, EdgeIQAError) else f"{type(exc).__name__}: {first_line(exc)}"
            out.append({"batch": batch, "error": message})
    return out


def score_dataset(predictor: Any, paths: Sequence[str], batch: int, min_seconds: float) -> dict[str, Any]:
    """Scores of the dataset's files at ``batch`` (first pass; None where a file failed
    to decode) and the end-to-end (file -> score) rate over whole passes, repeated until ``min_seconds``
    have accumulated so a small test split still gives a stable rate (the first pass may read the files
    from disk, later ones from the page cache). Metrics are computed by the harness, so scipy never
    inflates this process's memory."""
    scores: list[float | None] = []
    errors: list[str] = []
    seconds, passes = 0.0, 0
    while passes == 0 or (seconds < min_seconds and passes < _MAX_E2E_PASSES):
        t0 = time.perf_counter()
        results = list(predictor.iter_predict(paths, batch_size=batch))
        seconds += time.perf_counter() - t0
        if passes == 0:
            scores = [r.score for r in results]
            errors = [r.error for r in results if r.error is not None]
        passes += 1
    e2e = {
        "images": len(paths) * passes,
        "passes": passes,
        "seconds": seconds,
        "images_per_s": len(paths) * passes / seconds if seconds > 0 else None,
        "batch": batch,
        "decoder": predictor.decoder,
        "decode_workers": predictor.workers,
        "failed": len(errors),
        "first_error": errors[0] if errors else None,
    }
    return {"scores": scores, "end_to_end": e2e}


def _runner_compute_and_size(runner: Runner, image_hw: tuple[int, int]) -> dict[str, Any]:
    # Exported artifacts are counted by the harness from their file; a runner that holds a live model
    # (torch) counts it here, where the model lives, and says so with ``compute_source``.
    info = runner.model_compute(image_hw)
    if info is None:
        return {}
    weights = runner.weights_path
    info["size_bytes"] = artifact_size_bytes(weights) if weights is not None else None
    return info


def run_target(spec: BenchSpec) -> dict[str, Any]:
    """Everything measured in the worker for one target; :func:`edgeiqa.bench.harness.finish_entry`
    turns ``scores`` into the accuracy block and counts an artifact's GMACs/params/size."""
    target, options, records = spec.target, spec.options, spec.records
    entry: dict[str, Any] = {
        "artifact": target.path,
        "label": target.label,
        "kind": target.kind,
        "worker_pid": os.getpid(),
        "isolated": options.isolate,
        "rss_before_load_mb": current_rss_mb(),
        "error": None,
    }
    with open_predictor(target, options) as predictor:
        entry.update(describe_runtime(predictor))
        entry["rss_after_load_mb"] = current_rss_mb()
        image = timing_image(records, options.input_size)
        feed = predictor.preprocess(image)
        entry["input_shapes"] = {k: [1, *v.shape] for k, v in feed.items()}
        entry["timing_input"] = str(image) if isinstance(image, str) else f"synthetic {image.shape[1]}x{image.shape[0]}"
        entry.update(_runner_compute_and_size(predictor.runner, _image_hw(image)))
        entry["latency"] = time_batches(predictor, feed, options)
        # Score the dataset at the largest batch size the artifact accepted (a static engine may take only 1).
        ok = [lat["batch"] for lat in entry["latency"] if not lat.get("error")]
        if records and ok:
            entry.update(score_dataset(predictor, [r[0] for r in records], max(ok), options.min_seconds))
        else:
            entry.update(scores=None, end_to_end=None)
        entry["peak_rss_mb"] = peak_rss_mb()
        entry["peak_gpu_mb"] = predictor.runner.peak_gpu_mb()
    return entry


def _image_hw(image: Any) -> tuple[int, int]:
    if isinstance(image, np.ndarray):
        return int(image.shape[0]), int(image.shape[1])
    from PIL import Image

    with Image.open(image) as img:
        return img.height, img.width


def safe_run(spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_target` on a spec's JSON (:meth:`BenchSpec.to_dict`), with any failure turned into an
    entry carrying a one-line ``error``."""
    target = spec["target"]
    try:
        return run_target(BenchSpec.from_dict(spec))
    except EdgeIQAError as exc:
        message = first_line(exc)
    except Exception as exc:  # noqa: BLE001 - the harness must get a result line, not a dead pipe
        traceback.print_exc(file=sys.stderr)
        message = f"{type(exc).__name__}: {first_line(exc)}"
    return {
        "artifact": target["path"],
        "label": target["label"],
        "kind": target["kind"],
        "worker_pid": os.getpid(),
        "error": message,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m edgeiqa.bench.worker SPEC.json OUT.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    entry = safe_run(spec)
    Path(args[1]).write_text(json.dumps(entry, allow_nan=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
