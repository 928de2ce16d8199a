"""TensorRT runner: clear errors when its libraries are missing, and its call sequence on a fake API.

TensorRT cannot be installed on the development machines. The fake below implements the
documented TensorRT 10 names the runner uses and refuses every other name, read or written
(tests/fake_tensorrt_api.py), so a misspelt call fails; and a
cuda-python runtime whose "device memory" is host memory, so buffer sizes, copies and addresses
are really exercised. On a machine with TensorRT, build an engine from the tiny ONNX model and
compare against ONNX Runtime instead.
"""

from __future__ import annotations

import ctypes
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from fake_tensorrt_api import StrictFake, allowed_names
from runtime_helpers import tiny_reference

from edgeiqa.errors import MissingDependencyError
from edgeiqa.runtime.runners import RunnerError, TensorRTRunner

ENGINE_BYTES = b"fake-serialized-engine"
PROFILE_MAX_BATCH = 4


class _FakeContext(StrictFake):
    _api, _allowed = "IExecutionContext", allowed_names("IExecutionContext")

    def __init__(self, engine: _FakeEngine) -> None:
        self._engine, self._shapes, self._addresses = engine, {}, {}

    def set_input_shape(self, name: str, shape: tuple) -> bool:
        if shape[0] > PROFILE_MAX_BATCH:
            return False
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        return (self._shapes["image"][0],) if name == "score" else self._shapes[name]

    def set_tensor_address(self, name: str, ptr: int) -> None:
        assert isinstance(ptr, int)
        self._addresses[name] = ptr

    def execute_async_v3(self, stream_handle: int) -> bool:
        assert isinstance(stream_handle, int)
        feed = {n: _view(self._addresses[n], self._shapes[n]).copy() for n in ("image", "fragments")}
        _view(self._addresses["score"], self.get_tensor_shape("score"))[:] = tiny_reference(feed)
        self._engine._executions += 1
        return True


class _FakeEngine(StrictFake):
    _api, _allowed = "ICudaEngine", allowed_names("ICudaEngine")
    _names = ("image", "fragments", "score")

    def __init__(self) -> None:
        self._executions = 0

    @property
    def num_io_tensors(self) -> int:
        return len(self._names)

    def get_tensor_name(self, index: int) -> str:
        return self._names[index]

    def get_tensor_mode(self, name: str) -> str:
        return "OUTPUT" if name == "score" else "INPUT"

    def get_tensor_dtype(self, name: str) -> str:
        return "FLOAT"

    def create_execution_context(self) -> _FakeContext:
        return _FakeContext(self)


def _view(ptr: int, shape: tuple) -> np.ndarray:
    count = int(np.prod(shape))
    return np.ctypeslib.as_array((ctypes.c_float * count).from_address(ptr)).reshape(shape)


def _fake_tensorrt() -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.fake"
    trt.engines = []

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            self.level = level

    class Runtime(StrictFake):
        _api, _allowed = "Runtime", allowed_names("Runtime")

        def __init__(self, logger: Logger) -> None:
            self._logger = logger

        def deserialize_cuda_engine(self, data: bytes):
            if data != ENGINE_BYTES:
                return None
            trt.engines.append(_FakeEngine())
            return trt.engines[-1]

    trt.Logger, trt.Runtime = Logger, Runtime
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.nptype = lambda dtype: {"FLOAT": np.float32}[dtype]
    return trt


def _fake_cudart() -> types.ModuleType:
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.cudaError_t = types.SimpleNamespace(cudaSuccess=0)
    rt.cudaMemcpyKind = types.SimpleNamespace(cudaMemcpyHostToDevice="H2D", cudaMemcpyDeviceToHost="D2H")
    rt.allocations = {}  # pointer -> backing buffer ("device" memory)
    rt.calls = []

    def inside(ptr: int, nbytes: int) -> bool:
        return any(base <= ptr and ptr + nbytes <= base + buf.nbytes for base, buf in rt.allocations.items())

    def cudaMalloc(nbytes):
        buf = np.zeros(nbytes, np.uint8)
        rt.allocations[buf.ctypes.data] = buf
        return 0, buf.ctypes.data

    def cudaMemcpyAsync(dst, src, nbytes, kind, stream):
        assert inside(dst if kind == "H2D" else src, nbytes), "copy outside a device allocation"
        ctypes.memmove(dst, src, nbytes)
        rt.calls.append(kind)
        return (0,)

    rt.cudaMalloc, rt.cudaMemcpyAsync = cudaMalloc, cudaMemcpyAsync
    rt.cudaFree = lambda ptr: (rt.allocations.pop(ptr) is not None and 0,)
    rt.cudaSetDevice = lambda device: (0,)
    rt.cudaStreamCreate = lambda: (0, 7)
    rt.cudaStreamSynchronize = lambda stream: (0,)
    rt.cudaStreamDestroy = lambda stream: (0,)
    return rt


