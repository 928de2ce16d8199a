"""The export formats: ONE table of named records, looked up by name.

Each :class:`ExportFormat` says which precisions it offers, which of them need INT8 calibration
images, which runtime backend the parity gate runs it with, and which function exports it
(``"module:function"``, imported only when used so this table loads anywhere). Where that backend can
run (platform, package) is the backend's own record (:mod:`edgeiqa.runtime.runners.backends`), not
repeated here. Pure Python: no torch, onnx or backend import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.runners import Backend, get_backend

# Which parity rule a precision answers to (see :class:`edgeiqa.export.options.Tolerances`).
PRECISION_CLASS = {
    "fp32": "fp32",
    "fp16": "fp16",
    "int8": "int8",
    "int8-trt": "int8",
    "int8-qdq": "int8",
    "int8-qat": "int8",
    "int8-weights": "int8",
}
# The precision of a quantization-aware (QAT) student: its own trained Q/DQ, exported as it is (no INT8
# calibration images: the ranges are in the checkpoint), TensorRT explicit quantization like int8-trt.
QAT_PRECISION = "int8-qat"


@dataclass(frozen=True)
class ExportFormat:
    """One artifact format.

    Attributes:
        name: the format name (also the manifest's ``format``).
        title: the runtime's name for people (``Core ML``).
        suffix: the artifact's file (or folder) suffix.
        precisions: the precisions it can be exported in.
        calibrated: the precisions among them that need INT8 calibration images.
        backend: the :mod:`edgeiqa.runtime.runners` backend that runs it for the parity gate.
        exporter: ``"module:function"`` exporting it (see :mod:`edgeiqa.export.exporter`).
        qat_precisions: the precisions a fake-quantized (QAT) source exports in; :data:`QAT_PRECISION`
            takes only such a source, the others only a float one.
        linted: the precisions whose artifact NVIDIA Polygraphy lints at export (the ONNX graphs a
            TensorRT engine is built from; see :mod:`edgeiqa.export.polygraphy_lint`).
    """

    name: str
    title: str
    suffix: str
    precisions: tuple[str, ...]
    calibrated: tuple[str, ...]
    backend: str
    exporter: str
    qat_precisions: tuple[str, ...] = ()
    linted: tuple[str, ...] = ()

    def check_source(self, precision: str, fake_quantized: bool, source: str) -> None:
        """Refuse (one line) a QAT source for a float precision, or a float source for ``int8-qat``."""
        if fake_quantized and precision not in self.qat_precisions:
            allowed = f"{self.name} {', '.join(self.qat_precisions)}" if self.qat_precisions else "onnx int8-qat"
            raise ConfigError(
                f"{source} is fake-quantized (a QAT student): it exports as {allowed}, not "
                f"{self.name} {precision}; export {precision} from the float student (student/final)"
            )
        if not fake_quantized and precision == QAT_PRECISION:
            raise ConfigError(
                f"{self.name} {QAT_PRECISION} exports a quantization-aware student and {source} is "
                "not one: run `edgeiqa distill --stages qat` (student.qat.enabled: true) and export "
                "student/qat_final, or export int8-trt (post-training) from this one"
            )

    def needs_calibration(self, precision: str) -> bool:
        """Whether ``precision`` needs INT8 calibration images."""
        self.check_precision(precision)
        return precision in self.calibrated

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise ConfigError(
                f"format {self.name!r} has no precision {precision!r}; choose one of {', '.join(self.precisions)}"
            )

    @property
    def runtime_backend(self) -> Backend:
        """The record of the backend the parity gate runs it with."""
        return get_backend(self.backend)

    @property
    def runs_here(self) -> bool:
        """Whether the parity gate can run this format on this machine (platform and backend present)."""
        return self.runtime_backend.runs_here

    def not_here_reason(self) -> str:
        """Why :attr:`runs_here` is False, in one line (for the manifest's parity record)."""
        return self.runtime_backend.not_here_reason()

    def artifact_name(self, model_name: str, precision: str) -> str:
        """``test_eqcnet_int8_trt.onnx``: model, precision (``-`` -> ``_``), suffix."""
        return f"{model_name}_{precision.replace('-', '_')}{self.suffix}"

    def load_exporter(self) -> Callable[..., Any]:
        module_name, function = self.exporter.split(":")
        return getattr(importlib.import_module(module_name), function)


FORMATS: dict[str, ExportFormat] = {
    fmt.name: fmt
    for fmt in (
        ExportFormat(
            name="onnx",
            title="ONNX Runtime",
            suffix=".onnx",
            precisions=("fp32", "fp16", "int8", "int8-trt", QAT_PRECISION),
            calibrated=("int8", "int8-trt"),
            backend="onnxruntime",
            exporter="edgeiqa.export.onnx_export:export_onnx",
            qat_precisions=(QAT_PRECISION,),
            linted=("fp16", "int8-trt", QAT_PRECISION),
        ),
        ExportFormat(
            name="openvino",
            title="OpenVINO",
            suffix=".xml",
            precisions=("fp32", "fp16", "int8", "int8-qdq"),
            calibrated=("int8", "int8-qdq"),
            backend="openvino",
            exporter="edgeiqa.export.openvino_export:export_openvino",
        ),
        ExportFormat(
            name="coreml",
            title="Core ML",
            suffix=".mlpackage",
            precisions=("fp32", "fp16", "int8-weights"),
            calibrated=(),
            backend="coreml",
            exporter="edgeiqa.export.coreml_export:export_coreml",
        ),
        ExportFormat(
            name="ort",
            title="ONNX Runtime Mobile",
            suffix=".ort",
            precisions=("fp32", "fp16", "int8"),
            calibrated=("int8",),
            backend="onnxruntime",
            exporter="edgeiqa.export.ort_mobile:export_ort",
        ),
        ExportFormat(
            name="litert",
            title="LiteRT",
            suffix=".tflite",
            precisions=("fp32", "fp16", "int8"),
            calibrated=("int8",),
            backend="litert",
            exporter="edgeiqa.export.litert_export:export_litert",
        ),
        ExportFormat(
            name="tensorrt",
            title="TensorRT",
            suffix=".engine",
            precisions=("fp16", "int8"),
            calibrated=("int8",),
            backend="tensorrt",
            exporter="edgeiqa.export.tensorrt:export_tensorrt",
            qat_precisions=("int8",),
        ),
    )
}


def get_format(name: str) -> ExportFormat:
    """The format record named ``name``; an unknown name lists the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown export format {name!r}; known formats: {', '.join(FORMATS)}") from None


def precision_class(precision: str) -> str:
    """``fp32``, ``fp16`` or ``int8``: which parity tolerance applies."""
    try:
        return PRECISION_CLASS[precision]
    except KeyError:
        raise ConfigError(f"unknown precision {precision!r}; known: {', '.join(PRECISION_CLASS)}") from None
