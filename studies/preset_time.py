"""How long does a preset take, step by step? A run's ``run.json`` (written by ``edgeiqa run``) as a results file.

    edgeiqa run --config configs/livec.yaml --out RUN          # with nothing else on the cores
    python studies/preset_time.py RUN --config configs/livec.yaml --out studies/results/livec_preset_time.json

Takes the run's longest finished invocation (the one that trained: a resumed re-run skips what is done),
and writes one row per step with its minutes, plus the training total (every step
before the export) against ``--budget-min`` (60: what #23 asks of the LIVE-C preset on two cores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgeiqa.fileio import atomic_write_text

EXPORT_STEPS = ("export and parity-gate", "benchmark and report")


def timing_rows(invocation: dict[str, Any], budget_min: float) -> dict[str, dict[str, Any]]:
    """One row per step (seconds, minutes), then the training total against the budget and the whole run."""
    steps = invocation["steps"]
    rows = {name: {"seconds": sec, "minutes": round(sec / 60, 1)} for name, sec in steps.items()}
    training = sum(sec for name, sec in steps.items() if name not in EXPORT_STEPS)
    rows["training (every step before the export)"] = {
        "seconds": round(training, 1),
        "minutes": round(training / 60, 1),
        "budget_minutes": budget_min,
        "within_budget": training <= budget_min * 60,
    }
    rows["whole run"] = {"seconds": invocation["seconds"], "minutes": round(invocation["seconds"] / 60, 1)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--config", required=True, help="the preset the run used (recorded by name)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--budget-min", type=float, default=60.0)
    args = parser.parse_args()
    record = json.loads((args.run / "run.json").read_text())
    finished = [inv for inv in record["invocations"] if inv.get("finished")]
    if not finished:
        raise SystemExit(f"{args.run / 'run.json'}: no finished invocation")
    invocation = max(finished, key=lambda inv: inv["seconds"])  # the one that trained, not a resumed re-run
    result = {
        "what": f"{args.config} end to end (`edgeiqa run`): minutes per step on {invocation['cores']} cores",
        "config": args.config,
        "run": str(args.run),
        "invocation": invocation,
        "device": {"cpu_model": invocation.get("cpu")},
        "rows": timing_rows(invocation, args.budget_min),
    }
    atomic_write_text(args.out, json.dumps(result, indent=1, sort_keys=True))
    print(json.dumps(result["rows"], indent=1))


if __name__ == "__main__":
    main()
