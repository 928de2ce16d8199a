"""Backends that run an exported artifact: one small runner per backend, picked by the manifest.

Importing this package imports no backend library: each runner imports its package (onnxruntime,
openvino, tensorrt, coremltools, ai_edge_litert) when it is activated.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.runtime.manifest import ArtifactManifest
from edgeiqa.runtime.runners.base import PathLike, Runner, RunnerError
from edgeiqa.runtime.runners.coreml_runner import CoreMLRunner
from edgeiqa.runtime.runners.litert_runner import LiteRTRunner
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
    "ort": ("onnxruntime",),  # ORT-format files (ONNX Runtime Mobile): OpenVINO cannot read them
    "litert": ("litert",),
    "torch": ("torch",),
}
_FACTORIES: dict[str, RunnerFactory] = {
    "onnxruntime": OnnxRuntimeRunner,
    "openvino": OpenVINORunner,
    "tensorrt": TensorRTRunner,
    "coreml": CoreMLRunner,
    "litert": LiteRTRunner,
}


def register_backend(name: str, factory: RunnerFactory) -> None:
    """Add a backend from outside the torch-free runtime (``torch``: ``edgeiqa.benchmarks.torch_runner``'s
    ``register_torch_backend``, which the bench worker calls).

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
    return create_runner(backend, artifact_path, **opts)


# Backends that live above the torch-free runtime are packaging plugins: the entry-point group
# "edgeiqa.backends" names a function that registers them (pyproject.toml: torch). The runtime reads the
# group only when asked for a backend it does not have, and imports nothing of the plugin before that.
PLUGIN_GROUP = "edgeiqa.backends"


def _plugin_factory(backend: str) -> RunnerFactory | None:
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGIN_GROUP):
        if entry.name == backend:
            try:
                entry.load()()
            except ImportError:  # the plugin's own dependency (torch: the 'train' extra) is missing
                return None
            return _FACTORIES.get(backend)
    return None


def create_runner(backend: str, artifact_path: PathLike, **opts: Any) -> Runner:
    """An (inactive) runner of a registered backend, for an artifact that may have no manifest
    (a torch checkpoint folder carries its contract inside)."""
    factory = _FACTORIES.get(backend) or _plugin_factory(backend)
    if factory is None and backend != "torch":
        raise ConfigError(f"unknown backend {backend!r} for {artifact_path}; registered: {', '.join(sorted(_FACTORIES))}")
    if factory is None:  # "torch" is registered from above the runtime (edgeiqa.benchmarks.torch_runner)
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
    "LiteRTRunner",
    "OnnxRuntimeRunner",
    "OpenVINORunner",
    "Runner",
    "RunnerError",
    "TensorRTRunner",
    "create_runner",
    "register_backend",
    "runner_for",
]
