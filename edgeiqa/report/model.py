"""The report as data: merged result files, the rows of every table, the recommendations and intervals.

:func:`build_report_model` computes everything once; the Markdown (:mod:`.writer`) and HTML
(:mod:`.html`) renderers only lay out a :class:`ReportModel`, so the two never disagree and
neither imports the other. A file that is missing, not JSON or not ``edgeiqa.bench/1`` is skipped and
named in :attr:`MergedRuns.skipped`; runs with the same device name merge into one device.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeiqa.bench.ablation import ABLATION_MODELS
from edgeiqa.bench.schema import BenchResult, ResultError, load_result
from edgeiqa.report.formatting import backend_text, fmt_bytes, precision_text
from edgeiqa.report.intervals import Interval, srcc_interval
from edgeiqa.report.pareto import Point
from edgeiqa.report.recommend import DEFAULT_BUDGET, Recommendation, recommend


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

    def datasets_by_device(self) -> dict[str, list[dict[str, Any] | None]]:
        """For each entry of :meth:`by_device`, in the same order, the dataset block of its run."""
        groups: dict[str, list[dict[str, Any] | None]] = {}
        for _, run in self.runs:
            groups.setdefault(run.device_name, []).extend([run.dataset] * len(run.results))
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


def expand_result_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given; a folder stands for the ``*.json`` files in it."""
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        out += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return out


def merge_results(paths: Sequence[str | os.PathLike]) -> MergedRuns:
    """Load every result file it can; the others land in ``skipped`` with a one-line reason."""
    merged = MergedRuns()
    for path in expand_result_paths(paths):
        try:
            merged.runs.append((path, load_result(path)))
        except ResultError as exc:
            merged.skipped.append((str(path), str(exc)))
    return merged


def accuracy_intervals(merged: MergedRuns) -> dict[tuple[str, str], Interval]:
    """(device, label) -> SRCC with its bootstrap 95 % interval, for entries that kept per-image scores."""
    out: dict[tuple[str, str], Interval] = {}
    for _, run in merged.runs:
        mos = (run.dataset or {}).get("mos")
        for entry in run.results:
            scores = entry.get("scores")
            if (
                entry.get("error")
                or not isinstance(scores, list)
                or not isinstance(mos, list)
                or len(scores) != len(mos)
            ):
                continue
            pairs = [
                (s, m) for s, m in zip(scores, mos) if isinstance(s, (int, float)) and s == s and abs(s) != float("inf")
            ]
            if len(pairs) >= 4:
                out[(run.device_name, entry["label"])] = srcc_interval([p for p, _ in pairs], [m for _, m in pairs])
    return out


def table_rows(merged: MergedRuns, intervals: dict[tuple[str, str], Interval] | None = None) -> list[dict[str, Any]]:
    """One row per device x artifact x batch size that was timed, with raw values (see COLUMNS)."""
    rows = []
    for device, entries in merged.by_device().items():
        for entry in entries:
            if entry.get("error"):
                continue
            acc = entry.get("accuracy") or {}
            e2e = entry.get("end_to_end") or {}
            ci = (intervals or {}).get((device, entry["label"]))
            common = {
                "device": device,
                "label": entry["label"],
                "backend": backend_text(entry),
                "format": entry["format"],
                "precision": precision_text(entry),
                "gmacs": entry.get("gmacs"),
                "params": entry.get("params"),
                "size_bytes": entry.get("size_bytes"),
                "peak_rss_mb": entry.get("peak_rss_mb"),
                "srcc": acc.get("srcc"),
                "plcc": acc.get("plcc"),
                "srcc_ci": (ci.low, ci.high) if ci is not None else None,
                "e2e_ips": e2e.get("images_per_s"),
            }
            for lat in entry["latency"]:
                if not lat.get("error"):
                    rows.append(
                        {
                            **common,
                            "batch": lat["batch"],
                            "p50_ms": lat["p50_ms"],
                            "p90_ms": lat["p90_ms"],
                            "throughput_ips": lat["throughput_ips"],
                        }
                    )
    return rows


def comparison_rows(recs: list[Recommendation], intervals: dict[tuple[str, str], Interval]) -> list[dict[str, Any]]:
    """Per device, every candidate against the FP32 reference: the paired ΔSRCC interval and the decision."""
    rows = []
    for rec in recs:
        if rec.reference is None:
            continue
        ref = rec.reference
        rows.append(
            {
                "device": rec.device,
                "label": ref.label,
                "precision": ref.precision,
                "p50_ms": ref.p50_ms,
                "srcc": ref.srcc,
                "srcc_ci": _ci(intervals.get((rec.device, ref.label))),
                "delta": None,
                "decision": "reference",
                "basis": "",
            }
        )
        for comp in sorted(rec.comparisons, key=lambda c: c.candidate.p50_ms):
            c, paired = comp.candidate, comp.paired
            rows.append(
                {
                    "device": rec.device,
                    "label": c.label,
                    "precision": c.precision,
                    "p50_ms": c.p50_ms,
                    "srcc": c.srcc,
                    "srcc_ci": _ci(intervals.get((rec.device, c.label))),
                    "delta": (paired.difference.value, paired.difference.low, paired.difference.high)
                    if paired
                    else (c.srcc - ref.srcc, None, None),
                    "decision": _decision_text(comp.decision, rec.budget, paired is not None),
                    "basis": comp.basis,
                }
            )
    return rows


