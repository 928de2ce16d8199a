"""OpenVINO IR (``.xml`` + ``.bin``): FP32, FP16 (weights compressed), INT8 (NNCF post-training) and
INT8-QDQ (ONNX Runtime's calibrated U8S8 Q/DQ graph, the ``onnx int8`` artifact's, compiled by OpenVINO).

The IR is converted from the FP32 ONNX file (``openvino.convert_model``), not from torch: NNCF's
torch path goes through ``torch.export`` and needs ``torchao``, which NNCF does not declare. INT8 is
``nncf.quantize`` over the same INT8 calibration images (and preprocessing) as ONNX INT8, with the
``keep_fp`` parts and the score calibration in NNCF's ignored scope, and the activation ranges
measured as the INT8 calibration method says (:data:`RANGE_ESTIMATORS`), not NNCF's default.

``int8-qdq`` exists because the two quantizers do not round alike: on the quickstart student NNCF's IR
agreed with FP32 at SRCC 0.972 on the validation images, while OpenVINO running ONNX Runtime's Q/DQ graph
(its QuantizeLinear/DequantizeLinear pairs become FakeQuantize, executed in INT8) agreed at 0.997. It
also makes one calibration, with one set of ranges, serve ONNX Runtime and OpenVINO alike.

Precision on the CPU: "FP16" IR means FP16 weights; the CPU plugin decompresses them and computes in
the inference precision, which on bf16-capable CPUs (these machines) is bf16 unless
``INFERENCE_PRECISION_HINT`` says otherwise. The parity gate runs with the hint
``ExportOptions.openvino_inference_precision`` (f32 by default) and records the precision the
compiled model reports. The FP16 IR also stores the score calibration's constants in fp16: a
monotonic change (ranking unchanged), about 5e-4 relative on the MOS scale.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.errors import require
from edgeiqa.export.artifact import ExportedFiles, companions_of, input_specs, output_specs
from edgeiqa.export.errors import ExportError
from edgeiqa.export.formats import get_format
from edgeiqa.export.images import ImageSet, iter_feeds
from edgeiqa.export.nodes import resolve_nodes, split_auto
from edgeiqa.export.onnx_export import export_fp32
from edgeiqa.export.options import ExportOptions
from edgeiqa.export.source import ExportSource
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.runners import OpenVINORunner

# INT8 calibration method -> NNCF activation range estimator. NNCF's own default, MEAN_MINMAX (per-image
# min/max averaged over the set), clips the images at the ends of the quality range: on the tiny test
# scorer it moved the darkest images' scores by 7 MOS points where MINMAX moved none by more than 0.1.
RANGE_ESTIMATORS = {"minmax": "MINMAX", "percentile": "MEAN_QUANTILE", "entropy": "HISTOGRAM"}
# Bounds on NNCF's accuracy-control search (see _restorer_bounds): layer groups it may revert, and the
# images each ranking pass scores (ranking compares outputs by normalised MSE, which 32 images resolve).
MAX_REVERTED_GROUPS = 12
RANKING_IMAGES = 32


def export_openvino(
    source: ExportSource, precision: str, work: Path, name: str, calib: ImageSet | None, options: ExportOptions
) -> ExportedFiles:
    """The ``openvino`` format's exporter (see :mod:`edgeiqa.export.formats`)."""
    ov = require("openvino", "openvino", "OpenVINO export")
    onnx_path = work / "_source_fp32.onnx"
    details: dict[str, Any] = {"fp32_onnx": export_fp32(source, onnx_path, options)}
    start = time.perf_counter()
    model = ov.convert_model(str(onnx_path))
    if get_format("openvino").needs_calibration(precision) and calib is None:
        raise ExportError(f"OpenVINO {precision} needs INT8 calibration images")
    if precision == "int8":
        model, details["int8"] = quantize_nncf(model, onnx_path, calib, source, options)
    elif precision == "int8-qdq":
        model, details["int8"] = quantize_qdq(ov, onnx_path, work, calib, source, options)
    xml = work / name
    ov.save_model(model, str(xml), compress_to_fp16=precision == "fp16")
    details.update(
        converter="openvino.convert_model (from the FP32 ONNX)",
        compress_to_fp16=precision == "fp16",
        seconds=round(time.perf_counter() - start, 3),
    )
    return ExportedFiles(xml, input_specs(source.contract), output_specs(), details, companions_of(xml))


