"""OpenVINO runner for IR (``.xml`` + ``.bin``) or ONNX files (OpenVINO reads ONNX directly).

On CPUs with bf16 support (the development machines among them), OpenVINO executes an "FP32"
model in bf16 unless ``INFERENCE_PRECISION_HINT`` says otherwise, and nothing in the outputs' dtype
shows it. So this runner always passes the hint it was given (``f32`` by default) and reads back
the precision the compiled model actually uses (:attr:`OpenVINORunner.precision`), so a benchmark
reports what ran, not what was asked for. ``inference_precision=None`` leaves the device default in
place: still recorded.

The model may be a file or an ``openvino.Model`` in memory (the export layer's FP32 reference and
NNCF's quantized model run through this runner before they are saved).

A compiled model's default infer request is not thread-safe; each concurrent call takes its own
request from a small pool, so one runner can serve many threads.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np

from edgeiqa.errors import require
from edgeiqa.runtime.runners.base import ModelSource, Runner, RunnerError

PRECISIONS = ("f32", "bf16", "f16")


def _import_openvino() -> Any:
    return require("openvino", "openvino", "the OpenVINO runner")


class OpenVINORunner(Runner):
    """Runs an OpenVINO IR or ONNX model on an OpenVINO device.

    Args:
        model: ``model.xml`` (its ``.bin`` beside it), ``model.onnx``, or an ``openvino.Model`` in memory.
        device: OpenVINO device name (``CPU``, ``GPU``, ``NPU``, ``AUTO``).
        inference_precision: ``f32``, ``bf16``, ``f16`` or None for the device default.
        threads: ``INFERENCE_NUM_THREADS``; None lets OpenVINO decide.
    """

    backend = "openvino"
    thread_safe = True

    def __init__(
        self,
        model: ModelSource,
        device: str = "CPU",
        inference_precision: str | None = "f32",
        threads: int | None = None,
    ) -> None:
        super().__init__(model, threads)
        if inference_precision is not None and inference_precision not in PRECISIONS:
            raise RunnerError(
                f"OpenVINO inference_precision {inference_precision!r} is not one of {', '.join(PRECISIONS)} or None"
            )
        self.device = device
        self.inference_precision = inference_precision
        self.precision: str | None = None  # what the compiled model reports, set on activation
        self._compiled: Any = None
        self._ports: list[tuple[str, Any]] = []
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def _config(self) -> dict[str, str]:
        config = {}
        if self.inference_precision is not None:
            config["INFERENCE_PRECISION_HINT"] = self.inference_precision
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = str(self.threads)
        return config

    def _activate(self) -> None:
        ov = _import_openvino()
        if self.path is not None and self.path.suffix == ".xml" and not self.path.with_suffix(".bin").is_file():
            raise RunnerError(
                f"{self.path}: its weights file {self.path.with_suffix('.bin').name} is not beside "
                "it (an OpenVINO IR is the .xml and its .bin; copy both)"
            )
        core = ov.Core()
        try:
            model = core.read_model(str(self.path)) if self.path is not None else self.model
            self._compiled = core.compile_model(model, self.device, self._config())
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long texts
            raise RunnerError(
                f"{self.label}: OpenVINO cannot compile this model for {self.device} ({openvino_reason(exc)})"
            ) from exc
        self.precision = _read_precision(self._compiled)
        self._input_names = tuple(port.get_any_name() for port in self._compiled.inputs)
        self._input_shapes = {port.get_any_name(): _dims(port) for port in self._compiled.inputs}
        self._ports = [(_port_name(port, i), port) for i, port in enumerate(self._compiled.outputs)]
        self._output_names = tuple(name for name, _ in self._ports)

    def _deactivate(self) -> None:
        with self._lock:
            self._idle.clear()
        self._compiled = None
        self._ports = []

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            request = self._idle.pop() if self._idle else self._compiled.create_infer_request()
        try:
            result = request.infer(feed)
            # The request reuses its output tensors on the next call: copy before handing them out.
            return {name: np.array(result[port], copy=True) for name, port in self._ports}
        finally:
            with self._lock:
                self._idle.append(request)

    @property
    def precision_used(self) -> str | None:
        """The precision the compiled model computes in (``bf16`` where the hint was left to the device)."""
        return self.precision

    def info(self) -> dict[str, Any]:
        data = super().info()
        data.update(device=self.device, requested_precision=self.inference_precision, precision=self.precision)
        return data


def openvino_reason(exc: BaseException) -> str:
    """OpenVINO's message on one line without its source locations: its first line is only
    ``Exception from src/inference/src/cpp/core.cpp:84:``; the cause ("bin file cannot be found") is last."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    kept = [line for line in lines if not re.match(r"^(Exception from|Check '.*' failed at) \S+:\d+:?$", line)]
    return "; ".join(kept or lines) or type(exc).__name__


def _dims(port: Any) -> tuple[int | None, ...]:
    """A port's partial shape as ints (static dims) and None (dynamic ones); () when it has no rank."""
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic:
        return ()
    return tuple(dim.get_length() if dim.is_static else None for dim in shape)


def _read_precision(compiled: Any) -> str | None:
    """The element type the compiled model computes in, as OpenVINO's short name (``f32``, ``bf16``)."""
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except Exception:  # some devices (e.g. AUTO) do not expose it; say so rather than guess
        return None
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def _port_name(port: Any, index: int) -> str:
    # After NNCF INT8 a port carries several names and get_any_name() may return an internal one
    # ("/calibration/Div_output_0"); the graph's own output name "score" is the one callers ask for.
    try:
        names = port.get_names()
    except RuntimeError:
        names = set()
    if "score" in names:
        return "score"
    try:
        return port.get_any_name()
    except RuntimeError:  # an output without a tensor name
        return f"output{index}"
