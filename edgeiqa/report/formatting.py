"""Number formatting, the columns of the report's tables and the recommendation sentence, shared by the
Markdown and HTML renderers (which lay out a :class:`~edgeiqa.report.model.ReportModel`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeiqa.report.recommend import Recommendation

_PRECISION_ALIASES = {"f32": "fp32", "float32": "fp32", "f16": "fp16", "float16": "fp16", "i8": "int8"}


def fmt_ms(value: float | None) -> str:
    """Milliseconds with about three significant digits and no exponent."""
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}" if value >= 0.001 else f"{value:.2e}"


def fmt_rate(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def fmt_count(value: float | None) -> str:
    """Parameters: 7, 12.3 k, 1.52 M."""
    if value is None:
        return "–"
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.0f}"


def fmt_gmacs(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.2e}"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "–"
    for scale, suffix in ((2**30, " GiB"), (2**20, " MiB"), (2**10, " KiB")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.0f} B"


def fmt_mib(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} MiB"


def fmt_corr(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def fmt_ci(value: tuple[float, float] | None) -> str:
    """A 95 % interval: ``[0.741, 0.866]``."""
    return "–" if value is None else f"[{value[0]:.3f}, {value[1]:.3f}]"


def fmt_delta(value: tuple[float, float | None, float | None] | None) -> str:
    """A paired difference with its interval, ``-0.0021 [-0.0060, +0.0013]``, or a bare point estimate."""
    if value is None:
        return "–"
    point, low, high = value
    return f"{point:+.4f}" if low is None or high is None else f"{point:+.4f} [{low:+.4f}, {high:+.4f}]"


def precision_text(entry: dict[str, Any]) -> str:
    """The artifact's precision, plus what actually ran when that differs (OpenVINO bf16, autocast)."""
    stored = str(entry.get("precision"))
    used = str(entry.get("precision_used") or stored)
    if _PRECISION_ALIASES.get(used.lower(), used.lower()) == stored.lower():
        return stored
    return f"{stored} (runs {used})"


def backend_text(entry: dict[str, Any]) -> str:
    """Backend and where it ran: ``onnxruntime (CPU)``, ``openvino (CPU)``, ``torch (cuda)``."""
    runtime = entry.get("runtime") or {}
    backend = str(entry.get("backend"))
    providers = entry.get("providers") or runtime.get("providers")
    if providers:
        where = providers[0].replace("ExecutionProvider", "")
    else:
        where = runtime.get("device")
    return f"{backend} ({where})" if where else backend


Column = tuple[str, str, Callable[[Any], str]]

# (header, row key, formatter): one row per device x artifact x batch size.
COLUMNS: list[Column] = [
    ("device", "device", str),
    ("artifact", "label", str),
    ("backend", "backend", str),
    ("format", "format", str),
    ("precision", "precision", str),
    ("batch", "batch", str),
    ("p50 ms", "p50_ms", fmt_ms),
    ("p90 ms", "p90_ms", fmt_ms),
    ("img/s", "throughput_ips", fmt_rate),
    ("e2e img/s", "e2e_ips", fmt_rate),
    ("GMACs", "gmacs", fmt_gmacs),
    ("params", "params", fmt_count),
    ("size", "size_bytes", fmt_bytes),
    ("peak RSS", "peak_rss_mb", fmt_mib),
    ("SRCC", "srcc", fmt_corr),
    ("SRCC 95% CI", "srcc_ci", fmt_ci),
    ("PLCC", "plcc", fmt_corr),
]

# Per device, each candidate against the FP32 reference on the same images (paired bootstrap).
COMPARISON_COLUMNS: list[Column] = [
    ("device", "device", str),
    ("artifact", "label", str),
    ("precision", "precision", str),
    ("p50 ms (batch 1)", "p50_ms", fmt_ms),
    ("SRCC", "srcc", fmt_corr),
    ("SRCC 95% CI", "srcc_ci", fmt_ci),
    ("ΔSRCC vs FP32 [paired 95% CI]", "delta", fmt_delta),
    ("decision", "decision", str),
]

DEVICE_COLUMNS: list[Column] = [
    ("device", "device", str),
    ("CPU", "cpu", str),
    ("cores log/phys/usable", "cores", str),
    ("RAM", "ram", str),
    ("GPU", "gpu", str),
    ("board / power mode", "board", str),
    ("software", "software", str),
    ("OS", "os", str),
    ("result files", "files", str),
]

NUMERIC = {key for _, key, fmt in COLUMNS + COMPARISON_COLUMNS if fmt is not str} | {"batch"}

ABLATION_COLUMNS: list[Column] = [
    ("from", "source", str),
    ("model", "model", str),
    ("SRCC", "srcc", fmt_corr),
    ("SRCC 95% CI", "srcc_ci", str),
    ("PLCC", "plcc", fmt_corr),
    ("KRCC", "krcc", fmt_corr),
    ("RMSE", "rmse", lambda v: "–" if v is None else f"{v:.3f}"),
    ("MAE", "mae", lambda v: "–" if v is None else f"{v:.3f}"),
    ("n", "n", lambda v: "–" if v is None else f"{v:.0f}"),
    ("ΔSRCC vs student alone", "delta_srcc", lambda v: "–" if v is None else f"{v:+.4f}"),
]


def formatted(row: dict[str, Any], columns: list[Column]) -> list[str]:
    return ["–" if row.get(key) is None else fmt(row[key]) for _, key, fmt in columns]


def recommendation_text(rec: Recommendation) -> str:
    """One paragraph: the choice, why, and the torch eager FP32 comparison when it was measured."""
    if rec.choice is None:
        return f"**{rec.device}**: no recommendation: {rec.reason}."
    c = rec.choice
    text = (
        f"**{rec.device}**: use **{c.label}** ({c.format} {c.precision}, {c.backend}, p50 {fmt_ms(c.p50_ms)} ms "
        f"at batch 1, SRCC {c.srcc:.4f}, {fmt_bytes(c.size_bytes)}): {rec.reason}."
    )
    for t in rec.torch_fp32:
        ratio = t.p50_ms / c.p50_ms if c.p50_ms > 0 else float("inf")
        text += (
            f" Torch eager FP32 ({t.torch_device or 'cpu'}): p50 {fmt_ms(t.p50_ms)} ms, SRCC {t.srcc:.4f}; "
            f"{c.label} is {ratio:.2f}x its speed."
        )
    return text


def rule_text(budget: float) -> str:
    """The recommendation rule in one paragraph, as both pages state it above the recommendations."""
    from edgeiqa.metrics import BOOTSTRAP_RESAMPLES
    from edgeiqa.report.intervals import LEVEL

    return (
        f"Fastest artifact at batch 1 (p50) whose SRCC is within {budget:g} of the device's FP32 student (the "
        "ONNX fp32 artifact, else torch eager fp32), decided by a paired bootstrap of the SRCC difference on "
        f"the same images ({LEVEL:.0%} interval, {BOOTSTRAP_RESAMPLES} resamples): *within* when the whole "
        f"interval lies above -{budget:g}, *outside* when it lies below, *cannot tell* when it straddles "
        f"-{budget:g} (such an artifact is not ranked)."
    )
