"""The report as one self-contained HTML page: inline CSS, the Pareto plot embedded as a base64 data URI.

Nothing is fetched when the page opens (no fonts, scripts or images from the network), so it can be
mailed, attached to a CI run or opened on an air-gapped machine. Every text from a result file is
HTML-escaped. It lays out the same :class:`~edgeiqa.report.model.ReportModel` as the
Markdown page, and imports nothing of :mod:`.writer`.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from edgeiqa.report.formatting import (
    ABLATION_COLUMNS,
    COLUMNS,
    COMPARISON_COLUMNS,
    DEVICE_COLUMNS,
    NUMERIC,
    Column,
    formatted,
    recommendation_text,
    rule_text,
)
from edgeiqa.report.model import ReportModel

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 24px 32px;
       color: #1d2433; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.6em;
     border-bottom: 1px solid #d8dee9; padding-bottom: 4px; }
.meta { color: #5b6474; font-size: 0.92em; }
.recs { display: flex; flex-wrap: wrap; gap: 12px; }
.rec { border: 1px solid #cfd8e3; border-left: 5px solid #2f855a; border-radius: 6px; padding: 10px 14px;
       max-width: 560px; background: #f7fbf8; font-size: 0.93em; }
.rec.none { border-left-color: #c05621; background: #fffaf5; }
table { border-collapse: collapse; font-size: 0.82em; margin: 8px 0 4px; }
th, td { border: 1px solid #d8dee9; padding: 3px 6px; }
td { max-width: 16em; overflow-wrap: anywhere; }
td.num, th { white-space: nowrap; }
th { background: #eef2f7; text-align: left; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #f9fafc; }
tr.chosen td { background: #e6f4ea; font-weight: 600; }
.scroll { overflow-x: auto; }
img.plot { max-width: 100%; border: 1px solid #d8dee9; border-radius: 4px; }
ul.problems li { color: #9b2c2c; }
code { background: #f1f3f6; padding: 0 3px; border-radius: 3px; }
"""


def _inline(text: str) -> str:
    """Escape, then turn the Markdown **bold**, *emphasis* and `code` of shared sentences into tags."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"\*([^*\s][^*]*?)\*", r"<em>\1</em>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def html_table(rows: list[dict[str, Any]], columns: list[Column], chosen: set[tuple[str, str]] | None = None) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _, _ in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{html.escape(c)}</td>' if key in NUMERIC else f"<td>{html.escape(c)}</td>"
            for (_, key, _), c in zip(columns, formatted(row, columns))
        )
        mark = ' class="chosen"' if chosen and (row.get("device"), row.get("label")) in chosen else ""
        body.append(f"<tr{mark}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _recommendations(model: ReportModel) -> str:
    cards = []
    for rec in model.recommendations:
        cls = "rec" if rec.choice is not None else "rec none"
        cards.append(f'<div class="{cls}">{_inline(recommendation_text(rec))}</div>')
    return f'<div class="recs">{"".join(cards)}</div>'


def render_html(model: ReportModel) -> str:
    """The whole page as a string."""
    merged, pareto = model.merged, model.pareto
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>edgeiqa benchmark report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>edgeiqa benchmark report</h1>",
        f'<p class="meta">{len(merged.runs)} run(s) on {len(merged.devices())} device(s), generated '
        f"{html.escape(model.created)}.</p>",
        "<h2>Recommendation per device</h2>",
        f'<p class="meta">{_inline(rule_text(model.budget))} Chosen rows are highlighted below.</p>',
        _recommendations(model),
    ]
    if model.comparisons:
        parts += [
            "<h3>Accuracy against the FP32 reference</h3>",
            '<p class="meta">SRCC with its bootstrap 95 % interval; ΔSRCC = SRCC(artifact) - SRCC(reference) '
            "on the same images, with its paired interval.</p>",
            html_table(model.comparisons, COMPARISON_COLUMNS, model.chosen),
        ]
    if pareto is not None and pareto.exists():
        parts += [
            "<h2>SRCC vs latency</h2>",
            f'<img class="plot" alt="SRCC vs batch-1 latency per device" src="{_png_data_uri(pareto)}">',
        ]
    parts += ["<h2>Results</h2>"]
    if model.timed:
        parts.append(
            f'<p class="meta">Latency and img/s: {html.escape(model.timed)}. e2e img/s: whole file &rarr; '
            "score passes over the dataset.</p>"
        )
    parts.append(html_table(model.rows, COLUMNS, model.chosen))
    if model.ablation:
        parts += [
            "<h2>Distillation ablation</h2>",
            '<p class="meta">Test-split metrics of the training run: the distilled student, the same student '
            "trained on labels alone, and the teacher.</p>",
            html_table(model.ablation, ABLATION_COLUMNS),
        ]
    parts += [
        "<h2>Devices</h2>",
        html_table(model.devices, DEVICE_COLUMNS),
        "<h2>Runs</h2>",
        "<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in model.runs) + "</ul>",
    ]
    parts.append(_problems(model))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"


def _problems(model: ReportModel) -> str:
    items = [f"{dev} / {label}: {err}" for dev, label, err in model.failures]
    items += [f"skipped: {reason}" for _, reason in model.merged.skipped]
    if not items:
        return ""
    return '<h2>Problems</h2><ul class="problems">' + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
