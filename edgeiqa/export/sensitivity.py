"""Per-layer INT8 sensitivity of an ONNX Q/DQ graph: what each quantized layer alone costs in ranking.

A *layer* is a compute node of the Q/DQ graph that reads at least one ``DequantizeLinear`` output
(ONNX Runtime's QDQ format quantizes a node by putting Q/DQ on its inputs). For each layer this
module builds the float model with **only that layer quantized** — its inputs' Q/DQ pairs (same
scales, zero points and int8 weights as in the full artifact) copied in front of it, every other
node in float — and scores the same images with it and with the float model:

* ``rank_agreement``: SRCC(scores with only this layer quantized, float scores), in [-1, 1];
* ``mean_abs_delta``: mean |Δ score| on the MOS scale;
* ``tensor_error``: the lowest signal-to-quantization-noise ratio (dB) among the layer's quantized
  inputs, from ONNX Runtime's own debugging tools (:mod:`onnxruntime.quantization.qdq_loss_debug`:
  ``create_weight_matching`` + ``compute_weight_error`` for weights, ``collect_activations`` +
  ``create_activation_matching`` + ``compute_activation_error`` — its ``qdq_err``, the error of
  that tensor's own Q/DQ — for activations). Lower means noisier.

Why one layer quantized rather than one layer left in float: both cost one graph edit and one
evaluation per layer (no re-quantization: the Q/DQ nodes are copied from the finished artifact),
but "all but one" answers a different question — how much *removing* one layer's quantization
recovers — as the difference of two nearly equal, noisy agreements, which for every layer but the
dominant ones is lost in the noise; quantizing a layer alone measures its own cost, and the greedy
mixed-precision search (:mod:`edgeiqa.export.mixed_precision`) re-measures the whole artifact after
each choice, which catches interactions. And the mostly-float variants run at float speed in ONNX
Runtime, where a Q/DQ graph can be slower (docs/architecture.md, "Deployment facts").

The variants run in ONNX Runtime or, with ``backend="openvino"``, in OpenVINO (the same ONNX
files, ``INFERENCE_PRECISION_HINT`` f32), which is how the OpenVINO side is measured: NNCF has no
public per-layer report (its accuracy-control ranker is internal). Both go through the runtime's
runners, the ones that run the finished artifacts, with the edited graphs handed over in memory.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.errors import ConfigError, require
from edgeiqa.export.artifact import SCORE_OUTPUT
from edgeiqa.export.images import iter_feeds
from edgeiqa.export.nodes import copy_node
from edgeiqa.metrics import srcc
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.runners import OnnxRuntimeRunner, OpenVINORunner, Runner

# Nodes that read a dequantized tensor but compute nothing from its values.
_NOT_LAYERS = ("QuantizeLinear", "DequantizeLinear", "Shape", "Size")
BACKENDS = ("onnxruntime", "openvino")
# Images whose every intermediate tensor is kept for the SQNR measures (memory grows with each).
TENSOR_ERROR_IMAGES = 8


@dataclass(frozen=True)
class LayerSensitivity:
    """What quantizing one layer alone does to the scores (see the module docstring)."""

    layer: str
    op_type: str
    rank_agreement: float
    mean_abs_delta: float
    tensor_error: float | None

    @property
    def cost(self) -> float:
        """1 - rank agreement: the ranking this layer alone loses."""
        return 1.0 - self.rank_agreement

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantized_layers(qdq_model: Any) -> list[tuple[str, str]]:
    """(node name, op type) of every named compute node that reads a ``DequantizeLinear`` output."""
    dequantized = {n.output[0] for n in qdq_model.graph.node if n.op_type == "DequantizeLinear"}
    return [
        (n.name, n.op_type)
        for n in qdq_model.graph.node
        if n.name and n.op_type not in _NOT_LAYERS and any(i in dequantized for i in n.input)
    ]


def isolate_layer(float_model: Any, qdq_model: Any, layer: str) -> Any:
    """A copy of ``float_model`` in which only ``layer``'s inputs go through the Q/DQ of ``qdq_model``.

    An activation's QuantizeLinear reads the tensor the float node reads (not the Q/DQ graph's own
    input, which may skip a Relu that quantization absorbed into the range).
    """
    model = type(float_model)()
    model.CopyFrom(float_model)
    target = _node(model, layer)
    qdq_node = _node(qdq_model, layer)
    producer = {out: n for n in qdq_model.graph.node for out in n.output}
    constants = {i.name: i for i in qdq_model.graph.initializer}
    have = {i.name for i in model.graph.initializer}
    inserted = []
    for index, tensor in enumerate(qdq_node.input):
        dq = producer.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear" or index >= len(target.input):
            continue
        quant = producer.get(dq.input[0])
        dq_copy = _twin(dq, f"{tensor}__{layer}")
        if quant is not None and quant.op_type == "QuantizeLinear":
            q_copy = _twin(quant, f"{quant.output[0]}__{layer}")
            q_copy.input[0] = target.input[index]
            dq_copy.input[0] = q_copy.output[0]
            inserted.append(q_copy)
            needed = list(quant.input[1:]) + list(dq.input[1:])
        elif dq.input[0] in constants:
            needed = list(dq.input)
        else:
            continue
        for name in needed:
            if name and name not in have and name in constants:
                model.graph.initializer.append(constants[name])
                have.add(name)
        inserted.append(dq_copy)
        target.input[index] = dq_copy.output[0]
    nodes = list(model.graph.node)
    position = next(i for i, n in enumerate(nodes) if n.name == layer)
    del model.graph.node[:]
    model.graph.node.extend(nodes[:position] + inserted + nodes[position:])
    return model


def layer_sensitivity(
    float_path: Path,
    qdq_path: Path,
    paths: Sequence[str],
    contract: PreprocessContract,
    backend: str = "onnxruntime",
    op_types: Iterable[str] | None = None,
    batch_size: int = 8,
    threads: int = 2,
) -> list[LayerSensitivity]:
    """One :class:`LayerSensitivity` per quantized layer of ``qdq_path`` (graph order), on ``paths``.

    ``float_path`` must be the float model ``qdq_path`` was quantized from (same node names: the
    pre-processed model :func:`~edgeiqa.export.onnx_int8.quantize_int8` quantizes). ``op_types``
    restricts the layers (e.g. ``("Conv", "Gemm", "MatMul")``).
    """
    onnx = require("onnx", "onnx", "INT8 sensitivity")
    if len(paths) < 2:
        raise ConfigError(f"per-layer sensitivity needs at least 2 images to rank, got {len(paths)}")
    float_model, qdq_model = onnx.load(str(float_path)), onnx.load(str(qdq_path))
    wanted = None if op_types is None else set(op_types)
    layers = [(n, t) for n, t in quantized_layers(qdq_model) if wanted is None or t in wanted]
    feeds = list(iter_feeds(paths, contract, batch_size))
    scorer = Scorer(feeds, backend, threads)
    reference = scorer.scores(float_model)
    errors = tensor_errors(float_path, qdq_path, feeds[:1], layers)
    rows = []
    for name, op_type in layers:
        scores = scorer.scores(isolate_layer(float_model, qdq_model, name))
        rows.append(LayerSensitivity(name, op_type, *agreement(scores, reference), errors.get(name)))
    return rows


def agreement(scores: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(SRCC(scores, reference), mean |scores - reference|); non-finite scores agree at -1."""
    if not np.all(np.isfinite(scores)):
        return -1.0, float("inf")
    return float(srcc(scores, reference)), float(np.mean(np.abs(scores - reference)))


