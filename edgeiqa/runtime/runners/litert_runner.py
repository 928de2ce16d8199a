"""LiteRT (TensorFlow Lite) runner for ``.tflite`` files: ``ai-edge-litert``, else ``tflite-runtime``.

Torch-free: it imports only the interpreter module, when activated. XNNPACK is LiteRT's default CPU
delegate: the interpreter applies it at ``allocate_tensors`` unless the op resolver says
``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` (``xnnpack=False``); :meth:`info` reports how many
``DELEGATE`` nodes the plan holds, which is how a run shows it really used XNNPACK.

Inputs are matched by the signature's names (``image``, ``fragments``: litert-torch keeps them);
a model without a signature is matched by tensor name with the ``serving_default_`` prefix removed.
The runtime feeds NCHW float32; an input whose shape ends in 3 channels (NHWC, as onnx2tf or
``to_channel_last_io`` write) gets the feed transposed, an int8/uint8 input gets it quantized with the
tensor's own scale and zero point, and an integer output is dequantized. A dynamic batch is resized
to each feed's batch; a batch fixed at 1 is run one sample at a time.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from edgeiqa.errors import MissingDependencyError
from edgeiqa.runtime.runners.base import ModelSource, Runner, RunnerError, first_line

INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")
_PREFIX = "serving_default_"


def import_interpreter() -> Any:
    """The first LiteRT interpreter module that imports; a one-line error naming the extra otherwise."""
    errors = []
    for name in INTERPRETER_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name.split('.')[0]}: {exc}")
    raise MissingDependencyError(
        f"the LiteRT runner needs the 'ai-edge-litert' (or 'tflite-runtime') package ({'; '.join(errors)}); "
        "install it with: pip install 'edgeiqa[litert]'"
    )


class _Port:
    """One model input or output: its tensor index, layout and quantization."""

    def __init__(self, details: dict[str, Any]) -> None:
        self.index = int(details["index"])
        shape = [int(d) for d in details.get("shape_signature", details["shape"])]
        self.shape = shape
        self.dynamic_batch = bool(shape) and shape[0] == -1
        self.nhwc = len(shape) == 4 and shape[-1] == 3 and shape[1] != 3
        self.dtype = np.dtype(details["dtype"])
        scale, zero = details.get("quantization", (0.0, 0))
        self.quantized = self.dtype.kind in "iu" and float(scale) > 0
        self.scale, self.zero = float(scale), int(zero)

    def to_model(self, array: np.ndarray) -> np.ndarray:
        if self.nhwc:
            array = array.transpose(0, 2, 3, 1)
        if self.quantized:
            info = np.iinfo(self.dtype)
            array = np.clip(np.rint(array / self.scale + self.zero), info.min, info.max)
        return np.ascontiguousarray(array, dtype=self.dtype)

    def from_model(self, array: np.ndarray) -> np.ndarray:
        if self.quantized:
            return ((array.astype(np.float32) - self.zero) * self.scale).astype(np.float32)
        return np.array(array)  # a copy: the interpreter reuses its buffers on the next invoke


class LiteRTRunner(Runner):
    """Runs a ``.tflite`` model with the LiteRT interpreter.

    Args:
        model: the ``.tflite`` file, or its bytes in memory.
        threads: the interpreter's (and XNNPACK's) ``num_threads``; None lets LiteRT choose.
        xnnpack: apply the default XNNPACK delegate (True, LiteRT's default); False runs the builtin kernels.
    """

    backend = "litert"
    thread_safe = False  # one interpreter owns its tensors: calls are serialised by the predictor

    def __init__(self, model: ModelSource, threads: int | None = None, xnnpack: bool = True) -> None:
        super().__init__(model, threads)
        self.xnnpack = bool(xnnpack)
        self._interpreter: Any = None
        self._inputs: dict[str, _Port] = {}
        self._outputs: dict[str, _Port] = {}
        self._batch: int | None = None
        self._package = ""

    def _activate(self) -> None:
        module = import_interpreter()
        resolver = (
            module.OpResolverType.AUTO if self.xnnpack else module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        try:
            where = {"model_path": str(self.path)} if self.path is not None else {"model_content": self._model_bytes()}
            interpreter = module.Interpreter(**where, num_threads=self.threads, experimental_op_resolver_type=resolver)
            interpreter.allocate_tensors()
        except Exception as exc:  # ValueError/RuntimeError from the C++ wrapper
            raise RunnerError(f"{self.label}: LiteRT cannot load this model ({first_line(exc)})") from exc
        self._inputs, self._outputs = _ports(interpreter)
        self._interpreter = interpreter
        self._package = _package_version(module.__name__.split(".")[0])
        self._input_names = tuple(self._inputs)
        self._output_names = tuple(self._outputs)
        self._batch = None

    def _deactivate(self) -> None:
        self._interpreter = None
        self._inputs, self._outputs = {}, {}

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = len(next(iter(feed.values())))
        if all(p.dynamic_batch for p in self._inputs.values()) or batch == 1:
            return self._run(feed, batch)
        parts = [self._run({n: a[i : i + 1] for n, a in feed.items()}, 1) for i in range(batch)]
        return {n: np.concatenate([p[n] for p in parts], axis=0) for n in self._output_names}

    def _run(self, feed: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
        interpreter = self._interpreter
        try:
            if batch != self._batch and any(p.dynamic_batch for p in self._inputs.values()):
                for name, port in self._inputs.items():
                    shape = port.to_model(feed[name][:0]).shape  # the model's layout, at this batch
                    interpreter.resize_tensor_input(port.index, [batch, *shape[1:]])
                interpreter.allocate_tensors()
                self._batch = batch
            for name, port in self._inputs.items():
                interpreter.set_tensor(port.index, port.to_model(feed[name]))
            interpreter.invoke()
        except (ValueError, RuntimeError) as exc:
            shapes = {n: list(a.shape) for n, a in feed.items()}
            raise RunnerError(f"{self.name}: LiteRT cannot run inputs {shapes} ({first_line(exc)})") from exc
        return {n: p.from_model(interpreter.get_tensor(p.index)) for n, p in self._outputs.items()}

    def info(self) -> dict[str, Any]:
        data = super().info()
        data["xnnpack"] = self.xnnpack
        if self._interpreter is not None:
            data["interpreter"] = self._package
            data["delegate_nodes"] = _delegate_nodes(self._interpreter)
            data["inputs"] = {
                n: {
                    "shape": p.shape,
                    "dtype": p.dtype.name,
                    "layout": "NHWC" if p.nhwc else "NCHW",
                    "quantized": p.quantized,
                }
                for n, p in self._inputs.items()
            }
        return data


def _ports(interpreter: Any) -> tuple[dict[str, _Port], dict[str, _Port]]:
    """Inputs and outputs by name: the first signature's names, else tensor names without the prefix."""
    signatures = interpreter.get_signature_list()
    if signatures:
        runner = interpreter.get_signature_runner(next(iter(signatures)))
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        # Signature input order is alphabetical; the model's own input order is the stable one.
        order = {d["index"]: i for i, d in enumerate(interpreter.get_input_details())}
        ordered = sorted(inputs.items(), key=lambda item: order.get(item[1]["index"], 0))
        return ({n: _Port(d) for n, d in ordered}, {n: _Port(d) for n, d in outputs.items()})
    return (
        {_short(d["name"]): _Port(d) for d in interpreter.get_input_details()},
        {_short(d["name"]): _Port(d) for d in interpreter.get_output_details()},
    )


def _short(name: str) -> str:
    name = name.removeprefix(_PREFIX)
    return name.split(":")[0]


def _delegate_nodes(interpreter: Any) -> int | None:
    """How many ``DELEGATE`` nodes (XNNPACK partitions) the execution plan has; None if not readable."""
    try:
        return sum(1 for op in interpreter._get_ops_details() if op.get("op_name") == "DELEGATE")
    except Exception:  # a private API: tflite-runtime builds may lack it
        return None


def _package_version(module: str) -> str:
    from importlib import metadata

    dist = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}.get(module, module)
    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return dist
