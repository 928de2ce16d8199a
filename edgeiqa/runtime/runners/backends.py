"""The torch-free backends: ONE record each (see :class:`~edgeiqa.runtime.runners.registry.Backend`).

Order matters: for a format several backends run, the first record that lists it is the default
(ONNX Runtime for ``onnx``; OpenVINO reads ONNX directly, which lets one ONNX file be benchmarked on
both CPU runtimes). Runner classes are named as strings and imported when a runner is made.
"""

from __future__ import annotations

from edgeiqa.runtime.runners.registry import Backend, register

_PACKAGE = "edgeiqa.runtime.runners"

BUILTIN: tuple[Backend, ...] = (
    Backend(
        name="onnxruntime",
        title="ONNX Runtime",
        runner=f"{_PACKAGE}.onnxruntime_runner:OnnxRuntimeRunner",
        # ORT-format files (ONNX Runtime Mobile) run here only: OpenVINO cannot read them.
        formats=("onnx", "ort"),
        suffixes=(".onnx", ".ort"),
        modules=("onnxruntime",),
        extra="onnx",
        thread_option="intra_op_num_threads",
        precisions=("fp32", "fp16", "int8", "int8-trt", "int8-qat"),
    ),
    Backend(
        name="openvino",
        title="OpenVINO",
        runner=f"{_PACKAGE}.openvino_runner:OpenVINORunner",
        formats=("openvino", "onnx"),
        suffixes=(".xml", ".onnx"),
        modules=("openvino",),
        extra="openvino",
        thread_option="INFERENCE_NUM_THREADS",
        precision_option="inference_precision",
        precisions=("fp32", "fp16", "int8", "int8-qdq", "int8-trt", "int8-qat"),
    ),
    Backend(
        name="coreml",
        title="Core ML",
        runner=f"{_PACKAGE}.coreml_runner:CoreMLRunner",
        formats=("coreml",),
        suffixes=(".mlpackage", ".mlmodel"),
        modules=("coremltools",),
        extra="coreml",
        thread_option=None,
        precisions=("fp32", "fp16", "int8-weights"),
        dynamic_batch=False,
        platforms=("darwin",),
    ),
    Backend(
        name="litert",
        title="LiteRT",
        runner=f"{_PACKAGE}.litert_runner:LiteRTRunner",
        formats=("litert",),
        suffixes=(".tflite",),
        modules=("ai_edge_litert", "tflite_runtime"),
        extra="litert",
        thread_option="num_threads",
        precisions=("fp32", "fp16", "int8"),
        dynamic_batch=False,
    ),
    Backend(
        name="tensorrt",
        title="TensorRT",
        runner=f"{_PACKAGE}.tensorrt_runner:TensorRTRunner",
        formats=("tensorrt",),
        suffixes=(".engine", ".plan"),
        modules=("tensorrt",),
        extra="tensorrt",
        thread_option=None,
        precisions=("fp16", "int8"),
        dynamic_batch=False,
        platforms=("linux", "win32"),
    ),
)

for _backend in BUILTIN:
    register(_backend)
