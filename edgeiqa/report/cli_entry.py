"""Argument parser and handler of ``edgeiqa report`` (wired in :mod:`edgeiqa.cli`).

edgeiqa report results/*.json --out report/ --budget 0.005
"""

from __future__ import annotations

import argparse
import sys

from edgeiqa.argtypes import check_output_dir
from edgeiqa.errors import ConfigError
from edgeiqa.report import DEFAULT_BUDGET


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``edgeiqa report``."""
    p.add_argument("results", nargs="+", metavar="RESULT", help="result JSON files (or folders of them)")
    p.add_argument("--out", required=True, help="report folder (report.md, report.html, pareto.png)")
    p.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"SRCC an artifact may lose against the device's FP32 student and still be chosen "
        f"(default: {DEFAULT_BUDGET})",
    )


def run_report(args: argparse.Namespace) -> int:
    """Merge and write the report; skipped files are named on stderr. 0 if any merged, else 2."""
    from edgeiqa.report.writer import merge_results, write_report

    check_output_dir(args.out, inputs=args.results)  # before reading anything
    merged = merge_results(args.results)
    for _, reason in merged.skipped:
        print(f"edgeiqa: skipped: {reason}", file=sys.stderr)
    if not merged.runs:
        print("edgeiqa: error: no benchmark result could be merged", file=sys.stderr)
        return 2
    if args.budget < 0:
        raise ConfigError(f"--budget must be >= 0, got {args.budget}")
    report = write_report(merged, args.out, args.budget)
    outputs = [report.markdown, report.html] + ([report.pareto] if report.pareto else [])
    print(
        f"merged {len(merged.runs)} run(s) on {len(merged.devices())} device(s) -> "
        + ", ".join(str(p) for p in outputs)
    )
    for rec in report.recommendations:
        print(f"  {rec.device}: " + (rec.choice.label if rec.choice else "no recommendation") + f" ({rec.reason})")
    return 0
