"""What a benchmark run is told: :class:`BenchOptions` (how to measure) and :class:`BenchSpec` (one worker's job).

The harness (:mod:`.harness`) and the worker (:mod:`.worker`) run in different processes and talk in
JSON; both sides read these dataclasses, so every default lives here once: the CLI's flags take their
defaults from a default ``BenchOptions()``, and an experiment's ``bench:`` section *is* a
``BenchOptions`` (:class:`edgeiqa.experiment.BenchConfig` subclasses it)::

    bench_artifacts(paths, data, BenchOptions(batches=(1, 8), threads=2))
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from edgeiqa.bench.targets import Target
from edgeiqa.errors import ConfigError
from edgeiqa.runtime.decode import DecoderName

# The runtime's decoder names (edgeiqa.runtime.decode.DecoderName), the one list of them.
DECODERS: tuple[str, ...] = typing.get_args(DecoderName)
DEFAULT_DECODER: DecoderName = "auto"  # the runtime's measured choice (see edgeiqa.runtime.decode)
# Which part of a dataset accuracy is scored on ("all": every image).
BenchSplit = Literal["train", "val", "test", "all"]
BENCH_SPLITS: tuple[str, ...] = typing.get_args(BenchSplit)
DEFAULT_SPLIT: BenchSplit = "test"
_TORCH_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def _tuple(value: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return tuple(value) if value is not None else None


@dataclass(frozen=True)
class BenchOptions:
    """How every target of one run is measured.

    Attributes:
        batches: batch sizes timed, each for ``min_seconds`` after ``warmup`` untimed calls (and at
            least ``min_iters`` timed calls).
        isolate: one fresh worker process per target (False: in this process, for debugging; peak
            memory then includes whatever this process held before).
        threads: every runtime's thread knob (ORT intra-op, OpenVINO, torch); None: the runtime's default.
        torch_devices: devices a torch checkpoint folder is timed on (CUDA adds an fp16 autocast run).
        providers: ONNX Runtime execution providers (None: the runner's default).
        decoder: the end-to-end pass's JPEG decoder, one of :data:`DECODERS`.
        workers: decode threads of the end-to-end pass (None: the predictor's default).
        input_size: (width, height) of the synthetic timing image when no dataset is given.
        timeout: seconds one worker may run before it is stopped (None: no limit).
        verify: check each artifact's (and checkpoint's) sha256 before running it (False: ``--no-verify``).
        allow_invalid: time artifacts whose manifest says they failed their parity gate (``--allow-invalid``).
    """

    batches: tuple[int, ...] = (1, 8)
    min_seconds: float = 2.0
    warmup: int = 5
    min_iters: int = 5
    isolate: bool = True
    threads: int | None = None
    torch_devices: tuple[str, ...] = ("cpu",)
    providers: tuple[str, ...] | None = None
    decoder: str = DEFAULT_DECODER
    workers: int | None = None
    input_size: tuple[int, int] = (3840, 2160)
    timeout: float | None = None
    verify: bool = True
    allow_invalid: bool = False
    # The end-to-end pass's whole-process memory bound (e.g. "150MB"; None: the predictor's default,
    # a share of the memory available): see edgeiqa.runtime.frames.
    max_memory: str | None = None

    def __post_init__(self) -> None:
        # Lists from JSON/YAML or a caller become tuples, so options compare and hash as values.
        set_ = object.__setattr__
        set_(self, "batches", tuple(self.batches))
        set_(self, "torch_devices", tuple(self.torch_devices))
        set_(self, "providers", _tuple(self.providers))
        set_(self, "input_size", tuple(self.input_size))
        if not self.batches or any(not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in self.batches):
            raise ConfigError(f"batch sizes must be integers >= 1, got {list(self.batches)}")
        if not math.isfinite(self.min_seconds) or self.min_seconds < 0 or self.warmup < 0 or self.min_iters < 1:
            raise ConfigError(
                f"min_seconds and warmup must be >= 0 (min_seconds finite) and min_iters >= 1, got "
                f"{self.min_seconds}, {self.warmup} and {self.min_iters}"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.decoder not in DECODERS:
            raise ConfigError(f"decoder {self.decoder!r} is not one of {', '.join(DECODERS)}")
        if len(self.input_size) != 2 or any(int(v) < 1 for v in self.input_size):
            raise ConfigError(f"input_size must be (width, height) >= 1, got {list(self.input_size)}")
        if not self.torch_devices:
            raise ConfigError("torch_devices must name at least one device (cpu, cuda, cuda:1, ...)")
        bad = [d for d in self.torch_devices if not isinstance(d, str) or not _TORCH_DEVICE.match(d)]
        if bad:
            raise ConfigError(f"torch_devices must be cpu, cuda, cuda:N or mps, got {bad}")

    def to_dict(self) -> dict[str, Any]:
        """JSON's own form (tuples as lists); ``from_dict`` reads it back to an equal object."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "bench options") -> BenchOptions:
        """Options from JSON or a YAML section; an unknown key is an error naming it (a typo must not
        silently fall back to a default)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of bench options, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown bench option(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**data)


@dataclass(frozen=True)
class BenchSpec:
    """One worker's job: one target, the run's options, and the dataset's ``[[path, mos], ...]``."""

    target: Target
    options: BenchOptions = field(default_factory=BenchOptions)
    records: list[list[Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target.to_dict(), "options": self.options.to_dict(), "records": self.records}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchSpec:
        return cls(
            Target.from_dict(data["target"]), BenchOptions.from_dict(data.get("options") or {}), data.get("records")
        )
