"""The benchmark result file: one JSON per device run, schema ``edgeiqa.bench/1``.

Layout (every number is per artifact and, for latency, per batch size)::

    {"schema": "edgeiqa.bench/1", "created": "...", "device": {"name": ..., "cpu_model": ..., ...},
     "settings": {"batches": [1, 8], "min_seconds": 2.0, "warmup": 5, "threads": null, "timed": "..."},
     "dataset": {"name": "csv", "root": ..., "split": "test", "n": 160} | null,
     "ablation": {"distilled": {...}, "student_only": {...}, "teacher": {...}} | null,
     "results": [ {"artifact": ..., "label": ..., "format": ..., "precision": ..., "backend": ...,
                   "precision_used": ..., "latency": [{"batch": 1, "n": ..., "p50_ms": ...}, ...],
                   "end_to_end": {...} | null, "accuracy": {"srcc": ...} | null, "gmacs": ..., "params": ...,
                   "size_bytes": ..., "peak_rss_mb": ..., "worker_pid": ..., "error": null,
                   "scores": [61.2, null, ...] | absent}, ...]}

Optional (newer writers): ``dataset.images`` and ``dataset.mos`` list the scored images and their MOS,
and each entry's ``scores`` its per-image scores in that order; the report's bootstrap intervals and
paired comparisons need them, and older files without them still load.

An artifact whose worker failed keeps its place with ``"error": "<one line>"`` and no numbers, so a
run with one broken artifact still reports the others. :func:`load_result` validates every key a
report reads and names the file and key in its :class:`ResultError`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeiqa.errors import EdgeIQAError
from edgeiqa.fileio import atomic_write_text, read_json_file

SCHEMA = "edgeiqa.bench/1"
PathLike = str | os.PathLike

LATENCY_KEYS = ("batch", "n", "warmup", "mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms", "throughput_ips")
ENTRY_KEYS = (
    "format",
    "precision",
    "backend",
    "precision_used",
    "latency",
    "accuracy",
    "end_to_end",
    "gmacs",
    "params",
    "size_bytes",
    "peak_rss_mb",
    "worker_pid",
)
ACCURACY_KEYS = ("srcc", "plcc", "krcc", "rmse", "mae", "n")
_TOP_KEYS = ("schema", "created", "device", "settings", "dataset", "results")


class ResultError(EdgeIQAError):
    """A benchmark result file is missing, unreadable or does not follow the schema."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class BenchResult:
    """One device run: the device, the settings, the dataset and one entry per artifact."""

    device: dict[str, Any]
    settings: dict[str, Any]
    results: list[dict[str, Any]]
    dataset: dict[str, Any] | None = None
    ablation: dict[str, Any] | None = None
    created: str = field(default_factory=_now)
    schema: str = SCHEMA

    @property
    def device_name(self) -> str:
        return str(self.device["name"])

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [entry for entry in self.results if entry.get("error")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "created": self.created,
            "device": self.device,
            "settings": self.settings,
            "dataset": self.dataset,
            "ablation": self.ablation,
            "results": self.results,
        }

    def write(self, path: PathLike) -> Path:
        """Validate and write atomically (a reader, e.g. a report job, never sees half a file)."""
        path = Path(path)
        data = json.loads(json.dumps(self.to_dict(), allow_nan=True))
        validate_result(data, str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "<result>") -> BenchResult:
        validate_result(data, source)
        return cls(
            device=data["device"],
            settings=data["settings"],
            results=data["results"],
            dataset=data["dataset"],
            ablation=data.get("ablation"),
            created=data["created"],
            schema=data["schema"],
        )


def load_result(path: PathLike) -> BenchResult:
    """Read and validate one result file; every problem is a one-line :class:`ResultError`."""
    path = Path(path)
    data = read_json_file(path, "result file", ResultError)
    return BenchResult.from_dict(data, source=str(path))


# ---------------------------------------------------------------------------------------------- validation


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _need(cond: bool, source: str, key: str, what: str) -> None:
    if not cond:
        raise ResultError(f"{source}: key {key!r} {what}")


