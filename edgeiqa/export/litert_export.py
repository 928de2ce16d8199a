"""LiteRT (TensorFlow Lite) ``.tflite``: FP32, FP16 weights and INT8, converted from PyTorch with litert-torch.

Why litert-torch and not onnx2tf (measured here, litert-torch 0.10, ai-edge-litert 2.3, torch 2.14.1):
it installs beside the torch pair without touching it (``torch<2.15`` is its own bound) and beside
every other extra once ``cattrs<25.3`` is pinned (its ``litert-converter`` pins ``xdsl==0.28``, which
caps typing-extensions below 4.13, while cattrs >= 25.3, from coremltools, wants >= 4.14); it lowers
the traced torch graph straight to LiteRT builtins, keeps the module paths in the tensor names (which
INT8 needs to keep the score calibration in float) and needs no TensorFlow. onnx2tf goes ONNX ->
TensorFlow -> TFLite and pulls the whole of TensorFlow (which pins its own numpy/protobuf) beside
ours; with the direct converter available there was no reason to take that detour.

* FP32: ``litert_torch.convert`` of the calibrated model (it outputs MOS) with named inputs
  (``image``, ``fragments``) and a dict output (``score``), at the contract's working size and batch
  1 (phones score one photo at a time; the runner loops over a batch). A dynamic batch
  (``dynamic_shapes`` with ``torch.export.Dim``) was tried on EQCNet and refused by the converter's
  JAX lowering ("Shapes must be 1D sequences of concrete values"). Inputs stay NCHW float32, as the
  runtime feeds them.
* FP16: ai-edge-quantizer ``FLOAT_CASTING`` weight-only config: FP16 weights for convolutions and
  fully connected layers, dequantized to FP32 at load; activations and the score calibration float32.
* INT8: ai-edge-quantizer static INT8 (int8 activations and per-channel int8 weights, symmetric
  weights, asymmetric activations: what the LiteRT kernels take), global min/max ranges measured by
  running the FP32 model in the LiteRT interpreter on the same INT8 calibration images (and
  preprocessing) as ONNX/OpenVINO INT8 (not the quantizer's moving average, see :func:`_minmax_ranges`). The
  ``keep_fp`` parts, the score calibration and every op downstream of it stay
  float (ai-edge-quantizer ``NO_QUANTIZE`` on their exact output tensors), so the score is a float
  output. Inputs are int8 with their scale/zero point in the model; the runner quantizes the float
  feed with them, as a phone app would.

Every artifact's operator list is read from the flatbuffer (no interpreter) and recorded; a custom op
(Flex/Select-TF or any other) is refused: a phone's LiteRT has builtins only.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edgeiqa.errors import ConfigError, require
from edgeiqa.export.artifact import SCORE_OUTPUT, ExportedFiles, input_specs, output_specs
from edgeiqa.export.errors import ExportError
from edgeiqa.export.images import ImageSet, iter_feeds
from edgeiqa.export.nodes import FIRST_CONV, VARIANCE, split_auto
from edgeiqa.export.options import SCORE_CALIBRATION_GROUP, ExportOptions
from edgeiqa.export.source import ExportSource
from edgeiqa.models.inputs import example_inputs

SIGNATURE = "serving_default"
# LiteRT ops a standard deviation is built from, walked up from its SQRT (see edgeiqa.export.nodes).
_VARIANCE_OPS = ("ADD", "MEAN", "SUM", "POW", "MUL", "MAXIMUM", "DIV", "SQUARED_DIFFERENCE")


def export_litert(
    source: ExportSource, precision: str, work: Path, name: str, calib: ImageSet | None, options: ExportOptions
) -> ExportedFiles:
    """The ``litert`` format's exporter (see :mod:`edgeiqa.export.formats`)."""
    contract = source.contract
    if contract.size_policy != "square":
        raise ExportError(
            f"LiteRT: {source.name} has size_policy {contract.size_policy!r}; a .tflite has fixed "
            "image sizes, so export a square-contract model"
        )
    target = work / name
    fp32 = target if precision == "fp32" else work / "_source_fp32.tflite"
    details: dict[str, Any] = {"fp32": convert_fp32(source, fp32)}
    if precision == "fp16":
        details["fp16"] = quantize_fp16(fp32, target)
    elif precision == "int8":
        if calib is None:
            raise ExportError("LiteRT int8 needs INT8 calibration images")
        details["int8"] = quantize_int8(fp32, target, calib, source, options)
    details["ops"] = builtin_ops(target)
    size = contract.working_size
    return ExportedFiles(target, input_specs(contract, (size, size), 1), output_specs(1), details)


