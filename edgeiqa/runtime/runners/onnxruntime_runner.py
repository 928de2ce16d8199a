"""ONNX Runtime runner: CPU everywhere, CUDA / Core ML execution providers where the wheel has them.

The default provider preference is CUDA, then Core ML, then CPU, filtered by what the installed
wheel offers. The TensorRT execution provider is used only when asked for (``providers=["tensorrt",
...]``): it builds an engine when the session is created, which takes minutes on a Jetson, and an
engine built by :class:`~edgeiqa.runtime.runners.TensorRTRunner` from the same ONNX is the
documented path. ``InferenceSession.run`` is thread-safe, so one session serves every thread.

The model may be a file or in memory (serialized bytes or an ``onnx.ModelProto``): the export layer
runs the graphs it is still editing (sensitivity variants, the smoke run) through this runner too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeiqa.errors import require
from edgeiqa.runtime.runners.base import ModelSource, Runner, RunnerError, first_line

_SHORT_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
DEFAULT_PREFERENCE = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "CPUExecutionProvider")
# ORT type strings of the inputs we may have to cast the feed to (e.g. an FP16 model with FP16 I/O).
_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def _import_ort() -> Any:
    return require("onnxruntime", "onnx", "the ONNX Runtime runner")


def resolve_providers(providers: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """Full provider names to request, in order; unknown or unavailable explicit ones are an error."""
    if providers is None:
        return [p for p in DEFAULT_PREFERENCE if p in available] or ["CPUExecutionProvider"]
    chosen = []
    for provider in providers:
        full = _SHORT_NAMES.get(provider.lower(), provider)
        if full not in available:
            raise RunnerError(
                f"ONNX Runtime execution provider {provider!r} is not available in this onnxruntime build "
                f"(available: {', '.join(available)})"
            )
        chosen.append(full)
    return chosen


class OnnxRuntimeRunner(Runner):
    """Runs an ``.onnx`` file with ONNX Runtime.

    Args:
        model: the ONNX file, or the model in memory (bytes or an ``onnx.ModelProto``).
        providers: execution providers in preference order (full names or ``cpu``/``cuda``/
            ``tensorrt``/``coreml``); None picks CUDA > Core ML > CPU among those available.
        threads: ``intra_op_num_threads``, threads for one operator; None lets ONNX Runtime use every core.
        allow_spinning: whether idle intra-op threads busy-wait for the next operator. ONNX Runtime
            spins by default, which steals cores from the predictor's decode threads on a small
            device; False trades a little latency for that CPU. None keeps the default.
        log_severity: ONNX Runtime's ``log_severity_level`` (3: errors only, for edited graphs whose
            unused initializers it would warn about); None keeps its default.
    """

    backend = "onnxruntime"
    thread_safe = True

    def __init__(
        self,
        model: ModelSource,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        allow_spinning: bool | None = None,
        log_severity: int | None = None,
    ) -> None:
        super().__init__(model, threads)
        self.providers = list(providers) if providers is not None else None
        self.allow_spinning = allow_spinning
        self.log_severity = log_severity
        self._session: Any = None
        self._input_types: dict[str, Any] = {}

    def _activate(self) -> None:
        ort = _import_ort()
        providers = resolve_providers(self.providers, ort.get_available_providers())
        options = ort.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        if self.allow_spinning is not None:
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.allow_spinning else "0")
        if self.log_severity is not None:
            options.log_severity_level = int(self.log_severity)
        source = str(self.path) if self.path is not None else self._model_bytes()
        try:
            self._session = ort.InferenceSession(source, sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
            raise RunnerError(f"{self.label}: ONNX Runtime cannot load this model ({first_line(exc)})") from exc
        inputs = self._session.get_inputs()
        self._input_names = tuple(i.name for i in inputs)
        self._input_types = {i.name: _ORT_TYPES.get(i.type) for i in inputs}
        # ORT reports a dynamic dim as its symbolic name (str) or None; fixed dims as ints.
        self._input_shapes = {
            i.name: tuple(d if isinstance(d, int) and d > 0 else None for d in (i.shape or ())) for i in inputs
        }
        self._output_names = tuple(o.name for o in self._session.get_outputs())

    def _deactivate(self) -> None:
        self._session = None

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cast = {
            name: arr if self._input_types[name] in (None, arr.dtype) else arr.astype(self._input_types[name])
            for name, arr in feed.items()
        }
        outputs = self._session.run(list(self._output_names), cast)
        return dict(zip(self._output_names, outputs))

    def info(self) -> dict[str, Any]:
        data = super().info()
        if self._session is not None:
            data["providers"] = list(self._session.get_providers())
        data["allow_spinning"] = self.allow_spinning
        return data