class Scorer:
    """Scores in-memory ONNX models on fixed, preprocessed feeds with one backend."""

    def __init__(self, feeds: list[dict[str, np.ndarray]], backend: str = "onnxruntime", threads: int = 2) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"sensitivity backend {backend!r} is not one of {', '.join(BACKENDS)}")
        self.feeds, self.backend, self.threads = feeds, backend, threads

    def scores(self, model: Any) -> np.ndarray:
        """Scores of ``model`` (an ``onnx.ModelProto`` or a path) over every feed, concatenated."""
        data = Path(model).read_bytes() if isinstance(model, (str, Path)) else model.SerializeToString()
        with self._runner(data) as runner:
            return np.concatenate(
                [np.asarray(_score(runner.infer(feed)), dtype=np.float64).reshape(-1) for feed in self.feeds]
            )

    def _runner(self, data: bytes) -> Runner:
        """An (inactive) runner of the serialized ONNX ``data``."""
        if self.backend == "onnxruntime":
            # Errors only: the edited graphs leave initializers unused, which ORT would warn about per variant.
            return OnnxRuntimeRunner(data, providers=["cpu"], threads=self.threads, log_severity=3)
        ov = require("openvino", "openvino", "OpenVINO INT8 sensitivity")
        with tempfile.TemporaryDirectory() as folder:  # OpenVINO's ONNX frontend reads files
            path = Path(folder) / "variant.onnx"
            path.write_bytes(data)
            model = ov.Core().read_model(str(path))
        return OpenVINORunner(model, inference_precision="f32", threads=self.threads)


