"""Export layer: a trained student -> device artifacts (ONNX, OpenVINO, Core ML, TensorRT), each gated.

``export_artifact(source, "onnx", "int8", out_dir, calib=images, val=images)`` exports, runs the
parity gate against the torch model, and writes the manifest beside the artifact. The formats are
one table (:data:`FORMATS`); TensorRT engines are built on the target with :func:`build_engine`.

Names are imported on first use (PEP 562), so ``import edgeiqa.export`` pulls in neither torch nor
any converter: a Jetson building an engine from an ONNX file needs only onnx and tensorrt.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FORMATS": "edgeiqa.export.formats",
    "ExportFormat": "edgeiqa.export.formats",
    "get_format": "edgeiqa.export.formats",
    "ExportOptions": "edgeiqa.export.options",
    "Int8Settings": "edgeiqa.export.options",
    "Tolerances": "edgeiqa.export.options",
    "ExportError": "edgeiqa.export.errors",
    "ParityError": "edgeiqa.export.errors",
    "ImageSet": "edgeiqa.export.images",
    "load_image_set": "edgeiqa.export.images",
    "ExportSource": "edgeiqa.export.source",
    "load_export_source": "edgeiqa.export.source",
    "ExportResult": "edgeiqa.export.exporter",
    "export_artifact": "edgeiqa.export.exporter",
    "verify_artifact": "edgeiqa.export.exporter",
    "EnginePlan": "edgeiqa.export.tensorrt_plan",
    "ProfileShapes": "edgeiqa.export.tensorrt_plan",
    "plan_engine": "edgeiqa.export.tensorrt_plan",
    "build_engine": "edgeiqa.export.tensorrt",
    "plan_for_onnx": "edgeiqa.export.tensorrt",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgeiqa.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
