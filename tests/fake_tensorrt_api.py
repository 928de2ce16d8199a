"""The TensorRT 10/11 Python API names edgeiqa calls, and a base that makes a fake refuse every other name.

TensorRT cannot be installed on the development machines, so the engine builder (export/tensorrt.py)
and the runner (runtime/runners/tensorrt_runner.py) are tested against fakes. A fake that accepts any
name lets a misspelt call pass; these fakes accept only the names below, each listed in NVIDIA's
TensorRT Python API reference (docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/, pages
Core/Builder, Core/BuilderConfig, Core/OptimizationProfile, Core/Engine, Core/ExecutionContext,
Core/Runtime, Parsers/Onnx) for TensorRT 10 and 11. ``int8_calibrator`` and ``set_calibration_profile``
are TensorRT 10 only (deprecated in 10.1, removed in 11): the builder uses them on the TensorRT 10
implicit-INT8 path alone, and the TensorRT 11 fake leaves them out.
"""

from __future__ import annotations

from typing import Any

TRT_API: dict[str, frozenset[str]] = {
    "Builder": frozenset(
        {"create_network", "create_builder_config", "create_optimization_profile", "build_serialized_network"}
    ),
    "IBuilderConfig": frozenset(
        {"set_memory_pool_limit", "set_flag", "add_optimization_profile", "set_calibration_profile", "int8_calibrator"}
    ),
    "IOptimizationProfile": frozenset({"set_shape"}),
    "OnnxParser": frozenset({"parse_from_file", "num_errors", "get_error"}),
    "Runtime": frozenset({"deserialize_cuda_engine"}),
    "ICudaEngine": frozenset(
        {"num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_dtype", "create_execution_context"}
    ),
    "IExecutionContext": frozenset({"set_input_shape", "get_tensor_shape", "set_tensor_address", "execute_async_v3"}),
}
REMOVED_IN_11 = frozenset({"int8_calibrator", "set_calibration_profile"})


def _refuse(api: str, name: str) -> AttributeError:
    return AttributeError(f"TensorRT's {api} has no attribute {name!r} (not in its documented Python API)")


class StrictFake:
    """A fake TensorRT object: public names outside ``TRT_API[api]`` raise :class:`AttributeError`, read or
    written. Bookkeeping for the tests lives in names starting with ``_``."""

    _api = ""
    _allowed: frozenset[str] = frozenset()

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in object.__getattribute__(self, "_allowed"):
            raise _refuse(object.__getattribute__(self, "_api"), name)
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name not in self._allowed:
            raise _refuse(self._api, name)
        object.__setattr__(self, name, value)


def allowed_names(api: str, trt_major: int = 10) -> frozenset[str]:
    """The names TensorRT ``trt_major``'s ``api`` has, of those edgeiqa calls (a fake's ``_allowed``)."""
    return TRT_API[api] - (REMOVED_IN_11 if trt_major >= 11 else frozenset())