def _ci(interval: Interval | None) -> tuple[float, float] | None:
    return (interval.low, interval.high) if interval is not None else None


def _decision_text(decision: str, budget: float, paired: bool) -> str:
    text = {
        "within": f"within {budget:g}",
        "outside": f"outside {budget:g}",
        "undecided": f"cannot tell (interval straddles -{budget:g})",
    }[decision]
    return text if paired else f"{text}, point estimate"


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
        for model in ABLATION_MODELS:
            metrics = ablation.get(model)
            if isinstance(metrics, dict):
                delta = (
                    metrics.get("srcc") - alone
                    if model == "distilled" and alone is not None and metrics.get("srcc") is not None
                    else None
                )
                ci = (
                    f"[{metrics['srcc_low']:.3f}, {metrics['srcc_high']:.3f}]"
                    if "srcc_low" in metrics and "srcc_high" in metrics
                    else None
                )
                rows.append(
                    {
                        "source": f"{run.device_name} ({path.name})",
                        "model": model,
                        **metrics,
                        "srcc_ci": ci,
                        "delta_srcc": delta,
                    }
                )
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
            points.append(
                Point(
                    entry["label"],
                    float(lat["p50_ms"]),
                    float(entry["accuracy"]["srcc"]),
                    entry["format"],
                    str(entry["precision"]).lower(),
                )
            )
        panels[device] = points
    return panels


def device_rows(merged: MergedRuns) -> list[dict[str, str]]:
    """Key facts of each device for the devices table."""
    rows = []
    for name, (info, files) in merged.devices().items():
        libs = info.get("libraries") or {}
        gpus = info.get("gpus") or []
        cores = "/".join(str(info.get(k, "?")) for k in ("cores_logical", "cores_physical", "cores_usable"))
        rows.append(
            {
                "device": name,
                "cpu": str(info.get("cpu_model") or "–"),
                "cores": cores,
                "ram": fmt_bytes(info.get("ram_bytes")),
                "gpu": ", ".join(f"{g.get('name')} (driver {g.get('driver')})" for g in gpus) or "–",
                "board": " · ".join(str(info[k]).splitlines()[0] for k in ("board_model", "nvpmodel") if info.get(k))
                or "–",
                "software": ", ".join(
                    f"{k} {v}"
                    for k, v in libs.items()
                    if k in ("onnxruntime", "openvino", "torch", "tensorrt", "numpy")
                ),
                "os": f"{info.get('os') or '–'}, Python {info.get('python') or '?'}",
                "files": ", ".join(files),
            }
        )
    return rows


def run_lines(merged: MergedRuns) -> list[str]:
    """One Markdown bullet per run: file, device, settings, data."""
    lines = []
    for path, run in merged.runs:
        s, d = run.settings, run.dataset
        data = (
            f"{d.get('name')} {d.get('root', '')} split {d.get('split_used', d.get('split'))}, n={d.get('n')}"
            if d
            else "no dataset (no accuracy)"
        )
        lines.append(
            f"- `{path.name}` ({run.device_name}, {run.created}): batches {s.get('batches')}, "
            f"min {s.get('min_seconds')} s per batch size, warm-up {s.get('warmup')}, threads "
            f"{s.get('threads') or 'runtime default'}; data: {data}"
        )
    return lines


@dataclass
class ReportModel:
    """Everything a renderer shows, computed once (see module doc)."""

    merged: MergedRuns
    budget: float
    recommendations: list[Recommendation]
    rows: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    ablation: list[dict[str, Any]]
    devices: list[dict[str, str]]
    runs: list[str]
    failures: list[tuple[str, str, str]]
    timed: str | None
    created: str
    pareto: Path | None = None

    @property
    def chosen(self) -> set[tuple[str, str]]:
        return {(r.device, r.choice.label) for r in self.recommendations if r.choice is not None}


def build_report_model(merged: MergedRuns, budget: float = DEFAULT_BUDGET, pareto: Path | None = None) -> ReportModel:
    """Compute every table, interval and recommendation of ``merged``."""
    recs = recommend(merged.by_device(), budget, merged.datasets_by_device())
    intervals = accuracy_intervals(merged)
    timed = next((run.settings.get("timed") for _, run in merged.runs if run.settings.get("timed")), None)
    return ReportModel(
        merged=merged,
        budget=budget,
        recommendations=recs,
        rows=table_rows(merged, intervals),
        comparisons=comparison_rows(recs, intervals),
        ablation=ablation_rows(merged),
        devices=device_rows(merged),
        runs=run_lines(merged),
        failures=merged.failures(),
        timed=timed,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        pareto=pareto,
    )
