"""Core ML runner (``.mlpackage`` / ``.mlmodel``) through coremltools' ``MLModel.predict``.

Prediction needs macOS: coremltools converts on Linux but ships no prediction engine there, so on
any other platform activation raises a one-line :class:`RunnerError` before coremltools is even
imported. Not run on the (Linux) development machines.

Note for torch-free deployments: coremltools' package ``__init__`` imports torch when it is
installed (for its converters), so install the runtime on a Mac without torch to keep it lean.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from edgeiqa.errors import require
from edgeiqa.runtime.runners.base import ModelSource, Runner, RunnerError, first_line

COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


class CoreMLRunner(Runner):
    """Runs a Core ML model; batches are split into single samples when the model's batch is fixed at 1.

    Args:
        model: the ``.mlpackage`` directory or ``.mlmodel`` file, or a Core ML spec in memory.
        compute_units: one of ``ALL``, ``CPU_ONLY``, ``CPU_AND_GPU``, ``CPU_AND_NE``.
        threads: accepted for a uniform interface; Core ML schedules its own threads.
    """

    backend = "coreml"
    thread_safe = False

    def __init__(self, model: ModelSource, compute_units: str = "ALL", threads: int | None = None) -> None:
        super().__init__(model, threads)
        if compute_units not in COMPUTE_UNITS:
            raise RunnerError(f"Core ML compute_units {compute_units!r} is not one of {', '.join(COMPUTE_UNITS)}")
        self.compute_units = compute_units
        self._model: Any = None
        self._batch_one = False

    def _activate(self) -> None:
        if sys.platform != "darwin":
            raise RunnerError(
                f"{self.label}: Core ML prediction needs macOS (this is {sys.platform}); coremltools can only "
                "convert here: run the .mlpackage on a Mac or iPhone, or use the ONNX artifact on this machine"
            )
        ct = require("coremltools", "coreml", "the Core ML runner")
        try:
            source = str(self.path) if self.path is not None else self.model
            self._model = ct.models.MLModel(source, compute_units=ct.ComputeUnit[self.compute_units])
        except Exception as exc:
            raise RunnerError(f"{self.label}: Core ML cannot load this model ({first_line(exc)})") from exc
        description = self._model.get_spec().description
        self._input_names = tuple(i.name for i in description.input)
        self._output_names = tuple(o.name for o in description.output)
        self._batch_one = any(_fixed_batch_one(i) for i in description.input)

    def _deactivate(self) -> None:
        self._model = None

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = len(next(iter(feed.values())))
        if not self._batch_one or batch == 1:
            return self._predict(feed)
        parts = [self._predict({n: a[i : i + 1] for n, a in feed.items()}) for i in range(batch)]
        return {n: np.concatenate([p[n] for p in parts], axis=0) for n in self._output_names}

    def _predict(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._model.predict(feed)
        outputs = {n: np.asarray(result[n]) for n in self._output_names}
        # A batch-1 model may return a 0-d score; keep the batch axis the other runners return.
        return {n: a.reshape(1) if a.ndim == 0 else a for n, a in outputs.items()}

    def info(self) -> dict[str, Any]:
        data = super().info()
        data["compute_units"] = self.compute_units
        return data


def _fixed_batch_one(feature: Any) -> bool:
    """True when a multi-array input has a static first dimension of 1 and no flexible shapes."""
    array = feature.type.multiArrayType
    shape = list(array.shape)
    flexible = array.WhichOneof("ShapeFlexibility") is not None
    return bool(shape) and shape[0] == 1 and not flexible
