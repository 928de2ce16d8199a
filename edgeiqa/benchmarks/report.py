"""``edgeiqa report``: merge result files from any number of devices into one report folder.

    report/report.md    the main table, the recommendation per device, the ablation, the devices
    report/report.html  the same, self-contained (inline CSS, the plot as a data URI)
    report/pareto.png   SRCC vs batch-1 latency, one panel per device, Pareto front drawn

A file that is missing, not JSON or not ``edgeiqa.bench/1`` is skipped and named in
:attr:`MergedRuns.skipped`; runs with the same device name merge into one device.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from edgeiqa.benchmarks.pareto import Point, plot_pareto
from edgeiqa.benchmarks.recommend import DEFAULT_BUDGET, Recommendation, recommend
from edgeiqa.benchmarks.report_format import (
    ABLATION_COLUMNS, COLUMNS, NUMERIC, backend_text, fmt_bytes, fmt_ms, formatted, precision_text,
)
from edgeiqa.benchmarks.schema import BenchResult, ResultError, load_result
from edgeiqa.fileio import atomic_write_text
from edgeiqa.errors import ConfigError

PARETO_NAME = "pareto.png"


@dataclass
class MergedRuns:
    """Result files that loaded, and the ones skipped with the reason."""

    runs: list[tuple[Path, BenchResult]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def by_device(self) -> dict[str, list[dict[str, Any]]]:
        """Every entry of every run, grouped by device name in order of first appearance."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for _, run in self.runs:
            groups.setdefault(run.device_name, []).extend(run.results)
        return groups

    def devices(self) -> dict[str, tuple[dict[str, Any], list[str]]]:
        """Device name -> (its metadata from the first run, the files it came from)."""
        out: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for path, run in self.runs:
            out.setdefault(run.device_name, (run.device, []))[1].append(path.name)
        return out

    def failures(self) -> list[tuple[str, str, str]]:
        """(device, artifact label, error) of every artifact or batch size that failed."""
        out = []
        for _, run in self.runs:
            for entry in run.results:
                if entry.get("error"):
                    out.append((run.device_name, entry["label"], entry["error"]))
                for lat in entry.get("latency") or []:
                    if lat.get("error"):
                        out.append((run.device_name, f"{entry['label']} (batch {lat['batch']})", lat["error"]))
        return out


