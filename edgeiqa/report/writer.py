"""``edgeiqa report``: merge result files from any number of devices into one report folder.

    report/report.md    the main table, the recommendation per device, the ablation, the devices
    report/report.html  the same, self-contained (inline CSS, the plot as a data URI)
    report/pareto.png   SRCC vs batch-1 latency, one panel per device, Pareto front drawn

Both pages render one :class:`~edgeiqa.report.model.ReportModel` (computed once: merged
runs, tables, bootstrap intervals, paired recommendations); this module writes the files and holds
the Markdown renderer, :mod:`.html` the HTML one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeiqa.errors import ConfigError
from edgeiqa.fileio import atomic_write_text
from edgeiqa.report.formatting import (
    ABLATION_COLUMNS,
    COLUMNS,
    COMPARISON_COLUMNS,
    DEVICE_COLUMNS,
    NUMERIC,
    formatted,
    recommendation_text,
    rule_text,
)
from edgeiqa.report.html import render_html
from edgeiqa.report.model import (  # noqa: F401 - re-exported: the report's public names
    MergedRuns,
    ReportModel,
    ablation_rows,
    build_report_model,
    device_rows,
    expand_result_paths,
    merge_results,
    pareto_points,
    run_lines,
    table_rows,
)
from edgeiqa.report.pareto import plot_pareto
from edgeiqa.report.recommend import DEFAULT_BUDGET, Recommendation

PARETO_NAME = "pareto.png"


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
    model: ReportModel | None = None


def write_report(
    paths: Sequence[str | os.PathLike] | MergedRuns, out_dir: str | os.PathLike, budget: float = DEFAULT_BUDGET
) -> Report:
    """Merge ``paths`` (or use runs merged already) and write report.md, report.html and pareto.png.

    Raises :class:`ConfigError` when no file could be merged (``merged.skipped`` says why for each).
    """
    if budget < 0:
        raise ConfigError(f"the accuracy budget must be >= 0, got {budget}")
    merged = paths if isinstance(paths, MergedRuns) else merge_results(paths)
    if not merged.runs:
        raise ConfigError(
            "no benchmark result could be merged"
            + (f" ({len(merged.skipped)} file(s) skipped)" if merged.skipped else " (no files given)")
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pareto = plot_pareto(pareto_points(merged), out / PARETO_NAME)
    if pareto is None and (out / PARETO_NAME).exists():
        (out / PARETO_NAME).unlink()  # a stale plot from an earlier report would describe other runs
    model = build_report_model(merged, budget, pareto)
    markdown = out / "report.md"
    atomic_write_text(markdown, render_markdown(model))
    html = out / "report.html"
    atomic_write_text(html, render_html(model))
    return Report(out, merged, model.recommendations, model.rows, markdown, html, pareto, model)


# ------------------------------------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]], columns=COLUMNS) -> list[str]:
    header = [name for name, _, _ in columns]
    align = ["---:" if key in NUMERIC else "---" for _, key, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in formatted(row, columns)) + " |" for row in rows]
    return lines


def render_markdown(model: ReportModel) -> str:
    lines = [
        "# edgeiqa benchmark report",
        "",
        f"{len(model.merged.runs)} run(s) on {len(model.merged.devices())} device(s), generated {model.created}.",
        "",
    ]
    lines += ["## Recommendation per device", "", rule_text(model.budget), ""]
    lines += [f"- {recommendation_text(r)}" for r in model.recommendations] + [""]
    if model.comparisons:
        lines += [
            "### Accuracy against the FP32 reference",
            "",
            "SRCC with its bootstrap 95 % interval; ΔSRCC = SRCC(artifact) - SRCC(reference) on the same "
            "images, with its paired interval.",
            "",
        ]
        lines += markdown_table(model.comparisons, COMPARISON_COLUMNS) + [""]
    lines += ["## Results", ""]
    if model.timed:
        lines += [f"Latency and img/s: {model.timed}. e2e img/s: whole file -> score passes over the dataset.", ""]
    lines += markdown_table(model.rows) + [""]
    if model.pareto is not None:
        lines += [f"![SRCC vs latency per device]({model.pareto.name})", ""]
    if model.ablation:
        lines += [
            "## Distillation ablation",
            "",
            "Test-split metrics of the training run: the distilled student, "
            "the same student trained on labels alone, and the teacher.",
            "",
        ]
        lines += markdown_table(model.ablation, ABLATION_COLUMNS) + [""]
    lines += ["## Devices", ""] + markdown_table(model.devices, DEVICE_COLUMNS) + [""]
    lines += ["## Runs", ""] + model.runs + [""]
    if model.failures or model.merged.skipped:
        lines += ["## Problems", ""]
        lines += [f"- {dev} / {label}: {_md_cell(err)}" for dev, label, err in model.failures]
        lines += [f"- skipped: {_md_cell(reason)}" for _, reason in model.merged.skipped] + [""]
    return "\n".join(lines)
