"""Number formatting and the columns of the main report table, shared by the Markdown and HTML writers."""

from __future__ import annotations

from typing import Any, Callable

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
    ("PLCC", "plcc", fmt_corr),
]
NUMERIC = {key for _, key, fmt in COLUMNS if fmt is not str} | {"batch"}

ABLATION_COLUMNS: list[Column] = [
    ("from", "source", str),
    ("model", "model", str),
    ("SRCC", "srcc", fmt_corr),
    ("PLCC", "plcc", fmt_corr),
    ("KRCC", "krcc", fmt_corr),
    ("RMSE", "rmse", lambda v: "–" if v is None else f"{v:.3f}"),
    ("MAE", "mae", lambda v: "–" if v is None else f"{v:.3f}"),
    ("n", "n", lambda v: "–" if v is None else f"{v:.0f}"),
    ("ΔSRCC vs student alone", "delta_srcc", lambda v: "–" if v is None else f"{v:+.4f}"),
]


def formatted(row: dict[str, Any], columns: list[Column]) -> list[str]:
    return ["–" if row.get(key) is None else fmt(row[key]) for _, key, fmt in columns]