def expand_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given; a folder stands for the ``*.json`` files in it."""
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        out += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return out


def merge_results(paths: Sequence[str | os.PathLike]) -> MergedRuns:
    """Load every result file it can; the others land in ``skipped`` with a one-line reason."""
    merged = MergedRuns()
    for path in expand_paths(paths):
        try:
            merged.runs.append((path, load_result(path)))
        except ResultError as exc:
            merged.skipped.append((str(path), str(exc)))
    return merged


def table_rows(merged: MergedRuns) -> list[dict[str, Any]]:
    """One row per device x artifact x batch size that was timed, with raw values (see COLUMNS)."""
    rows = []
    for device, entries in merged.by_device().items():
        for entry in entries:
            if entry.get("error"):
                continue
            acc = entry.get("accuracy") or {}
            e2e = entry.get("end_to_end") or {}
            common = {"device": device, "label": entry["label"], "backend": backend_text(entry),
                      "format": entry["format"], "precision": precision_text(entry), "gmacs": entry.get("gmacs"),
                      "params": entry.get("params"), "size_bytes": entry.get("size_bytes"),
                      "peak_rss_mb": entry.get("peak_rss_mb"), "srcc": acc.get("srcc"), "plcc": acc.get("plcc"),
                      "e2e_ips": e2e.get("images_per_s")}
            for lat in entry["latency"]:
                if not lat.get("error"):
                    rows.append({**common, "batch": lat["batch"], "p50_ms": lat["p50_ms"], "p90_ms": lat["p90_ms"],
                                 "throughput_ips": lat["throughput_ips"]})
    return rows


def ablation_rows(merged: MergedRuns) -> list[dict[str, Any]]:
    """Rows of the distilled / student-alone / teacher table; identical ablations are shown once."""
    rows, seen = [], set()
    for path, run in merged.runs:
        ablation = run.ablation
        if not ablation:
            continue
        key = json.dumps({k: v for k, v in ablation.items() if k != "source"}, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        alone = (ablation.get("student_only") or {}).get("srcc")
        for model in ("distilled", "student_only", "teacher"):
            metrics = ablation.get(model)
            if isinstance(metrics, dict):
                delta = metrics.get("srcc") - alone if model == "distilled" and alone is not None and \
                    metrics.get("srcc") is not None else None
                rows.append({"source": f"{run.device_name} ({path.name})", "model": model, **metrics,
                             "delta_srcc": delta})
    return rows


def pareto_points(merged: MergedRuns) -> dict[str, list[Point]]:
    """Per device, one point per artifact with an accuracy and a batch-1 latency."""
    panels: dict[str, list[Point]] = {}
    for device, entries in merged.by_device().items():
        points = []
        for entry in entries:
            lat = next((x for x in entry.get("latency") or [] if x.get("batch") == 1 and not x.get("error")), None)
            if entry.get("error") or lat is None or not entry.get("accuracy"):
                continue
            points.append(Point(entry["label"], float(lat["p50_ms"]), float(entry["accuracy"]["srcc"]),
                                entry["format"], str(entry["precision"]).lower()))
        panels[device] = points
    return panels


@dataclass
class Report:
    """What :func:`write_report` produced."""

    out_dir: Path
    merged: MergedRuns
    recommendations: list[Recommendation]
    rows: list[dict[str, Any]]
    markdown: Path
    html: Path
    pareto: Path | None


def write_report(paths: Sequence[str | os.PathLike] | MergedRuns, out_dir: str | os.PathLike,
                 budget: float = DEFAULT_BUDGET) -> Report:
    """Merge ``paths`` (or use runs merged already) and write report.md, report.html and pareto.png.

    Raises :class:`ConfigError` when no file could be merged (``merged.skipped`` says why for each).
    """
    from edgeiqa.benchmarks.report_html import render_html

    if budget < 0:
        raise ConfigError(f"the accuracy budget must be >= 0, got {budget}")
    merged = paths if isinstance(paths, MergedRuns) else merge_results(paths)
    if not merged.runs:
        raise ConfigError("no benchmark result could be merged" +
                          (f" ({len(merged.skipped)} file(s) skipped)" if merged.skipped else " (no files given)"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recs = recommend(merged.by_device(), budget)
    rows = table_rows(merged)
    pareto = plot_pareto(pareto_points(merged), out / PARETO_NAME)
    if pareto is None and (out / PARETO_NAME).exists():
        (out / PARETO_NAME).unlink()  # a stale plot from an earlier report would describe other runs
    markdown = out / "report.md"
    atomic_write_text(markdown, render_markdown(merged, recs, rows, pareto))
    html = out / "report.html"
    atomic_write_text(html, render_html(merged, recs, rows, pareto))
    return Report(out, merged, recs, rows, markdown, html, pareto)


# ------------------------------------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]], columns=COLUMNS) -> list[str]:
    header = [name for name, _, _ in columns]
    align = ["---:" if key in NUMERIC else "---" for _, key, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in formatted(row, columns)) + " |" for row in rows]
    return lines


def recommendation_text(rec: Recommendation) -> str:
    """One paragraph: the choice, why, and the torch eager FP32 comparison when it was measured."""
    if rec.choice is None:
        return f"**{rec.device}**: no recommendation: {rec.reason}."
    c = rec.choice
    text = (f"**{rec.device}**: use **{c.label}** ({c.format} {c.precision}, {c.backend}, p50 {fmt_ms(c.p50_ms)} ms "
            f"at batch 1, SRCC {c.srcc:.4f}, {fmt_bytes(c.size_bytes)}): {rec.reason}.")
    for t in rec.torch_fp32:
        ratio = t.p50_ms / c.p50_ms if c.p50_ms > 0 else float("inf")
        text += (f" Torch eager FP32 ({t.torch_device or 'cpu'}): p50 {fmt_ms(t.p50_ms)} ms, SRCC {t.srcc:.4f}; "
                 f"{c.label} is {ratio:.2f}x its speed.")
    return text


def device_rows(merged: MergedRuns) -> list[dict[str, str]]:
    """Key facts of each device for the devices table."""
    rows = []
    for name, (info, files) in merged.devices().items():
        libs = info.get("libraries") or {}
        gpus = info.get("gpus") or []
        cores = "/".join(str(info.get(k, "?")) for k in ("cores_logical", "cores_physical", "cores_usable"))
        rows.append({
            "device": name, "cpu": str(info.get("cpu_model") or "–"), "cores": cores,
            "ram": fmt_bytes(info.get("ram_bytes")),
            "gpu": ", ".join(f"{g.get('name')} (driver {g.get('driver')})" for g in gpus) or "–",
            "board": " · ".join(str(info[k]).splitlines()[0] for k in ("board_model", "nvpmodel") if info.get(k)) or "–",
            "software": ", ".join(f"{k} {v}" for k, v in libs.items() if k in ("onnxruntime", "openvino", "torch",
                                                                                 "tensorrt", "numpy")),
            "os": f"{info.get('os') or '–'}, Python {info.get('python') or '?'}", "files": ", ".join(files),
        })
    return rows


DEVICE_COLUMNS = [("device", "device", str), ("CPU", "cpu", str), ("cores log/phys/usable", "cores", str),
                  ("RAM", "ram", str), ("GPU", "gpu", str), ("board / power mode", "board", str),
                  ("software", "software", str), ("OS", "os", str), ("result files", "files", str)]


def run_lines(merged: MergedRuns) -> list[str]:
    lines = []
    for path, run in merged.runs:
        s, d = run.settings, run.dataset
        data = (f"{d.get('name')} {d.get('root', '')} split {d.get('split_used', d.get('split'))}, n={d.get('n')}"
                if d else "no dataset (no accuracy)")
        lines.append(f"- `{path.name}` ({run.device_name}, {run.created}): batches {s.get('batches')}, "
                     f"min {s.get('min_seconds')} s per batch size, warm-up {s.get('warmup')}, threads "
                     f"{s.get('threads') or 'runtime default'}; data: {data}")
    return lines


def render_markdown(merged: MergedRuns, recs: list[Recommendation], rows: list[dict[str, Any]],
                    pareto: Path | None) -> str:
    budget = recs[0].budget if recs else DEFAULT_BUDGET
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    timed = next((run.settings.get("timed") for _, run in merged.runs if run.settings.get("timed")), None)
    lines = ["# edgeiqa benchmark report", "", f"{len(merged.runs)} run(s) on {len(merged.devices())} device(s), "
             f"generated {created}.", ""]
    lines += ["## Recommendation per device", "",
              f"Fastest artifact at batch 1 (p50) whose SRCC is within {budget:g} of the device's FP32 student "
              "(the ONNX fp32 artifact, else torch eager fp32).", ""]
    lines += [f"- {recommendation_text(r)}" for r in recs] + [""]
    lines += ["## Results", ""]
    if timed:
        lines += [f"Latency and img/s: {timed}. e2e img/s: whole file -> score passes over the dataset.", ""]
    lines += markdown_table(rows) + [""]
    if pareto is not None:
        lines += [f"![SRCC vs latency per device]({pareto.name})", ""]
    abl = ablation_rows(merged)
    if abl:
        lines += ["## Distillation ablation", "", "Test-split metrics of the training run: the distilled student, "
                  "the same student trained on labels alone, and the teacher.", ""]
        lines += markdown_table(abl, ABLATION_COLUMNS) + [""]
    lines += ["## Devices", ""] + markdown_table(device_rows(merged), DEVICE_COLUMNS) + [""]
    lines += ["## Runs", ""] + run_lines(merged) + [""]
    failures = merged.failures()
    if failures or merged.skipped:
        lines += ["## Problems", ""]
        lines += [f"- {dev} / {label}: {_md_cell(err)}" for dev, label, err in failures]
        lines += [f"- skipped: {_md_cell(reason)}" for _, reason in merged.skipped] + [""]
    return "\n".join(lines)
