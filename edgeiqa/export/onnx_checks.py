"""Checks every ONNX artifact goes through: the strict ONNX checker and one ONNX Runtime run.

The run goes through the runtime's :class:`~edgeiqa.runtime.runners.OnnxRuntimeRunner`, the runner that
will run the artifact on a device, rather than a session of its own.

A leaf of the export layer (onnx and onnxruntime only): :mod:`edgeiqa.export.onnx_export`,
:mod:`edgeiqa.export.onnx_int8` and :mod:`edgeiqa.export.sensitivity` all use it, so none of them
has to import another's private helpers (``onnx_int8`` used to import ``onnx_export._check``, while
``onnx_export`` imports ``onnx_int8``: a module cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.errors import require
from edgeiqa.export.errors import ExportError
from edgeiqa.runtime.runners import OnnxRuntimeRunner
from edgeiqa.runtime.runners.base import first_line


def check_onnx(model: Any, path: Path) -> None:
    """The strict ONNX checker (``full_check``: shape inference too); one-line :class:`ExportError` on failure."""
    onnx = require("onnx", "onnx", "ONNX checks")
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ExportError(f"{path.name}: the ONNX checker rejects the graph ({first})") from exc


def smoke_run(path: Path) -> None:
    """Run ``path`` once in ONNX Runtime on zeros of its declared shapes (dynamic dims -> 1 or 64)."""
    require("onnxruntime", "onnx", "ONNX checks")  # a missing package is its own one-line error
    try:
        with OnnxRuntimeRunner(path, providers=["cpu"]) as runner:
            feed = {
                name: np.zeros(
                    [d if d is not None else (1 if i == 0 else 64) for i, d in enumerate(dims)], dtype=np.float32
                )
                for name, dims in runner.input_shapes.items()
            }
            runner.infer(feed)
    except Exception as exc:  # the runner's one-line RunnerError, or ORT's Fail / InvalidGraph when running
        first = first_line(exc.__cause__ or exc)  # ORT's own words, not the runner's wrapping of them
        raise ExportError(f"{path.name}: ONNX Runtime cannot run the converted graph ({first})") from exc