def quantize_nncf(
    model: Any, onnx_path: Path, calib: ImageSet, source: ExportSource, options: ExportOptions
) -> tuple[Any, dict[str, Any]]:
    """``nncf.quantize`` over the calibration images; returns the model and what was done."""
    nncf = require("nncf", "openvino", "OpenVINO INT8 quantization")
    onnx = require("onnx", "onnx", "OpenVINO INT8 quantization")
    paths = list(calib.paths[: options.int8.n_images])
    kept = resolve_nodes(onnx.load(str(onnx_path)), options.keep_fp_with_calibration())
    batches = ImageFeeds(paths, source.contract)
    estimator = RANGE_ESTIMATORS[options.int8.method]
    scope = ignored_scope(nncf, kept)
    budget = split_auto(options.keep_fp_with_calibration())[1]
    fast_bias = options.int8.nncf_bias_correction == "fast"
    details: dict[str, Any] = {
        "tool": f"nncf {nncf.__version__}",
        "activation_range_estimator": estimator,
        "bias_correction": options.int8.nncf_bias_correction,
        "ignored_scope": kept,
        "subset_size": len(batches),
        "images": calib.describe() | {"used": len(paths)},
    }

    def plain_quantize(feeds: ImageFeeds) -> Any:
        return nncf.quantize(
            model,
            nncf.Dataset(feeds),
            subset_size=len(feeds),
            ignored_scope=scope,
            fast_bias_correction=fast_bias,
            advanced_parameters=_advanced(estimator),
        )

    plain = None
    # NNCF logs one INFO line per op it leaves unquantized (about 40 for the score calibration and the
    # head alone); details["float_layers"] records them from the graph itself.
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    with warnings.catch_warnings(), contextlib.ExitStack() as restore:
        warnings.simplefilter("ignore")
        nncf_log.setLevel(logging.WARNING)
        restore.callback(nncf_log.setLevel, level)
        if budget is None:
            quantized = plain_quantize(batches)
        else:
            quantized, details["keep_fp_auto"] = _with_accuracy_control(
                nncf, model, batches, scope, estimator, budget, fast_bias
            )
            # Which layers NNCF quantizes does not depend on the ranges: a 2-image pass gives the plain
            # structure, so the layers accuracy control reverted are told apart from those NNCF never quantizes.
            plain = {
                layer["layer"] for layer in float_layers(plain_quantize(ImageFeeds(paths[:2], source.contract)), kept)
            }
    details["float_layers"] = float_layers(quantized, kept, plain)
    return quantized, details


def quantize_qdq(
    ov: Any, onnx_path: Path, work: Path, calib: ImageSet, source: ExportSource, options: ExportOptions
) -> tuple[Any, dict[str, Any]]:
    """The ``onnx int8`` Q/DQ graph (same calibration, keep_fp and auto search) converted to OpenVINO."""
    from edgeiqa.export.onnx_int8 import quantize_int8

    qdq = work / "_source_int8_qdq.onnx"
    details = {
        "tool": "onnxruntime quantize_static (onnx int8, U8S8 Q/DQ), converted by openvino.convert_model",
        **quantize_int8(onnx_path, qdq, "int8", calib, source.contract, options, work),
    }
    model = ov.convert_model(str(qdq))
    details["float_layers"] = float_layers(model, list(details["nodes_to_exclude"]), quantizer="ONNX Runtime")
    return model, details


