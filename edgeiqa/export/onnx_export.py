"""ONNX artifacts: FP32 (torch.onnx + checker + onnxslim), FP16 (float32 I/O), INT8 (see onnx_int8), INT8-QAT.

The checker and the ONNX Runtime smoke run live in :mod:`edgeiqa.export.onnx_checks` (shared with
``onnx_int8``, which must not import this module back).

INT8-QAT: the fake-quantized student traced as it is (its Q/DQ are the trained ones), then checked by
:mod:`edgeiqa.export.onnx_qat`.

FP32: ``torch.onnx.export(dynamo=False, opset_version=17)`` (the dynamo exporter needs onnxscript,
always writes opset 18 and fails to convert down), dynamic batch/height/width on ``image`` and batch
on ``fragments``/``score``; the score calibration is inside the traced module, so the graph outputs
MOS. onnxslim then folds constants; its result must keep the same named dynamic axes, else it is
refused. FP16: onnxconverter-common with ``keep_io_types=True`` and the score calibration, the
``keep_fp`` parts and the converter's default op block list kept in float32; the result must pass
the strict ONNX checker (no mixed-type node) and run in ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

from edgeiqa.errors import ConfigError, require
from edgeiqa.export.artifact import SCORE_OUTPUT, ExportedFiles, dynamic_axes, input_specs, output_specs
from edgeiqa.export.errors import ExportError
from edgeiqa.export.images import ImageSet
from edgeiqa.export.nodes import resolve_nodes, unshare_constants
from edgeiqa.export.onnx_checks import check_onnx, smoke_run
from edgeiqa.export.options import ExportOptions
from edgeiqa.export.reuse import FileMemo
from edgeiqa.export.source import ExportSource, weights_digest
from edgeiqa.models.inputs import example_inputs


def export_onnx(
    source: ExportSource, precision: str, work: Path, name: str, calib: ImageSet | None, options: ExportOptions
) -> ExportedFiles:
    """The ``onnx`` format's exporter (see :mod:`edgeiqa.export.formats`)."""
    target = work / name
    if precision == "int8-qat":
        return ExportedFiles(target, input_specs(source.contract), output_specs(), export_qat(source, target, options))
    fp32 = target if precision == "fp32" else work / "_source_fp32.onnx"
    details: dict[str, Any] = {"fp32": export_fp32(source, fp32, options)}
    if precision == "fp16":
        details["fp16"] = convert_fp16(fp32, target, options.keep_fp_with_calibration())
    elif precision in ("int8", "int8-trt"):
        from edgeiqa.export.onnx_int8 import quantize_int8

        if calib is None:
            raise ExportError(f"ONNX {precision} needs INT8 calibration images")
        details["int8"] = quantize_int8(fp32, target, precision, calib, source.contract, options, work)
    # keep_fp auto writes its per-layer sensitivity (JSON + plot) beside the artifact.
    companions = tuple(work / n for n in details.get("int8", {}).get("keep_fp_auto", {}).get("files", ()))
    return ExportedFiles(target, input_specs(source.contract), output_specs(), details, companions)


# Every ONNX and OpenVINO artifact of a run starts from this graph: trace it once per model and settings.
_TRACED = FileMemo("fp32-onnx")


def export_fp32(source: ExportSource, path: Path, options: ExportOptions) -> dict[str, Any]:
    """Trace ``source.model`` to ONNX at ``path``, check it, slim it; returns what was done.

    A repeat for the same weights, contract, inputs, opset and slimming in this process copies the
    first graph (its details say ``reused``).
    """
    start = time.perf_counter()
    key = hashlib.sha256(
        json.dumps(
            [weights_digest(source.model), source.contract.to_dict(), source.input_names, options.opset, options.slim],
            default=str,
        ).encode()
    ).hexdigest()
    details = _TRACED.copy_to(key, path)
    if details is not None:
        return {
            **details,
            "reused": "same weights and settings as an earlier export in this process: its graph was copied",
            "seconds": round(time.perf_counter() - start, 3),
        }
    details = _trace_fp32(source, path, options)
    _TRACED.keep(key, path, details)
    return details


def _trace_fp32(source: ExportSource, path: Path, options: ExportOptions) -> dict[str, Any]:
    torch = require("torch", "train", "ONNX export")
    onnx = require("onnx", "onnx", "ONNX export")
    start = time.perf_counter()
    names = list(source.input_names)
    with warnings.catch_warnings(), torch.no_grad():
        # dynamo=False is deprecated in torch >= 2.9 and says so on every call; the TorchScript path is
        # the one that writes opset 17 (see docs/architecture.md, "Deployment facts").
        warnings.simplefilter("ignore")
        torch.onnx.export(
            source.model,
            example_inputs(source.contract),
            str(path),
            dynamo=False,
            opset_version=options.opset,
            input_names=names,
            output_names=[SCORE_OUTPUT],
            dynamic_axes=dynamic_axes(source.contract),
            do_constant_folding=True,
        )
    model = onnx.load(str(path))
    check_onnx(model, path)
    details = {
        "opset": options.opset,
        "exporter": "torch.onnx (TorchScript, dynamo=False)",
        "nodes": len(model.graph.node),
        "slimmed": False,
    }
    if options.slim:
        model = _slim(model, path)
        details.update(slimmed=True, nodes_after_slim=len(model.graph.node))
    onnx.save(model, str(path))
    details["seconds"] = round(time.perf_counter() - start, 3)
    return details


