"""The accuracy/speed trade-off per device: SRCC vs batch-1 latency (p50), with the Pareto front.

A point is on the front when no other point on the same device is at least as fast *and* at least as
accurate, and strictly better in one of the two: the artifacts worth choosing from. The figure is
drawn with matplotlib's object API on an Agg canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeiqa.errors import require

# One marker per format, one colour per precision, so a panel reads without its legend too.
_MARKERS = {"onnx": "o", "openvino": "s", "tensorrt": "D", "coreml": "^", "torch": "X"}
_COLOURS = {"fp32": "#1f77b4", "fp16": "#ff7f0e", "int8": "#2ca02c", "bf16": "#9467bd", "mixed": "#8c564b"}
_MAX_COLUMNS = 2


@dataclass(frozen=True)
class Point:
    """One artifact on one device: ``latency_ms`` is the batch-1 p50."""

    label: str
    latency_ms: float
    srcc: float
    format: str = "onnx"
    precision: str = "fp32"


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points (lower latency and higher SRCC are better), fastest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i].latency_ms, -points[i].srcc))
    front, best_srcc = [], -math.inf
    for i in order:
        # Sorted by latency: a point survives only if it beats the accuracy of every faster one.
        if points[i].srcc > best_srcc:
            front.append(i)
            best_srcc = points[i].srcc
    return front


# Label positions tried in turn (offset in points, horizontal alignment) until one overlaps nothing.
_LABEL_SPOTS = (
    (7, 8, "left"),
    (7, -14, "left"),
    (-7, 8, "right"),
    (-7, -14, "right"),
    (7, 22, "left"),
    (7, -28, "left"),
    (-7, 22, "right"),
    (-7, -28, "right"),
    (0, 36, "center"),
    (0, -42, "center"),
)


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels(ax, points: Sequence[Point]) -> None:
    """Greedy placement: each label takes the first spot that overlaps no marker, label or axes edge."""
    from matplotlib.text import Text

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    markers = [ax.transData.transform((p.latency_ms, p.srcc)) for p in points]
    taken = [_marker_box(x, y) for x, y in markers]
    for p in points:
        best, best_cost = None, None
        for dx, dy, align in _LABEL_SPOTS:
            text = ax.annotate(
                p.label,
                (p.latency_ms, p.srcc),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=align,
                va="center",
                fontsize=8.5,
                zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                # A far label gets a leader line so it is clear which marker it names.
                arrowprops={"arrowstyle": "-", "color": "#777777", "lw": 0.6, "shrinkB": 5} if abs(dy) > 15 else None,
            )
            text.set_in_layout(False)  # labels must not make the layout engine move the axes after placement
            text.update_positions(renderer)
            box = Text.get_window_extent(text, renderer)  # the text alone: an annotation's own extent adds its leader
            outside = box.width * box.height - _overlap(box, frame)
            cost = sum(_overlap(box, other) for other in taken) + 4 * outside
            if best_cost is None or cost < best_cost:
                if best is not None:
                    best[0].remove()
                best, best_cost = (text, box), cost
            else:
                text.remove()
            if cost == 0:
                break
        taken.append(best[1])


def _marker_box(x: float, y: float, r: float = 6.0):
    from matplotlib.transforms import Bbox

    return Bbox([[x - r, y - r], [x + r, y + r]])


def _draw_panel(ax, device: str, points: Sequence[Point]) -> None:
    for p in points:
        ax.scatter(
            p.latency_ms,
            p.srcc,
            s=70,
            marker=_MARKERS.get(p.format, "o"),
            color=_COLOURS.get(p.precision, "#7f7f7f"),
            edgecolors="black",
            linewidths=0.6,
            zorder=3,
        )
    front = [points[i] for i in pareto_front(points)]
    if len(front) > 1:
        ax.step(
            [p.latency_ms for p in front],
            [p.srcc for p in front],
            where="post",
            linestyle="--",
            color="#d62728",
            linewidth=1.2,
            zorder=2,
        )
    _legend(ax, points, len(front) > 1)
    latencies = [p.latency_ms for p in points]
    if min(latencies) > 0 and max(latencies) / min(latencies) > 20:
        ax.set_xscale("log")
    _pad_limits(ax, points)
    ax.set_title(device, fontsize=11)
    ax.set_xlabel("latency p50 at batch 1 (ms)")
    ax.set_ylabel("SRCC")
    ax.grid(True, alpha=0.3)


def _legend(ax, points: Sequence[Point], with_front: bool) -> None:
    from matplotlib.lines import Line2D

    kinds = list(dict.fromkeys((p.format, p.precision) for p in points))
    handles = [
        Line2D(
            [],
            [],
            linestyle="none",
            marker=_MARKERS.get(f, "o"),
            markersize=7,
            markeredgecolor="black",
            markerfacecolor=_COLOURS.get(prec, "#7f7f7f"),
            label=f"{f} {prec}",
        )
        for f, prec in kinds
    ]
    if with_front:
        handles.append(Line2D([], [], linestyle="--", color="#d62728", label="Pareto front"))
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.85)


def _pad_limits(ax, points: Sequence[Point]) -> None:
    ys = [p.srcc for p in points]
    span = max(max(ys) - min(ys), 0.01)
    # Room above for labels, but no tick beyond SRCC's maximum of 1 by more than that room.
    ax.set_ylim(min(ys) - 0.35 * span, min(max(ys) + 0.35 * span, 1.0 + 0.2 * span))
    xs = [p.latency_ms for p in points]
    if ax.get_xscale() == "linear":
        xspan = max(max(xs) - min(xs), max(xs) * 0.1, 1e-6)
        ax.set_xlim(max(0.0, min(xs) - 0.25 * xspan), max(xs) + 0.25 * xspan)
    else:
        ax.set_xlim(min(xs) / 2.5, max(xs) * 2.5)


def plot_pareto(panels: dict[str, Sequence[Point]], path: str | Path, dpi: int = 110) -> Path | None:
    """Write one panel per device (devices without points are left out); None when nothing to draw."""
    panels = {name: pts for name, pts in panels.items() if pts}
    if not panels:
        return None
    require("matplotlib", "report", "the Pareto plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(_MAX_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(6.4 * cols, 4.6 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (device, points) in zip(axes.flat, panels.items()):
        _draw_panel(ax, device, points)
    fig.canvas.draw()  # settle the constrained layout so label boxes are measured where they will be drawn
    for ax, points in zip(axes.flat, panels.values()):
        _place_labels(ax, points)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle("SRCC vs latency (batch 1, p50) per device", fontsize=12)
    path = Path(path)
    fig.savefig(path, dpi=dpi, format="png")
    return path
