"""The ablation block carries the frozen-feature ridge floor and bootstrap intervals when the run has them."""

from __future__ import annotations

import json
from pathlib import Path

from edgeiqa.bench.ablation import load_ablation


def _summary(folder: Path) -> Path:
    path = folder / "summary.json"
    metrics = {"srcc": 0.8, "plcc": 0.81, "n": 125, "srcc_ci95": [0.72, 0.86]}
    path.write_text(
        json.dumps(
            {
                "split": "test",
                "n": 125,
                "teacher": metrics,
                "student": metrics,
                "student_only": dict(metrics, srcc=0.75),
                "scores": {"paths": []},
            }
        )
    )
    return path


def test_ridge_floor_beside_the_summary_becomes_a_row(tmp_path: Path) -> None:
    summary = _summary(tmp_path)
    assert "ridge_floor" not in load_ablation(summary)
    (tmp_path / "baseline_ridge.json").write_text(
        json.dumps({"srcc": 0.821, "plcc": 0.831, "n": 125, "srcc_ci95": [0.749, 0.878]})
    )
    ablation = load_ablation(summary)
    assert ablation["ridge_floor"]["srcc"] == 0.821
    assert (ablation["ridge_floor"]["srcc_low"], ablation["ridge_floor"]["srcc_high"]) == (0.749, 0.878)
    assert ablation["student_only"]["srcc_low"] == 0.72


def test_report_rows_show_the_floor_and_the_interval(tmp_path: Path) -> None:
    from edgeiqa.report.model import ablation_rows

    summary = _summary(tmp_path)
    (tmp_path / "baseline_ridge.json").write_text(json.dumps({"srcc": 0.821, "n": 125, "srcc_ci95": [0.749, 0.878]}))

    class Run:
        device_name = "cpu"
        ablation = load_ablation(summary)

    class Merged:
        runs = [(tmp_path / "r.json", Run())]

    rows = {row["model"]: row for row in ablation_rows(Merged())}
    assert rows["ridge_floor"]["srcc_ci"] == "[0.749, 0.878]"
    assert abs(rows["distilled"]["delta_srcc"] - 0.05) < 1e-12
