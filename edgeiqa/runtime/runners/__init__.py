"""Backends that run an exported artifact: one small runner per backend, picked by the manifest.

Importing this package imports no backend library: each runner imports its package (onnxruntime,
openvino, tensorrt, coremltools) when it is activated.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.runtime.manifest import ArtifactManifest
from edgeiqa.runtime.runners.base import PathLike, Runner, RunnerError
from edgeiqa.runtime.runners.coreml_runner import CoreMLRunner
from edgeiqa.runtime.runners.onnxruntime_runner import OnnxRuntimeRunner
from edgeiqa.runtime.runners.openvino_runner import OpenVINORunner
from edgeiqa.runtime.runners.tensorrt_runner import TensorRTRunner

RunnerFactory = Callable[..., Runner]

# Which backends can run which artifact format; the first is the default. OpenVINO reads ONNX
# directly, which lets one ONNX file be benchmarked on both CPU runtimes.
BACKENDS_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "onnx": ("onnxruntime", "openvino"),
    "openvino": ("openvino",),
    "tensorrt": ("tensorrt",),
    "coreml": ("coreml",),
    "torch": ("torch",),
}
_FACTORIES: dict[str, RunnerFactory] = {
    "onnxruntime": OnnxRuntimeRunner,
    "openvino": OpenVINORunner,
    "tensorrt": TensorRTRunner,
    "coreml": CoreMLRunner,
}


def register_backend(name: str, factory: RunnerFactory) -> None:
    """Add a backend from outside the torch-free runtime (``edgeiqa.models`` registers ``torch``).

    ``factory(artifact_path, **opts)`` must return a :class:`Runner`.
    """
    _FACTORIES[name] = factory


def runner_for(
    manifest: ArtifactManifest, artifact_path: PathLike, backend: str | None = None, **opts: Any
) -> Runner:
    """An (inactive) runner for the artifact the manifest describes; ``backend`` overrides the default."""
    allowed = BACKENDS_BY_FORMAT[manifest.format]
    backend = backend or allowed[0]
    if backend not in allowed:
        raise ConfigError(
            f"backend {backend!r} cannot run a {manifest.format!r} artifact ({artifact_path}); "
            f"use one of: {', '.join(allowed)}"
        )
    factory = _FACTORIES.get(backend)
    if factory is None:  # only "torch" until edgeiqa.models registers it
        raise EdgeIQAError(
            f"{artifact_path}: torch checkpoints are not available in the torch-free runtime; "
            "use edgeiqa.models (which needs the 'train' extra) to score with a checkpoint"
        )
    try:
        inspect.signature(factory).bind(artifact_path, **opts)
    except TypeError as exc:
        raise ConfigError(f"backend {backend!r} does not accept the options {sorted(opts)} ({exc})") from exc
    return factory(artifact_path, **opts)


__all__ = [
    "BACKENDS_BY_FORMAT",
    "CoreMLRunner",
    "OnnxRuntimeRunner",
    "OpenVINORunner",
    "Runner",
    "RunnerError",
    "TensorRTRunner",
    "register_backend",
    "runner_for",
]
