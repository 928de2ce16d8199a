"""The runner interface every backend implements (Polygraphy style).

A runner is a context manager: ``__enter__`` builds the backend session (the expensive part) and
``__exit__`` releases it. Between the two, :meth:`Runner.infer` maps a feed of named numpy arrays to
named numpy outputs. Runners know nothing about manifests; the predictor does.

Loading is split from running, as in Polygraphy: a runner takes either a file (``path``) or a model
already in memory (``model``: serialized bytes, an ``onnx.ModelProto``, an ``openvino.Model``, as each
backend documents), so the export layer runs the graphs it is still editing through the same runners
that run the finished artifacts. Every runner takes ``threads=`` (what it sets is the backend record's
``thread_option``; a backend without a thread knob accepts and ignores it).

The optional features some backends have (a model's own views and contract, the precision the kernels
really use, GMACs of a live model, GPU memory) are declared here with neutral defaults, so callers ask
every runner the same questions instead of probing with ``getattr``.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.errors import EdgeIQAError
from edgeiqa.runtime.contract import PreprocessContract

PathLike = str | os.PathLike
# A file, or a model in memory (bytes, a ModelProto, an openvino.Model: whatever the backend documents).
ModelSource = str | os.PathLike | bytes | Any


class RunnerError(EdgeIQAError):
    """An artifact cannot be loaded or run by a backend (bad file, wrong inputs, unsupported platform)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text: backend errors are often pages long."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Runner(abc.ABC):
    """Base class: subclasses implement :meth:`_activate`, :meth:`_deactivate` and :meth:`_infer`.

    ``thread_safe`` says whether :meth:`infer` may be called from several threads at once; callers
    (the predictor) serialise calls with a lock when it is False.
    """

    backend: str = "base"
    thread_safe: bool = False
    # True when the model brings its own views of an image (a teacher checkpoint: global view + native
    # patches): the predictor then calls :meth:`prepare_image` instead of applying the contract.
    own_views: bool = False

    def __init__(self, model: ModelSource, threads: int | None = None) -> None:
        if threads is not None and int(threads) < 1:
            raise RunnerError(f"{self.backend} threads must be >= 1, got {threads}")
        self.threads = None if threads is None else int(threads)
        in_memory = not isinstance(model, (str, os.PathLike))
        self.path: Path | None = None if in_memory else Path(model)
        self.model: Any = model if in_memory else None
        # A self-describing model (a checkpoint folder) knows its preprocessing contract once active;
        # an exported artifact's contract is in its manifest, so it stays None.
        self.contract: PreprocessContract | None = None
        self._active = False
        self._input_names: tuple[str, ...] = ()
        self._output_names: tuple[str, ...] = ()
        # Each input's dims as the graph declares them: an int when fixed, None when dynamic.
        # Left empty by backends that cannot say (the predictor then checks names only).
        self._input_shapes: dict[str, tuple[int | None, ...]] = {}

    # -- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.deactivate()

    def activate(self) -> None:
        """Build the session; a no-op when already active."""
        if not self._active:
            if self.path is not None and not self.path.exists():
                raise RunnerError(f"{self.path}: artifact not found")
            self._activate()
            self._active = True

    def deactivate(self) -> None:
        """Release the session; a no-op when not active."""
        if self._active:
            self._active = False
            self._deactivate()

    @property
    def is_active(self) -> bool:
        return self._active

    # -- metadata -------------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """Where the model comes from, for messages: its path, or ``<in-memory ModelProto>``."""
        return str(self.path) if self.path is not None else f"<in-memory {type(self.model).__name__}>"

    @property
    def name(self) -> str:
        """A short label such as ``onnxruntime:student_int8.onnx``."""
        return f"{self.backend}:{self.path.name if self.path is not None else self.label}"

    def _model_bytes(self) -> bytes:
        """The serialized model: the file's bytes, or the in-memory bytes / ``SerializeToString()``."""
        if self.path is not None:
            return self.path.read_bytes()
        if isinstance(self.model, (bytes, bytearray, memoryview)):
            return bytes(self.model)
        if callable(getattr(self.model, "SerializeToString", None)):
            return self.model.SerializeToString()
        raise RunnerError(
            f"{self.backend} cannot take a {type(self.model).__name__} in memory: "
            "give it a file path or the serialized bytes"
        )

    @property
    def input_names(self) -> tuple[str, ...]:
        self._require_active()
        return self._input_names

    @property
    def output_names(self) -> tuple[str, ...]:
        self._require_active()
        return self._output_names

    @property
    def input_shapes(self) -> dict[str, tuple[int | None, ...]]:
        """Declared input dims (None = dynamic); empty when the backend does not expose them."""
        self._require_active()
        return dict(self._input_shapes)

    def info(self) -> dict[str, Any]:
        """JSON-serialisable description of what actually runs (providers, precision, device)."""
        return {"backend": self.backend, "artifact": self.label, "threads": self.threads}

    # -- optional features: neutral defaults, overridden by the backends that have them --------------
    @property
    def precision_used(self) -> str | None:
        """What the kernels compute in when it can differ from the artifact's precision (OpenVINO's
        bf16 on an "FP32" model, torch autocast); None: the graph runs as stored."""
        return None

    @property
    def weights_path(self) -> Path | None:
        """The file holding a live model's weights, for its size; None for an exported artifact."""
        return None

    def model_compute(self, input_hw: tuple[int, int]) -> dict[str, Any] | None:
        """GMACs/params counted from a live model (torch); None: the harness counts the artifact file."""
        return None

    def peak_gpu_mb(self) -> float | None:
        """Peak GPU memory this process allocated through the backend; None where it cannot say."""
        return None

    def prepare_image(self, img: Any) -> dict[str, np.ndarray]:
        """The model's own views of a decoded RGB image; only runners with :attr:`own_views` have them."""
        raise RunnerError(f"{self.name} has no views of its own: its inputs follow the preprocessing contract")

    # -- inference ------------------------------------------------------------------------------------
    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on ``feed`` (every input by name) and return every output by name."""
        self._require_active()
        missing = [n for n in self._input_names if n not in feed]
        extra = [n for n in feed if n not in self._input_names]
        if missing or extra:
            raise RunnerError(
                f"{self.name}: feed has inputs {sorted(feed)} but the model takes {list(self._input_names)}"
                " (does the manifest's preprocessing contract match this artifact?)"
            )
        return self._infer({n: np.ascontiguousarray(feed[n]) for n in self._input_names})

    def _require_active(self) -> None:
        if not self._active:
            raise RuntimeError(f"runner {self.name} is not active: use it as a context manager or call activate()")

    @abc.abstractmethod
    def _activate(self) -> None:
        """Build the session and set ``_input_names`` / ``_output_names``."""

    @abc.abstractmethod
    def _deactivate(self) -> None:
        """Drop every reference to the session so the backend frees its memory."""

    @abc.abstractmethod
    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; ``feed`` holds exactly the model inputs as contiguous arrays."""