def export_qat(source: ExportSource, path: Path, options: ExportOptions) -> dict[str, Any]:
    """Trace a fake-quantized (QAT) student to its Q/DQ ONNX and check it (:mod:`edgeiqa.export.onnx_qat`)."""
    from edgeiqa.export.nodes import split_auto
    from edgeiqa.export.onnx_qat import check_qat_graph
    from edgeiqa.models.fake_quant import quantized_layers

    if not options.slim:
        raise ConfigError(
            "onnx int8-qat needs onnxslim's constant folding (the traced weight scales become the "
            "constants TensorRT requires): drop --no-slim / slim=False"
        )
    if split_auto(options.keep_fp)[1] is not None:
        raise ConfigError(
            "keep_fp auto searches post-training INT8 layers to keep in float; a QAT student's float "
            "layers were fixed when it was trained (student.qat.keep_fp): drop 'auto' for int8-qat"
        )
    layers = quantized_layers(source.model)
    details: dict[str, Any] = {"fp32_trace": export_fp32(source, path, options)}
    details["qat"] = check_qat_graph(path, len(layers))
    details["qat"]["keep_fp"] = (
        "fixed by the QAT checkpoint (its quantization.keep_fp); the export's keep_fp is not applied"
    )
    return details


def graph_dims(model: Any) -> dict[str, list[int | str]]:
    """Every graph input's and output's dims: ints, or the dynamic axis name."""
    dims = {}
    for value in (*model.graph.input, *model.graph.output):
        shape = value.type.tensor_type.shape.dim
        dims[value.name] = [d.dim_param if d.dim_param else int(d.dim_value) for d in shape]
    return dims


def _slim(model: Any, path: Path) -> Any:
    """onnxslim, refused when it changes the named dynamic axes or the graph's inputs/outputs."""
    onnxslim = require("onnxslim", "onnx", "ONNX slimming")
    before = graph_dims(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slimmed = onnxslim.slim(model)
    after = graph_dims(slimmed)
    if after != before:
        raise ExportError(
            f"{path.name}: onnxslim changed the graph's inputs/outputs from {before} to {after}; export with slim=False"
        )
    check_onnx(slimmed, path)
    return slimmed


def convert_fp16(src: Path, dst: Path, keep_fp32: tuple[str, ...]) -> dict[str, Any]:
    """FP16 copy of ``src`` with float32 inputs/outputs; ``keep_fp32`` parts stay float32."""
    onnx = require("onnx", "onnx", "FP16 conversion")
    float16 = require("onnxconverter_common.float16", "onnx", "FP16 conversion")
    start = time.perf_counter()
    model = onnx.load(str(src))
    # Stale float32 value_info from onnxslim makes the converter insert Casts of the wrong type after
    # blocked nodes (seen with Resize); without it the converter re-infers every type itself.
    del model.graph.value_info[:]
    blocked = resolve_nodes(model, keep_fp32)
    copied = unshare_constants(model, blocked)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per weight below 1e-7, clamped to it: expected
        converted = float16.convert_float_to_float16(
            model,
            keep_io_types=True,
            node_block_list=blocked,
            op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST),
        )
    fixed_outputs = _float32_outputs(converted)
    check_onnx(converted, dst)
    onnx.save(converted, str(dst))
    smoke_run(dst)
    casts = sum(1 for n in converted.graph.node if n.op_type == "Cast")
    return {
        "keep_fp32": list(keep_fp32),
        "fp32_nodes": len(blocked),
        "constants_unshared": copied,
        "outputs_recast_to_fp32": fixed_outputs,
        "op_block_list": list(float16.DEFAULT_OP_BLOCK_LIST),
        "casts": casts,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _float32_outputs(model: Any) -> list[str]:
    """Undo the converter's trailing Cast-to-float16 on outputs whose producer is kept in float32.

    With ``keep_io_types=True`` and a blocked last node (our score calibration), onnxconverter-common
    1.16 appends ``Cast(to=float16)`` to the float32 output: the artifact would return float16 scores
    despite "float32 I/O". The Cast is removed and its input renamed to the output.
    """
    from onnx import TensorProto

    fixed = []
    for output in model.graph.output:
        tensor_type = output.type.tensor_type
        if tensor_type.elem_type != TensorProto.FLOAT16:
            continue
        cast = next((n for n in model.graph.node if output.name in n.output), None)
        if cast is None or cast.op_type != "Cast":
            made_by = cast.op_type if cast is not None else "nothing"
            raise ExportError(f"FP16 conversion left output {output.name!r} in float16 (made by {made_by})")
        source = cast.input[0]
        model.graph.node.remove(cast)
        for node in model.graph.node:
            node.output[:] = [output.name if o == source else o for o in node.output]
            node.input[:] = [output.name if i == source else i for i in node.input]
        tensor_type.elem_type = TensorProto.FLOAT
        fixed.append(output.name)
    return fixed
