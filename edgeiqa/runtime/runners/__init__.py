"""Backends that run an exported artifact: one small runner per backend, one record per backend.

Importing this package imports no backend library: each runner imports its package (onnxruntime,
openvino, tensorrt, coremltools, ai_edge_litert) when it is activated. The records
(:mod:`.backends`) and what is derived from them (:mod:`.registry`) are described there.
"""

from __future__ import annotations

from edgeiqa.runtime.runners import backends as _builtin  # noqa: F401 - registers the torch-free backends
from edgeiqa.runtime.runners.base import ModelSource, PathLike, Runner, RunnerError
from edgeiqa.runtime.runners.coreml_runner import CoreMLRunner
from edgeiqa.runtime.runners.litert_runner import LiteRTRunner
from edgeiqa.runtime.runners.onnxruntime_runner import OnnxRuntimeRunner
from edgeiqa.runtime.runners.openvino_runner import OpenVINORunner
from edgeiqa.runtime.runners.registry import (
    PLUGIN_GROUP,
    Backend,
    backend_names,
    backends_for_format,
    claiming_backend,
    create_runner,
    format_names,
    get_backend,
    register,
    registered,
    runner_for,
)
from edgeiqa.runtime.runners.tensorrt_runner import TensorRTRunner

__all__ = [
    "PLUGIN_GROUP",
    "Backend",
    "CoreMLRunner",
    "LiteRTRunner",
    "ModelSource",
    "OnnxRuntimeRunner",
    "OpenVINORunner",
    "PathLike",
    "Runner",
    "RunnerError",
    "TensorRTRunner",
    "backend_names",
    "backends_for_format",
    "claiming_backend",
    "create_runner",
    "format_names",
    "get_backend",
    "register",
    "registered",
    "runner_for",
]