class _NamedScore:
    """Wraps the model so the LiteRT signature's output is called ``score`` (a dict output keeps its key)."""

    @staticmethod
    def build(model: Any) -> Any:
        import torch

        class NamedScore(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, image: torch.Tensor, fragments: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
                inputs = (image,) if fragments is None else (image, fragments)
                return {SCORE_OUTPUT: self.inner(*inputs)}

        return NamedScore(model).eval()


def convert_fp32(source: ExportSource, path: Path) -> dict[str, Any]:
    """Convert ``source.model`` to ``path`` at batch 1 and the contract's working size."""
    litert_torch = require("litert_torch", "litert", "LiteRT export")
    torch = require("torch", "train", "LiteRT export")
    start = time.perf_counter()
    litert_torch.config.show_progress = False
    wrapped = _NamedScore.build(source.model)
    kwargs = dict(zip(source.input_names, example_inputs(source.contract, batch=1)))
    with warnings.catch_warnings(), torch.no_grad(), _quiet():
        warnings.simplefilter("ignore")
        try:
            model = litert_torch.convert(wrapped, sample_kwargs=kwargs)
        except Exception as exc:  # torch.export and the lowering raise many types
            raise ExportError(f"litert-torch cannot convert {source.name} ({_first_line(exc)})") from exc
    model.export(str(path))
    return {
        "converter": f"litert-torch {_version('litert-torch')}",
        "batch": 1,
        "layout": "NCHW float32 inputs",
        "seconds": round(time.perf_counter() - start, 3),
    }


def quantize_fp16(fp32: Path, dst: Path) -> dict[str, Any]:
    """FP16 weights (convolutions, fully connected); everything else, the score calibration included, float32."""
    aeq = _quantizer_modules()
    start = time.perf_counter()
    quantizer = aeq.quantizer.Quantizer(str(fp32))
    quantizer.add_weight_only_config(
        regex=".*",
        operation_name=aeq.qtyping.TFLOperationName.ALL_SUPPORTED,
        num_bits=16,
        algorithm_key=aeq.AlgorithmName.FLOAT_CASTING,
    )
    with _quiet():
        result = quantizer.quantize(enable_progress_report=False)
    dst.write_bytes(result.quantized_model)
    return {
        "tool": f"ai-edge-quantizer {_version('ai-edge-quantizer')}",
        "recipe": "weight-only float16 (FLOAT_CASTING)",
        "seconds": round(time.perf_counter() - start, 3),
    }


def quantize_int8(
    fp32: Path, dst: Path, calib: ImageSet, source: ExportSource, options: ExportOptions
) -> dict[str, Any]:
    """Static INT8 with min/max ranges from ``calib``; ``keep_fp`` + the score calibration's tail stay float."""
    aeq = _quantizer_modules()
    settings = options.int8
    if settings.method != "minmax":
        raise ConfigError(
            f"LiteRT int8 calibrates with min/max only (ai-edge-quantizer); got method "
            f"{settings.method!r}: pass --int8-method minmax"
        )
    start = time.perf_counter()
    granularity = (
        aeq.qtyping.QuantGranularity.CHANNELWISE if settings.per_channel else aeq.qtyping.QuantGranularity.TENSORWISE
    )
    quantizer = aeq.quantizer.Quantizer(str(fp32))
    all_ops = aeq.qtyping.TFLOperationName.ALL_SUPPORTED
    quantizer.add_static_config(
        regex=".*", operation_name=all_ops, activation_num_bits=8, weight_num_bits=8, weight_granularity=granularity
    )
    graph = FlatGraph.read(fp32)
    kept = graph.select(options.keep_fp_with_calibration())
    # Latest matching config wins in ai-edge-quantizer: these exact scopes override the '.*' above.
    for scope in sorted({graph.scope_regex(i) for i in kept}):
        quantizer.update_quantization_recipe(
            scope, all_ops, aeq.qtyping.OpQuantizationConfig(), algorithm_key=aeq.AlgorithmName.NO_QUANTIZE
        )
    paths = list(calib.paths[: settings.n_images])
    with _quiet():
        ranges, seen = _minmax_ranges(quantizer, aeq, _calibration_feeds(paths, source))
        result = quantizer.quantize(ranges, enable_progress_report=False)
    dst.write_bytes(result.quantized_model)
    return {
        "tool": f"ai-edge-quantizer {_version('ai-edge-quantizer')}",
        "recipe": "static int8 (weights "
        f"symmetric {'per-channel' if settings.per_channel else 'per-tensor'}, activations asymmetric)",
        "calibration": {
            "method": "minmax",
            "images_seen": seen,
            "tensors": len(ranges),
            "update": "global min/max over every image (not the quantizer's moving average)",
        },
        "images": calib.describe() | {"used": len(paths)},
        "kept_float": graph.describe(kept),
        "seconds": round(time.perf_counter() - start, 3),
    }


def _minmax_ranges(quantizer: Any, aeq: Any, feeds: Iterator[dict[str, Any]]) -> tuple[dict[str, Any], int]:
    """Each tensor's min and max over every image, measured one image at a time.

    ``Quantizer.calibrate`` merges images with a moving average (factor 0.95), which weights the first
    images: on the test scorer's brightness-sorted set it clipped the brightest images' activations and
    flattened their scores (38 MOS points off). MinMax, as in the ONNX INT8 exports, is the global range.
    """
    threads = max(1, min(4, os.cpu_count() or 1))
    ranges: dict[str, Any] = {}
    seen = 0
    for feed in feeds:
        for name, qsv in quantizer.calibrate({SIGNATURE: [feed]}, num_threads=threads).items():
            ranges[name] = aeq.qsv_utils.min_max_update(ranges.get(name) or {}, qsv)
        seen += 1
    return ranges, seen


def _calibration_feeds(paths: Sequence[str], source: ExportSource) -> Iterator[dict[str, Any]]:
    """One-image feeds (the runtime's preprocessing), keyed by the signature's input names."""
    yield from iter_feeds(paths, source.contract, batch_size=1)


class FlatGraph:
    """The main subgraph of a ``.tflite`` file: each op's name and input/output tensors (torch-free)."""

    def __init__(
        self,
        ops: list[str],
        inputs: list[list[int]],
        outputs: list[list[int]],
        names: list[str],
        custom: list[str | None],
    ) -> None:
        self.ops, self.inputs, self.outputs, self.names, self.custom = ops, inputs, outputs, names, custom

    @classmethod
    def read(cls, path: Path) -> FlatGraph:
        schema = require("ai_edge_litert.schema_py_generated", "litert", "reading a .tflite file")
        try:
            model = schema.Model.GetRootAsModel(path.read_bytes(), 0)
            codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
            graph = model.Subgraphs(0)
        except Exception as exc:  # flatbuffers raises struct/index errors on garbage
            raise ExportError(f"{path.name}: not a LiteRT flatbuffer ({_first_line(exc)})") from exc
        builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        op_names, custom, ins, outs = [], [], [], []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = codes[op.OpcodeIndex()]
            # Codes above 127 live in BuiltinCode; DeprecatedBuiltinCode holds the rest (schema v3a).
            value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            custom_code = code.CustomCode()
            op_names.append(builtin.get(value, f"BUILTIN_{value}"))
            custom.append(custom_code.decode() if custom_code else None)
            ins.append([int(t) for t in op.InputsAsNumpy()] if op.InputsLength() else [])
            outs.append([int(t) for t in op.OutputsAsNumpy()] if op.OutputsLength() else [])
        names = [(graph.Tensors(t).Name() or b"").decode() for t in range(graph.TensorsLength())]
        return cls(op_names, ins, outs, names, custom)

    def scope_regex(self, op: int) -> str:
        """ai-edge-quantizer's scope of an op is its output names joined by ';' (+ ';'): match it exactly."""
        return "^" + "".join(re.escape(self.names[t]) + ";" for t in self.outputs[op] if t >= 0) + "$"

    def select(self, keep: Sequence[str]) -> list[int]:
        """Ops to keep float: module groups (by tensor-name path), ``variance``, and the score calibration's
        ops with everything downstream of them (so the score output is float)."""
        selected: set[int] = set()
        for name in split_auto(keep)[0]:
            if name == VARIANCE:
                selected.update(self._variance())
            elif name == FIRST_CONV or name.startswith("/"):
                continue  # ONNX node selections: nothing to match in a LiteRT graph
            else:
                found = self._group(name)
                if name == SCORE_CALIBRATION_GROUP:
                    found = self._downstream(found)
                selected.update(found)
        return sorted(selected)

    def describe(self, ops: Sequence[int]) -> dict[str, Any]:
        return {"ops": len(ops), "by_type": dict(Counter(self.ops[i] for i in ops))}

    def _group(self, name: str) -> set[int]:
        # litert-torch names a tensor after its module stack: ".../pkg.Class_attr/pkg.Class_attr;3".
        parts = [re.escape(p) for p in name.strip(".").split(".")]
        pattern = re.compile(r"(^|/)[^/;]*_" + r"/[^/;]*_".join(parts) + r"(?=[/;]|$)")
        return {i for i, outs in enumerate(self.outputs) if any(pattern.search(self.names[t]) for t in outs)}

    def _downstream(self, ops: set[int]) -> set[int]:
        produced = {t for i in ops for t in self.outputs[i]}
        result = set(ops)
        for i in range(len(self.ops)):  # flatbuffer operators are in execution (topological) order
            if i not in result and any(t in produced for t in self.inputs[i]):
                result.add(i)
                produced.update(self.outputs[i])
        return result

    def _variance(self) -> set[int]:
        producer = {t: i for i, outs in enumerate(self.outputs) for t in outs}
        found: set[int] = set()
        for i, op in enumerate(self.ops):
            if op != "SQRT":
                continue
            current, steps = i, 0
            while current is not None and steps < 8:
                found.add(current)
                if self.ops[current] == "SUB":
                    break
                # dict.fromkeys: (x - mean) * (x - mean) reads one parent twice
                parents = list(dict.fromkeys(producer[t] for t in self.inputs[current] if t in producer))
                parents = [p for p in parents if self.ops[p] in (*_VARIANCE_OPS, "SUB")]
                current, steps = (parents[0] if len(parents) == 1 else None), steps + 1
        return found


def builtin_ops(path: Path) -> dict[str, Any]:
    """The artifact's operator counts; any custom op (Flex/Select-TF included) is an :class:`ExportError`."""
    graph = FlatGraph.read(path)
    custom = sorted({c for c in graph.custom if c})
    if custom:
        flex = [c for c in custom if c.startswith("Flex")]
        kind = "Flex (Select TF) ops, which LiteRT on a phone does not have" if flex else "custom ops"
        raise ExportError(f"{path.name}: the converted model needs {kind}: {', '.join(custom)}")
    counts = Counter(graph.ops)
    return {
        "builtin_only": True,
        "flex_ops": [],
        "custom_ops": [],
        "count": len(graph.ops),
        "by_type": dict(sorted(counts.items())),
    }


def _quantizer_modules() -> Any:
    """ai-edge-quantizer's modules as one namespace (imported on first use)."""
    quantizer = require("ai_edge_quantizer.quantizer", "litert", "LiteRT quantization")
    qtyping = require("ai_edge_quantizer.qtyping", "litert", "LiteRT quantization")
    manager = require("ai_edge_quantizer.algorithm_manager", "litert", "LiteRT quantization")
    qsv_utils = require("ai_edge_quantizer.utils.qsv_utils", "litert", "LiteRT quantization")

    class _Modules:
        pass

    ns = _Modules()
    ns.quantizer, ns.qtyping, ns.AlgorithmName, ns.qsv_utils = quantizer, qtyping, manager.AlgorithmName, qsv_utils
    return ns


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The converter and quantizer print progress bars and reports; the CLI's output is ours."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
