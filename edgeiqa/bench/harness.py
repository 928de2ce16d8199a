"""The benchmark harness: every target timed in its own worker process, one result file per device run.

    result = bench_artifacts(["exports/student_fp32.onnx", "exports/student_int8.onnx"],
                             DatasetSpec("runs/quickstart/data", split="test"),
                             BenchOptions(batches=(1, 8), threads=2), device_name="xeon-2c")
    result.write("results/xeon-2c.json")

The parent loads the dataset once (so a bad CSV fails before any worker starts), then runs the
targets one after another, never side by side: concurrent runtimes fight over the same cores and
both report nonsense.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeiqa.bench.compute import artifact_size_bytes, compute_info
from edgeiqa.bench.device_info import collect_device_info
from edgeiqa.bench.schema import BenchResult
from edgeiqa.bench.spec import DEFAULT_SPLIT, BenchOptions, BenchSpec
from edgeiqa.bench.targets import Target, parse_targets
from edgeiqa.errors import ConfigError, DataError, EdgeIQAError
from edgeiqa.runtime.manifest import manifest_path_for, read_manifest

TIMED = (
    "model inference on preprocessed, batched inputs (Predictor.predict_arrays: runner infer + score copy); "
    "excludes decoding and preprocessing; warm-up calls untimed; time.perf_counter per call; GC paused"
)
END_TO_END = "file -> score over the dataset's files (decode in the predictor's thread pool, preprocess, batch, infer)"
PEAK_RSS = (
    "peak resident set (VmHWM of /proc/self/status; ru_maxrss where there is no /proc) of the worker "
    "process that loaded this one runtime and scored"
)


@dataclass(frozen=True)
class DatasetSpec:
    """The dataset to score: ``load_dataset(name, root, **options)``, one split of it, at most ``limit`` images.

    ``split=None`` (or ``"all"``) uses every record; a dataset without splits uses every record too,
    and the result says so. ``split_rule`` (an experiment's ``data.split``: ``official``, ``random`` or ``folds``,
    with ``split_seed`` and ``fractions``) draws the split the experiment trained on instead, so its
    test images are the ones scored.
    """

    root: str
    name: str = "csv"
    split: str | None = DEFAULT_SPLIT
    options: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    split_rule: str | None = None
    split_seed: int = 0
    fractions: tuple[float, ...] = (0.7, 0.15, 0.15)

    def load(self) -> tuple[list[list[Any]], dict[str, Any]]:
        """``[[path, mos], ...]`` and the ``dataset`` block of the result file."""
        from edgeiqa.data.loaders import load_dataset

        table = load_dataset(self.name, self.root, **self.options)
        if self.split_rule is not None:
            table = table.with_split(self.split_rule, self.split_seed, self.fractions)
        note = None
        if self.split in (None, "all"):
            records, used = table.records, "all"
        elif not table.is_split:
            records, used, note = (
                table.records,
                "all",
                f"the dataset has no split: all records used instead of {self.split!r}",
            )
        else:
            records, used = table.split(self.split), self.split
        if self.limit is not None:
            records = records[: self.limit]
        if not records:
            raise DataError(f"{self.root}: split {self.split!r} of dataset {self.name!r} has no images")
        block = {
            **asdict(self),
            "split_used": used,
            "n": len(records),
            "mos_range": list(table.mos_range),
            "images": [str(r.path) for r in records],
            "mos": [float(r.mos) for r in records],
            "note": note,
        }
        return [[str(r.path), float(r.mos)] for r in records], block


def _worker_env() -> dict[str, str]:
    # The worker must import this very package, also when it runs from a source tree (not installed).
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_isolated(spec: BenchSpec) -> dict[str, Any]:
    """Run :func:`edgeiqa.bench.worker.safe_run` on ``spec`` in a fresh Python process."""
    target, timeout = spec.target.to_dict(), spec.options.timeout
    with tempfile.TemporaryDirectory(prefix="edgeiqa-bench-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec.to_dict()), encoding="utf-8")
        argv = [sys.executable, "-m", "edgeiqa.bench.worker", str(spec_path), str(out_path)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_worker_env())
        except subprocess.TimeoutExpired:
            return _failed(target, f"worker timed out after {timeout} s")
        if out_path.exists():
            return json.loads(out_path.read_text(encoding="utf-8"))
        tail = [line for line in (done.stderr or "").strip().splitlines() if line.strip()]
        return _failed(target, f"worker exited with code {done.returncode}" + (f": {tail[-1].strip()}" if tail else ""))


def finish_entry(entry: dict[str, Any], records: list[list[Any]] | None) -> dict[str, Any]:
    """Complete a worker's entry here, in the harness: accuracy from its ``scores`` (scipy stays out of
    the worker, whose peak memory is reported), and an artifact's GMACs/params/size from its file."""
    if entry.get("error"):
        return entry
    latency = entry.get("latency") or []
    if latency and all(lat.get("error") for lat in latency):  # nothing was timed: a failure, not a result
        entry["error"] = "every batch size failed: " + "; ".join(f"b{lat['batch']}: {lat['error']}" for lat in latency)
        return entry
    # Per-image scores stay in the entry (in the dataset's order, None where a file failed): the
    # report's bootstrap intervals and paired comparisons between artifacts need them.
    scores = entry.get("scores")
    entry["accuracy"], entry["accuracy_note"] = _accuracy(scores, records)
    if "compute_source" not in entry:  # the worker counted nothing (no live model): count the file
        entry.update(_artifact_compute(Path(entry["artifact"]), entry.get("input_shapes", {})))
    return entry


