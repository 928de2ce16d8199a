"""Resolve ``keep_fp`` names (``head``, ``first_conv``, ``calibration``, ...) to ONNX node names.

The torch exporter names nodes after the module path: ``/model/head/MatMul`` is a MatMul inside the
student's ``head``, ``/calibration/Sigmoid`` part of the score calibration. So a group name matches
every node whose path has that component (``head`` -> ``.../head/...``), a dotted module path matches
that path (``model.fuse`` -> ``/model/fuse/...``), ``first_conv`` is the first convolution fed by
each graph input, ``variance`` the nodes computing a standard deviation (from ``x - mean`` to its
``Sqrt``), and a name starting with ``/`` must be an exact node name.

``auto`` (or ``auto:0.995``) is not a node selection: it asks INT8 exports for accuracy-controlled
mixed precision (:mod:`edgeiqa.export.mixed_precision`) with that rank-agreement budget;
:func:`split_auto` takes it out, :func:`resolve_nodes` ignores it, so FP16 is unaffected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from edgeiqa.errors import ConfigError

FIRST_CONV = "first_conv"
VARIANCE = "variance"
AUTO = "auto"
# Rank agreement SRCC(int8, fp32) ``keep_fp auto`` aims for when no budget is given (issue 12's target).
DEFAULT_AUTO_BUDGET = 0.99
# Ops a standard deviation is computed with, walked up from its Sqrt: Sqrt <- Add(eps) <- ReduceMean
# <- Pow <- Sub(x - mean). 8-bit deviations and squared deviations lose the small variances that carry
# noise and blur statistics (EQCNet's std pooling): NNCF quantizes these ops unless told not to.
_VARIANCE_OPS = ("Add", "ReduceMean", "ReduceSum", "Pow", "Mul", "Clip", "Max", "Div")
# Groups that may legitimately match nothing (a source without score calibration has no such nodes).
OPTIONAL_GROUPS = ("calibration", VARIANCE)


def resolve_nodes(model: Any, keep: Sequence[str]) -> list[str]:
    """Node names of ``model`` (an ``onnx.ModelProto``) selected by ``keep``, in graph order.

    A name that selects nothing is a :class:`ConfigError` (a typo must not silently quantize the
    head), except the optional groups.
    """
    nodes = list(model.graph.node)
    selected: set[str] = set()
    for name in split_auto(keep)[0]:
        found = _select(nodes, model, name)
        if not found and name not in OPTIONAL_GROUPS:
            examples = ", ".join(n.name for n in nodes[:3])
            raise ConfigError(
                f"keep_fp entry {name!r} matches no node of the ONNX graph (node names look like {examples}); "
                f"use a module name (head, backbone), a dotted path (model.fuse), {FIRST_CONV!r} or an exact node name"
            )
        selected.update(found)
    return [n.name for n in nodes if n.name in selected]


def split_auto(keep: Sequence[str]) -> tuple[tuple[str, ...], float | None]:
    """``keep`` without its ``auto[:budget]`` entry, and that budget (None when there is no such entry)."""
    rest, budget = [], None
    for name in keep:
        if name != AUTO and not name.startswith(AUTO + ":"):
            rest.append(name)
            continue
        text = name[len(AUTO) + 1 :]
        try:
            value = float(text) if text else DEFAULT_AUTO_BUDGET
        except ValueError:
            value = float("nan")
        if not 0.0 < value <= 1.0:  # also refuses nan
            raise ConfigError(
                f"keep_fp {name!r}: the budget after 'auto:' must be a rank agreement in (0, 1], "
                f"e.g. auto:{DEFAULT_AUTO_BUDGET}"
            )
        budget = value
    return tuple(rest), budget


def name_unnamed_nodes(model: Any) -> int:
    """Name every unnamed node after its first output (``/model/x/Mul_output_0`` -> ``/model/x/Mul``).

    ORT's graph optimisations leave some nodes nameless (HardSwish split into HardSigmoid + Mul);
    ``nodes_to_exclude`` and the per-layer sensitivity address nodes by name. Returns how many were named.
    """
    taken = {n.name for n in model.graph.node if n.name}
    named = 0
    for index, node in enumerate(model.graph.node):
        if node.name:
            continue
        base = node.output[0].removesuffix("_output_0") if node.output else f"{node.op_type}_{index}"
        name, k = base, 1
        while name in taken:
            name, k = f"{base}__{k}", k + 1
        node.name = name
        taken.add(name)
        named += 1
    return named


def _select(nodes: list[Any], model: Any, name: str) -> set[str]:
    if name == FIRST_CONV:
        return set(first_convs(model))
    if name == VARIANCE:
        return set(variance_nodes(model))
    if name.startswith("/"):
        return {n.name for n in nodes if n.name == name}
    path = "/" + name.strip("/").replace(".", "/") + "/"
    return {n.name for n in nodes if path in n.name + "/" and n.name}


def first_convs(model: Any) -> list[str]:
    """For each graph input, the first Conv node (graph order) whose input derives from it."""
    initializers = {i.name for i in model.graph.initializer}
    found = []
    for graph_input in model.graph.input:
        if graph_input.name in initializers:
            continue
        reached = {graph_input.name}
        for node in model.graph.node:  # ONNX graphs are topologically sorted
            if any(i in reached for i in node.input):
                if node.op_type == "Conv":
                    found.append(node.name)
                    break
                reached.update(node.output)
    return found


def variance_nodes(model: Any) -> list[str]:
    """Every ``Sqrt`` and the chain above it through variance ops, down to and including the ``Sub``."""
    producer = {out: node for node in model.graph.node for out in node.output}
    found: list[str] = []
    for node in model.graph.node:
        if node.op_type != "Sqrt":
            continue
        current, steps = node, 0
        while current is not None and steps < 8:
            found.append(current.name)
            if current.op_type == "Sub":
                break
            parents = [producer[i] for i in current.input if i in producer]
            parents = [p for p in parents if p.op_type in (*_VARIANCE_OPS, "Sub")]
            current, steps = (parents[0] if len(parents) == 1 else None), steps + 1
    return found


def consumers(model: Any) -> dict[str, list[Any]]:
    """Tensor name -> the nodes reading it."""
    table: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            if name:
                table.setdefault(name, []).append(node)
    return table


def unshare_constants(model: Any, blocked: Iterable[str]) -> int:
    """Give blocked (kept-float32) nodes their own copy of constants they share with converted nodes.

    ``onnxconverter_common.float16`` converts a shared initializer to fp16 for everyone, which leaves
    the blocked node with a float16 operand next to float32 ones (a mixed-type node ONNX Runtime
    refuses). Returns how many constants were copied.
    """
    blocked = set(blocked)
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    copied = 0
    for tensor, readers in consumers(model).items():
        if tensor not in initializers and tensor not in constants:
            continue
        mine = [n for n in readers if n.name in blocked]
        if not mine or len(mine) == len(readers):
            continue
        twin = f"{tensor}__fp32"
        if tensor in initializers:
            clone = type(initializers[tensor])()
            clone.CopyFrom(initializers[tensor])
            clone.name = twin
            graph.initializer.append(clone)
        else:
            source = constants[tensor]
            graph.node.insert(list(graph.node).index(source) + 1, copy_node(source, twin, f"{source.name}__fp32"))
        for node in mine:
            node.input[:] = [twin if i == tensor else i for i in node.input]
        copied += 1
    return copied


def copy_node(node: Any, output: str, name: str) -> Any:
    """A copy of an ONNX node that writes ``output`` instead, under a new ``name``."""
    clone = type(node)()
    clone.CopyFrom(node)
    clone.output[:] = [output]
    clone.name = name
    return clone