# The layers whose cost INT8 exists to cut: a FakeQuantize on their activation input means they run in INT8.
_COMPUTE_OPS = ("Convolution", "GroupConvolution", "MatMul")


def float_layers(
    model: Any, ignored: list[str], plain_float: set[str] | None = None, quantizer: str = "NNCF"
) -> list[dict[str, str]]:
    """Every conv/matmul of the quantized IR that still runs in float, and why.

    ``why`` is ``ignored scope`` when the layer matches a ``keep_fp`` part (or the score calibration);
    ``accuracy control`` when it is float only because ``nncf.quantize_with_accuracy_control`` reverted
    it to meet the rank budget (``plain_float``: the float layers of plain ``nncf.quantize`` with the
    same scope); else ``not quantized by <quantizer>`` (NNCF's or ONNX Runtime's patterns leave it, e.g. a
    matmul of two activations). Read from the graph, not from the quantizer's logs: it is what the artifact
    really does.
    """
    out = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in _COMPUTE_OPS or op.input_value(0).get_node().get_type_name() == "FakeQuantize":
            continue
        name = op.get_friendly_name()
        if any(name == kept or name.startswith(kept + "/") for kept in ignored):
            why = "ignored scope"
        elif plain_float is not None and name not in plain_float:
            why = "accuracy control"
        else:
            why = f"not quantized by {quantizer}"
        out.append({"layer": name, "op": op.get_type_name(), "why": why})
    return out


