"""TensorRT runner for serialized engines (``.engine`` / ``.plan``), TensorRT 10 and 11 Python API.

NOT RUN ON THE DEVELOPMENT MACHINES: TensorRT cannot be installed there. This module is written
against the documented name-based tensor API of TensorRT 10/11 (``Runtime.deserialize_cuda_engine``,
``ICudaEngine.num_io_tensors`` / ``get_tensor_name`` / ``get_tensor_mode`` / ``get_tensor_dtype``,
``IExecutionContext.set_input_shape`` / ``get_tensor_shape`` / ``set_tensor_address`` /
``execute_async_v3``) and checked only against a fake of that API
(``tests/runtime/test_runtime_tensorrt.py``). On the first target with TensorRT, build an engine
from an exported ONNX file and compare this runner's scores with :class:`OnnxRuntimeRunner` on the
same inputs before trusting its numbers.

Engines are specific to the GPU and the TensorRT version that built them: build them on the target
from the ONNX files the export layer writes. Device buffers come from pycuda when it is installed,
otherwise from NVIDIA's cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` in older
releases). Every import is lazy, so this module loads anywhere.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edgeiqa.errors import MissingDependencyError, require
from edgeiqa.runtime.runners.base import ModelSource, Runner, RunnerError, first_line


class _PyCudaMemory:
    """Buffers, copies and a stream through pycuda, on the device's primary context.

    The primary context is the one the CUDA runtime (and so TensorRT) uses; pushing it around every
    call makes the runner usable from any thread.
    """

    def __init__(self, driver: Any, device: int) -> None:
        self._cuda = driver
        driver.init()
        self._context = driver.Device(device).retain_primary_context()
        self.push()
        try:
            self._stream = driver.Stream()
        finally:
            self.pop()

    @property
    def stream_handle(self) -> int:
        return int(self._stream.handle)

    def push(self) -> None:
        self._context.push()

    def pop(self) -> None:
        self._cuda.Context.pop()

    def alloc(self, nbytes: int) -> tuple[Any, int]:
        allocation = self._cuda.mem_alloc(nbytes)
        return allocation, int(allocation)

    def free(self, handle: Any) -> None:
        handle.free()

    def htod(self, ptr: int, host: np.ndarray) -> None:
        self._cuda.memcpy_htod_async(ptr, host, self._stream)

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        self._cuda.memcpy_dtoh_async(host, ptr, self._stream)

    def synchronize(self) -> None:
        self._stream.synchronize()

    def close(self) -> None:
        self._stream = None
        self._context.detach()


class _CudaPythonMemory:
    """The same operations through cuda-python's runtime bindings (every call returns ``(err, ...)``)."""

    def __init__(self, cudart: Any, device: int) -> None:
        self._rt = cudart
        self._device = device
        self.push()
        self._stream = self._check(cudart.cudaStreamCreate(), "cudaStreamCreate")

    def _check(self, result: Any, call: str) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self._rt.cudaError_t.cudaSuccess:
            raise RunnerError(f"CUDA call {call} failed with {err}")
        return values[0] if len(values) == 1 else None

    @property
    def stream_handle(self) -> int:
        return int(self._stream)

    def push(self) -> None:
        # The runtime API keeps one current device per thread: select ours in the calling thread.
        self._check(self._rt.cudaSetDevice(self._device), "cudaSetDevice")

    def pop(self) -> None:
        pass

    def alloc(self, nbytes: int) -> tuple[Any, int]:
        ptr = int(self._check(self._rt.cudaMalloc(nbytes), "cudaMalloc"))
        return ptr, ptr

    def free(self, handle: Any) -> None:
        self._check(self._rt.cudaFree(handle), "cudaFree")

    def htod(self, ptr: int, host: np.ndarray) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self._rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self._rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def synchronize(self) -> None:
        self._check(self._rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def close(self) -> None:
        self._check(self._rt.cudaStreamDestroy(self._stream), "cudaStreamDestroy")


def open_cuda_memory(device: int) -> _PyCudaMemory | _CudaPythonMemory:
    """pycuda if installed, else cuda-python; a one-line error naming both when neither is."""
    try:
        import pycuda.driver as driver  # noqa: PLC0415 - optional, lazy by design
    except ImportError:
        driver = None
    if driver is not None:
        return _PyCudaMemory(driver, device)
    try:
        from cuda.bindings import runtime as cudart  # noqa: PLC0415 - cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # noqa: PLC0415 - older cuda-python
        except ImportError as exc:
            raise MissingDependencyError(
                "the TensorRT runner needs pycuda or cuda-python for GPU buffers (neither imports); "
                "install one with: pip install 'edgeiqa[tensorrt]' (cuda-python) or pip install pycuda"
            ) from exc
    return _CudaPythonMemory(cudart, device)


class TensorRTRunner(Runner):
    """Runs a serialized TensorRT engine on one GPU.

    Dynamic input shapes are set per call with ``set_input_shape`` (they must lie inside the
    engine's optimization profile); device buffers grow to the largest batch seen and are reused.
    One execution context serves every thread, behind a lock.

    Args:
        engine: the serialized engine file, or its bytes in memory.
        device: the CUDA device index.
        threads: accepted for a uniform interface; TensorRT has no host thread knob.
    """

    backend = "tensorrt"
    thread_safe = True  # through the internal lock

    def __init__(self, engine: ModelSource, device: int = 0, threads: int | None = None) -> None:
        super().__init__(engine, threads)
        self.device = device
        self._lock = threading.Lock()
        self._trt: Any = None
        self._memory: Any = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._dtypes: dict[str, np.dtype] = {}
        self._buffers: dict[str, tuple[Any, int, int]] = {}  # name -> (handle, pointer, capacity)

    def _activate(self) -> None:
        trt = require("tensorrt", "tensorrt", "the TensorRT runner")
        memory = open_cuda_memory(self.device)
        memory.push()
        try:
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            engine = self._runtime.deserialize_cuda_engine(self._model_bytes())
            if engine is None:
                raise RunnerError(
                    f"{self.label}: TensorRT cannot deserialize this engine (engines only run on the GPU model "
                    "and TensorRT version that built them: rebuild it on this device from the ONNX file)"
                )
            context = engine.create_execution_context()
        except Exception as exc:
            memory.pop()
            memory.close()
            if isinstance(exc, RunnerError):
                raise
            raise RunnerError(f"{self.label}: TensorRT failed to load the engine ({first_line(exc)})") from exc
        memory.pop()
        self._trt, self._memory, self._engine, self._context = trt, memory, engine, context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._input_names = tuple(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._output_names = tuple(n for n in names if n not in self._input_names)
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}

    def _deactivate(self) -> None:
        with self._lock:
            self._memory.push()
            try:
                for handle, _, _ in self._buffers.values():
                    self._memory.free(handle)
            finally:
                self._memory.pop()
            self._buffers.clear()
            # Context before engine before runtime: each depends on the next.
            self._context = self._engine = self._runtime = None
            self._memory.close()
            self._memory = None

    def _buffer(self, name: str, nbytes: int) -> int:
        """A device pointer for ``name`` with room for ``nbytes``, grown (never shrunk) as needed."""
        handle, ptr, capacity = self._buffers.get(name, (None, 0, 0))
        if capacity < nbytes:
            if handle is not None:
                self._memory.free(handle)
            handle, ptr = self._memory.alloc(nbytes)
            self._buffers[name] = (handle, ptr, nbytes)
        return ptr

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            self._memory.push()
            try:
                return self._infer_locked(feed)
            finally:
                self._memory.pop()

    def _infer_locked(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        context, memory = self._context, self._memory
        # Host inputs stay referenced here until the stream is synchronised.
        hosts = {n: np.ascontiguousarray(feed[n], dtype=self._dtypes[n]) for n in self._input_names}
        for name, host in hosts.items():
            if not context.set_input_shape(name, host.shape):
                raise RunnerError(
                    f"{self.name}: input {name!r} of shape {host.shape} is outside the engine's optimization "
                    "profile (rebuild the engine with a larger max batch/size, or lower --batch)"
                )
            ptr = self._buffer(name, max(host.nbytes, 1))
            memory.htod(ptr, host)
            context.set_tensor_address(name, ptr)
        outputs = {}
        for name in self._output_names:
            outputs[name] = np.empty(tuple(context.get_tensor_shape(name)), dtype=self._dtypes[name])
            context.set_tensor_address(name, self._buffer(name, max(outputs[name].nbytes, 1)))
        if not context.execute_async_v3(memory.stream_handle):
            raise RunnerError(f"{self.name}: execute_async_v3 failed (see TensorRT's log above)")
        for name, host in outputs.items():
            memory.dtoh(host, self._buffers[name][1])
        memory.synchronize()
        return outputs

    def info(self) -> dict[str, Any]:
        data = super().info()
        data["device"] = self.device
        if self._trt is not None:
            data["tensorrt_version"] = getattr(self._trt, "__version__", None)
            data["cuda_bindings"] = "pycuda" if isinstance(self._memory, _PyCudaMemory) else "cuda-python"
        return data