def validate_result(data: Any, source: str) -> None:
    """Raise :class:`ResultError` naming ``source`` and the first bad key."""
    if not isinstance(data, dict):
        raise ResultError(f"{source}: a result must be a JSON object, got {type(data).__name__}")
    _need(
        data.get("schema") == SCHEMA,
        source,
        "schema",
        f"is {data.get('schema')!r}; this reader reads {SCHEMA!r}" if "schema" in data else "is missing",
    )
    for key in _TOP_KEYS:
        _need(key in data, source, key, "is missing")
    _need(
        isinstance(data["device"], dict)
        and isinstance(data["device"].get("name"), str)
        and bool(data["device"].get("name")),
        source,
        "device.name",
        "must be a non-empty string",
    )
    _need(isinstance(data["settings"], dict), source, "settings", "must be an object")
    _need(data["dataset"] is None or isinstance(data["dataset"], dict), source, "dataset", "must be an object or null")
    dataset = data["dataset"] or {}
    for key in ("mos", "images"):  # optional (added later): what per-image scores are paired on
        value = dataset.get(key)
        ok = _is_number if key == "mos" else (lambda v: isinstance(v, str))
        _need(
            value is None or (isinstance(value, list) and all(ok(v) for v in value)),
            source,
            f"dataset.{key}",
            f"must be a list of {'numbers' if key == 'mos' else 'strings'} or null",
        )
    ablation = data.get("ablation")
    _need(ablation is None or isinstance(ablation, dict), source, "ablation", "must be an object or null")
    _need(isinstance(data["results"], list), source, "results", "must be a list")
    for i, entry in enumerate(data["results"]):
        _validate_entry(entry, source, f"results[{i}]")


def _validate_entry(entry: Any, source: str, where: str) -> None:
    _need(isinstance(entry, dict), source, where, "must be an object")
    for key in ("artifact", "label"):
        _need(
            isinstance(entry.get(key), str) and bool(entry.get(key)),
            source,
            f"{where}.{key}",
            "must be a non-empty string",
        )
    if entry.get("error"):
        _need(isinstance(entry["error"], str), source, f"{where}.error", "must be a string")
        return
    for key in ENTRY_KEYS:
        _need(key in entry, source, f"{where}.{key}", "is missing")
    _need(
        isinstance(entry["latency"], list) and bool(entry["latency"]),
        source,
        f"{where}.latency",
        "must be a non-empty list",
    )
    for j, lat in enumerate(entry["latency"]):
        _validate_latency(lat, source, f"{where}.latency[{j}]")
    if entry["accuracy"] is not None:
        _need(isinstance(entry["accuracy"], dict), source, f"{where}.accuracy", "must be an object or null")
        for key in ACCURACY_KEYS:
            _need(_is_number(entry["accuracy"].get(key)), source, f"{where}.accuracy.{key}", "must be a number")
    for key in ("gmacs", "params", "size_bytes", "peak_rss_mb"):
        _need(entry[key] is None or _is_number(entry[key]), source, f"{where}.{key}", "must be a number or null")
    scores = entry.get("scores")  # optional (added later): per-image scores in the dataset's order
    _need(
        scores is None or (isinstance(scores, list) and all(s is None or _is_number(s) for s in scores)),
        source,
        f"{where}.scores",
        "must be a list of numbers (null where an image failed) or null",
    )


def _validate_latency(lat: Any, source: str, where: str) -> None:
    _need(isinstance(lat, dict), source, where, "must be an object")
    _need(isinstance(lat.get("batch"), int) and lat["batch"] >= 1, source, f"{where}.batch", "must be an int >= 1")
    if lat.get("error"):
        return
    for key in LATENCY_KEYS:
        _need(_is_number(lat.get(key)) and math.isfinite(lat[key]), source, f"{where}.{key}", "must be a finite number")
    _need(lat["n"] >= 1, source, f"{where}.n", "must be >= 1")
    _need(lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"], source, f"{where}.p50_ms", "must satisfy p50 <= p90 <= p99")