def _with_accuracy_control(
    nncf: Any, model: Any, batches: ImageFeeds, scope: Any, estimator: str, budget: float, fast_bias: bool
) -> tuple[Any, dict[str, Any]]:
    """``nncf.quantize_with_accuracy_control`` with metric = SRCC(scores, FP32 scores) and max_drop = 1 - budget.

    The FP32 model scores 1.0 by construction, so NNCF's absolute drop is exactly 1 - rank agreement.
    Validation runs on the calibration images (capped like ONNX ``keep_fp auto``).
    """
    from edgeiqa.export.mixed_precision import AUTO_IMAGES
    from edgeiqa.metrics import srcc

    val = ImageFeeds(batches.paths[:AUTO_IMAGES], batches.contract)

    def outputs(run: Callable[[dict[str, Any]], Any], feeds: Iterable[dict[str, Any]]) -> list[list[np.ndarray]]:
        """Every output of ``run`` per feed, in port order: what NNCF's ranker compares item by item."""
        return [[np.asarray(value) for value in run(feed).values()] for feed in feeds]

    def scores(per_item: list[list[np.ndarray]]) -> np.ndarray:
        return np.concatenate([np.asarray(item[0], dtype=np.float64).reshape(-1) for item in per_item])

    # Our own runs (the FP32 reference, the final check) go through the runtime's runner; NNCF hands
    # ``validate`` models it compiled itself.
    fp32 = OpenVINORunner(model, inference_precision="f32")
    measured: list[float] = []

    def validate(compiled: Any, data: Iterable[dict[str, Any]]) -> tuple[float, list[list[np.ndarray]]]:
        # Returning each item's outputs (SRCC has no per-item value) puts NNCF in its output mode: it ranks
        # layer groups by the normalised MSE of the outputs, one inference per item. With (metric, None) it
        # called this once per item to rank, and each call scored the whole set: 100 x 100 inferences per
        # layer group, over an hour for the LIVE-C student. NNCF passes the whole set, or one item to learn
        # the mode (where SRCC is undefined, hence 1.0).
        feeds = list(data)
        per_item = outputs(compiled, feeds)
        ref = reference if len(feeds) == len(val) else scores(outputs(fp32.infer, feeds))
        value = float(srcc(scores(per_item), ref)) if len(feeds) > 2 else 1.0
        if len(feeds) == len(val):
            measured.append(value)
        return value, per_item

    with fp32, _one_bar_per_ranking_pass():
        reference = scores(outputs(fp32.infer, val))
        quantized = nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(batches),
            nncf.Dataset(val),
            validate,
            max_drop=1.0 - budget,
            drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(batches),
            ignored_scope=scope,
            fast_bias_correction=fast_bias,
            advanced_quantization_parameters=_advanced(estimator),
            advanced_accuracy_restorer_parameters=_restorer_bounds(),
        )
    with OpenVINORunner(quantized, inference_precision="f32") as runner:
        final = scores(outputs(runner.infer, val))
    fake = sum(1 for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize")
    return quantized, {
        "budget": budget,
        "metric": "SRCC(int8 scores, fp32 scores)",
        "tool": "nncf.quantize_with_accuracy_control",
        "max_drop": round(1.0 - budget, 6),
        "images": {"source": "INT8 calibration images", "n": len(val)},
        "rank_agreement": float(srcc(final, reference)),
        "met": bool(srcc(final, reference) >= budget),
        "validation_calls": len(measured),
        "fake_quantize_nodes": fake,
        "max_reverted_groups": MAX_REVERTED_GROUPS,
        "ranking_images": min(RANKING_IMAGES, len(val)),
    }


@contextlib.contextmanager
def _one_bar_per_ranking_pass() -> Iterator[None]:
    """Silence NNCF's per-layer-group "Collecting outputs" bars while accuracy control runs.

    Each ranking pass draws one such bar per layer group (116 for the LIVE-C student, hundreds of lines
    per export); its own "Calculating ranking scores" bar already shows the pass's progress. NNCF versions
    whose evaluator has no module-level ``track`` are left as they are.
    """
    import functools
    import importlib

    try:
        evaluator = importlib.import_module("nncf.quantization.algorithms.accuracy_control.evaluator")
    except ImportError:
        evaluator = None
    track = getattr(evaluator, "track", None)
    if track is None:
        yield
        return
    evaluator.track = functools.partial(track, disable=True)
    try:
        yield
    finally:
        evaluator.track = track


def _restorer_bounds() -> Any:
    """Bounds on NNCF's greedy search, which is otherwise unbounded in time.

    After any reverted group that makes the metric worse, NNCF re-ranks every remaining group (one
    inference per ranking image per group, plus a compile each). SRCC on 100 images is noisy, so that
    happens often: on the LIVE-C student (116 groups) the unbounded search re-ranked nine times and had
    not finished after 63 minutes. ``max_num_iterations`` caps the groups tried (so the re-rankings);
    the ranking subset caps each ranking pass. A search that hits the cap says ``met: false``.
    """
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    return AdvancedAccuracyRestorerParameters(
        max_num_iterations=MAX_REVERTED_GROUPS, ranking_subset_size=RANKING_IMAGES
    )


def _advanced(estimator: str) -> Any:
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return AdvancedQuantizationParameters(
        activations_range_estimator_params=getattr(RangeEstimatorParametersSet, estimator)
    )


def ignored_scope(nncf: Any, kept: Iterable[str]) -> Any:
    """NNCF's ignored scope for ONNX node names kept in float.

    ONNX node names survive as OpenVINO friendly names, sometimes with a suffix (a Gemm becomes
    "<name>/WithoutBiases" + an Add), so each kept node matches as a prefix; an op the converter
    fused away simply is not there (validate=False).
    """
    return nncf.IgnoredScope(patterns=[f"^{re.escape(name)}(/.*)?$" for name in kept], validate=False)


class ImageFeeds:
    """Re-iterable one-image batches per ``contract``, preprocessed on the fly (NNCF passes over them more
    than once, and 300 preprocessed images would hold hundreds of MB)."""

    def __init__(self, paths: list[str], contract: PreprocessContract) -> None:
        self.paths, self.contract = paths, contract

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter_feeds(self.paths, self.contract, batch_size=1)
