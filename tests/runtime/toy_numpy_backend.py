"""A toy backend, to show what adding one takes: this runner module and the one record at its end.

The "artifact" is an ``.npz`` of the tiny test model's weights (``runtime_helpers``); the runner scores
with numpy, so it needs no backend library at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeiqa.runtime.runners import Backend, ModelSource, Runner, RunnerError


class NumpyRunner(Runner):
    """Scores ``score = w_image . mean(image) + contrast * mean(image^2) + w_frag . mean(fragments) + bias``."""

    backend = "numpy"
    thread_safe = True

    def __init__(self, model: ModelSource, threads: int | None = None, scale: float = 1.0) -> None:
        super().__init__(model, threads)
        self.scale = scale
        self._weights: dict[str, np.ndarray] = {}

    def _activate(self) -> None:
        try:
            with np.load(self.path) as data:
                self._weights = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise RunnerError(f"{self.label}: not an npz of weights ({exc})") from exc
        self._input_names = ("image", "fragments") if "w_frag" in self._weights else ("image",)
        self._output_names = ("score",)

    def _deactivate(self) -> None:
        self._weights = {}

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        w = self._weights
        image = feed["image"].astype(np.float64)
        score = image.mean(axis=(2, 3)) @ w["w_image"] + w["contrast"] * (image**2).mean(axis=(1, 2, 3)) + w["bias"]
        if "fragments" in feed:
            score = score + feed["fragments"].astype(np.float64).mean(axis=(2, 3)) @ w["w_frag"]
        return {"score": (self.scale * score).astype(np.float32)}

    def info(self) -> dict[str, Any]:
        return {**super().info(), "scale": self.scale}


NUMPY = Backend(
    name="numpy",
    title="numpy",
    runner="toy_numpy_backend:NumpyRunner",
    formats=("npz",),
    suffixes=(".npz",),
    modules=("numpy",),
    extra="core",
    thread_option=None,
    precisions=("fp32",),
    default_options={"scale": 1.0},
)