def _score(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """``score``, or the only output under another name (OpenVINO may report a fused output's other name)."""
    return outputs[SCORE_OUTPUT] if SCORE_OUTPUT in outputs else next(iter(outputs.values()))


def tensor_errors(
    float_path: Path, qdq_path: Path, feeds: list[dict[str, np.ndarray]], layers: Sequence[tuple[str, str]]
) -> dict[str, float]:
    """Layer -> lowest SQNR (dB) among its quantized inputs, with ONNX Runtime's qdq_loss_debug tools."""
    onnx = require("onnx", "onnx", "INT8 sensitivity")
    debug = require("onnxruntime.quantization.qdq_loss_debug", "onnx", "INT8 sensitivity")
    feeds = _single_images(feeds, TENSOR_ERROR_IMAGES)
    # A quantized scalar weight (e.g. a score-calibration constant) dequantizes to a numpy scalar, which
    # ONNX Runtime's SQNR helper cannot take; as 1-element arrays they compare like any other weight.
    matched = debug.create_weight_matching(str(float_path), str(qdq_path))
    weights = debug.compute_weight_error(
        {name: {k: np.atleast_1d(v) for k, v in pair.items()} for name, pair in matched.items()}
    )
    with tempfile.TemporaryDirectory() as folder:
        acts = {}
        for tag, path in (("float", float_path), ("qdq", qdq_path)):
            augmented = str(Path(folder) / f"{tag}.onnx")
            debug.modify_model_output_intermediate_tensors(str(path), augmented)
            acts[tag] = debug.collect_activations(augmented, iter(feeds))
    matching = debug.create_activation_matching(acts["qdq"], acts["float"])
    activations = {
        k: v["qdq_err"]
        for k, v in debug.compute_activation_error({k: v for k, v in matching.items() if "float" in v}).items()
    }
    qdq_model = onnx.load(str(qdq_path))
    float_nodes = {n.name: n for n in onnx.load(str(float_path)).graph.node}
    producer = {out: n for n in qdq_model.graph.node for out in n.output}
    result = {}
    for node in qdq_model.graph.node:
        if node.name not in float_nodes or node.name not in {name for name, _ in layers}:
            continue
        values = []
        for index, tensor in enumerate(node.input):
            dq = producer.get(tensor)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            quant = producer.get(dq.input[0])
            if quant is not None and quant.op_type == "QuantizeLinear":
                values.append(activations.get(quant.input[0]))
            elif index < len(float_nodes[node.name].input):
                values.append(weights.get(float_nodes[node.name].input[index]))
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if finite:
            result[node.name] = round(float(min(finite)), 3)
    return result


def write_sensitivity(rows: Sequence[LayerSensitivity], path: Path) -> Path:
    """The rows as a JSON list of ``{layer, op_type, rank_agreement, mean_abs_delta, tensor_error}``."""
    path.write_text(json.dumps([r.to_dict() for r in rows], indent=1))
    return path


def read_sensitivity(path: Path) -> list[LayerSensitivity]:
    return [LayerSensitivity(**row) for row in json.loads(Path(path).read_text())]


def ranked(rows: Sequence[LayerSensitivity]) -> list[LayerSensitivity]:
    """Most sensitive first: lowest rank agreement, then largest mean |Δ score|."""
    return sorted(rows, key=lambda r: (r.rank_agreement, -r.mean_abs_delta))


def plot_sensitivity(rows: Sequence[LayerSensitivity], path: Path, top: int = 30, title: str | None = None) -> Path:
    """Horizontal bar plot (PNG) of the ``top`` most sensitive layers' rank cost, 1 - SRCC(int8 layer, fp32)."""
    require("matplotlib", "report", "the sensitivity plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ranked(rows)[:top]
    labels = [f"{_short(r.layer)} ({r.op_type})" for r in shown]
    costs = [max(r.cost, 0.0) for r in shown]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.28 * max(len(shown), 1)))
    ax.barh(range(len(shown)), costs, color="#c0504d")
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("rank cost of quantizing this layer alone: 1 - SRCC(scores, FP32 scores)")
    ax.set_title(title or f"INT8 per-layer sensitivity ({len(rows)} layers, top {len(shown)})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _short(name: str, keep: int = 48) -> str:
    return name if len(name) <= keep else "…" + name[-keep + 1 :]


def _single_images(feeds: list[dict[str, np.ndarray]], n: int) -> list[dict[str, np.ndarray]]:
    """Up to ``n`` one-image feeds split from batched ones (batch size does not change the SQNR)."""
    singles = []
    for feed in feeds:
        batch = next(iter(feed.values())).shape[0]
        for i in range(batch):
            singles.append({k: v[i : i + 1] for k, v in feed.items()})
            if len(singles) == n:
                return singles
    return singles


def _node(model: Any, name: str) -> Any:
    for node in model.graph.node:
        if node.name == name:
            return node
    raise ConfigError(f"layer {name!r} is not a node of the model (was it quantized from this float model?)")


def _twin(node: Any, output: str) -> Any:
    return copy_node(node, output, f"{node.name or node.op_type}__{output}")