@pytest.fixture
def engine_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.engine"
    path.write_bytes(ENGINE_BYTES)
    return path


@pytest.fixture
def fake_tensorrt(monkeypatch) -> tuple[types.ModuleType, types.ModuleType]:
    trt, rt = _fake_tensorrt(), _fake_cudart()
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    cuda.bindings, bindings.runtime = bindings, rt
    for name, module in {"tensorrt": trt, "cuda": cuda, "cuda.bindings": bindings, "cuda.bindings.runtime": rt}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "pycuda", None)  # force the cuda-python path
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    return trt, rt


def _feed(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.normal(size=(batch, 3, 32, 32)).astype(np.float32),
        "fragments": rng.normal(size=(batch, 3, 16, 16)).astype(np.float32),
    }


def test_missing_tensorrt_names_the_extra(engine_file: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(
        MissingDependencyError,
        match=(
            r"^the TensorRT runner needs the 'tensorrt' package \(.*\); "
            r"install it with: pip install 'edgeiqa\[tensorrt\]'$"
        ),
    ):
        with TensorRTRunner(engine_file):
            pass


def test_missing_cuda_bindings_names_pycuda_and_cuda_python(engine_file: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt())
    for name in ("pycuda", "pycuda.driver", "cuda", "cuda.bindings", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=r"needs pycuda or cuda-python for GPU buffers"):
        TensorRTRunner(engine_file).activate()


def test_inference_through_the_fake_api_matches_the_reference(engine_file: Path, fake_tensorrt) -> None:
    trt, rt = fake_tensorrt
    with TensorRTRunner(engine_file) as runner:
        assert runner.input_names == ("image", "fragments") and runner.output_names == ("score",)
        for batch, seed in [(2, 0), (4, 1), (1, 2)]:  # grows the buffers, then reuses them
            feed = _feed(batch, seed)
            np.testing.assert_allclose(runner.infer(feed)["score"], tiny_reference(feed), rtol=1e-6, atol=1e-6)
        assert len(rt.allocations) == 3  # one buffer per tensor, reallocated only when it grew
        assert runner.info()["cuda_bindings"] == "cuda-python" and runner.info()["tensorrt_version"] == "10.fake"
        with pytest.raises(
            RunnerError, match=r"input 'image' of shape \(5, 3, 32, 32\) is outside the engine's optimization profile"
        ):
            runner.infer(_feed(5))
    assert trt.engines[0]._executions == 3
    assert rt.allocations == {}  # everything freed on exit
    assert rt.calls.count("H2D") == 6 and rt.calls.count("D2H") == 3


def test_an_engine_from_another_device_is_a_clear_error(tmp_path: Path, fake_tensorrt) -> None:
    path = tmp_path / "other.engine"
    path.write_bytes(b"built elsewhere")
    with pytest.raises(
        RunnerError, match=r"other\.engine: TensorRT cannot deserialize this engine .*rebuild it on this device"
    ):
        TensorRTRunner(path).activate()


def test_the_fake_engine_refuses_names_the_real_api_does_not_have(engine_file: Path, fake_tensorrt) -> None:
    trt, _ = fake_tensorrt
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(ENGINE_BYTES)
    context = engine.create_execution_context()
    with pytest.raises(AttributeError, match="IExecutionContext has no attribute 'execute_async_v2'"):
        context.execute_async_v2([], 0)  # the binding-index API TensorRT 10 removed
    with pytest.raises(AttributeError, match="ICudaEngine has no attribute 'num_bindings'"):
        _ = engine.num_bindings
    with pytest.raises(AttributeError, match="IExecutionContext has no attribute 'active_profile'"):
        context.active_profile = 0  # a misspelt setter would silently do nothing on a plain object
    with pytest.raises(AttributeError, match="Runtime has no attribute 'deserialize_engine'"):
        trt.Runtime(None).deserialize_engine(ENGINE_BYTES)