def _accuracy(scores: list[float | None] | None, records: list[list[Any]] | None) -> tuple[dict | None, str | None]:
    from edgeiqa.metrics import iqa_metrics

    if records is None:
        return None, "no dataset given"
    if scores is None:
        return None, "the dataset was not scored (no batch size ran)"
    pairs = [(s, r[1]) for s, r in zip(scores, records) if s is not None]
    if len(pairs) < 4:
        return None, f"only {len(pairs)} image(s) scored (accuracy needs >= 4)"
    left_out = len(records) - len(pairs)
    note = f"{left_out} of {len(records)} image(s) could not be decoded and are left out" if left_out else None
    return iqa_metrics([p for p, _ in pairs], [m for _, m in pairs]), note


def _artifact_compute(path: Path, input_shapes: dict[str, list[int]]) -> dict[str, Any]:
    try:
        manifest = read_manifest(manifest_path_for(path))
    except EdgeIQAError:
        manifest = None
    info = compute_info(manifest, path, input_shapes)
    info["size_bytes"] = artifact_size_bytes(path)
    return info


def _failed(target: dict[str, Any], message: str) -> dict[str, Any]:
    return {"artifact": target["path"], "label": target["label"], "kind": target["kind"], "error": message}


def _settings(options: BenchOptions) -> dict[str, Any]:
    # The options as run, plus what each measurement means, so a result file explains itself.
    return {**options.to_dict(), "timed": TIMED, "end_to_end": END_TO_END, "peak_rss": PEAK_RSS}


def bench_artifacts(
    artifacts: Sequence[str | os.PathLike | Target],
    data: DatasetSpec | None = None,
    options: BenchOptions | None = None,
    *,
    device_name: str | None = None,
    ablation: dict[str, Any] | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> BenchResult:
    """Benchmark each artifact (``path``, ``path@backend`` or a torch checkpoint folder), one process each.

    ``options`` says how (batch sizes, durations, threads, ...; see :class:`BenchOptions`, whose
    defaults are the only ones); ``device_name`` labels the run in reports; ``ablation`` is the
    student-alone comparison carried into the result; ``on_result`` is called with each entry as it
    completes (progress output).
    """
    options = options or BenchOptions()
    if not artifacts:
        raise ConfigError("nothing to benchmark: give at least one artifact or checkpoint folder")
    targets = parse_targets(artifacts, torch_devices=options.torch_devices, providers=options.providers)
    records, dataset = data.load() if data is not None else (None, None)
    entries = []
    for target in targets:
        spec = BenchSpec(target, options, records)
        entry = finish_entry(run_isolated(spec) if options.isolate else _run_here(spec), records)
        entries.append(entry)
        if on_result is not None:
            on_result(entry)
    return BenchResult(
        device=collect_device_info(device_name),
        settings=_settings(options),
        results=entries,
        dataset=dataset,
        ablation=ablation,
    )


def _run_here(spec: BenchSpec) -> dict[str, Any]:
    from edgeiqa.bench.worker import safe_run

    # Through JSON, as an isolated worker would receive it: the in-process path tests the same contract.
    return safe_run(json.loads(json.dumps(spec.to_dict())))
