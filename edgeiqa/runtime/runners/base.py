"""The runner interface every backend implements (Polygraphy style).

A runner is a context manager: ``__enter__`` builds the backend session (the expensive part) and
``__exit__`` releases it. Between the two, :meth:`Runner.infer` maps a feed of named numpy arrays to
named numpy outputs. Runners know nothing about images or manifests; the predictor does.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from edgeiqa.errors import EdgeIQAError

PathLike = Union[str, os.PathLike]


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

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._active = False
        self._input_names: tuple[str, ...] = ()
        self._output_names: tuple[str, ...] = ()
        # Each input's dims as the graph declares them: an int when fixed, None when dynamic.
        # Left empty by backends that cannot say (the predictor then checks names only).
        self._input_shapes: dict[str, tuple[int | None, ...]] = {}

    # -- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> "Runner":
        self.activate()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.deactivate()

    def activate(self) -> None:
        """Build the session; a no-op when already active."""
        if not self._active:
            if not self.path.exists():
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
    def name(self) -> str:
        """A short label such as ``onnxruntime:student_int8.onnx``."""
        return f"{self.backend}:{self.path.name}"

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
        return {"backend": self.backend, "artifact": str(self.path)}

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
