"""The preset-time study totals the training steps (not the export and bench) against the budget."""

from __future__ import annotations

from study_scripts import load_study


def test_training_is_every_step_before_the_export_and_is_held_to_the_budget() -> None:
    study = load_study("preset_time")
    steps = {"train the teacher": 1200.0, "distil the student": 1500.0, "train the student alone (ablation)": 600.0}
    invocation = {"seconds": 4500.0, "steps": {**steps, "export and parity-gate": 600.0, "benchmark and report": 600.0}}
    rows = study.timing_rows(invocation, budget_min=60)
    training = rows["training (every step before the export)"]
    assert training["seconds"] == 3300.0 and training["minutes"] == 55.0 and training["within_budget"]
    assert not study.timing_rows(invocation, budget_min=50)["training (every step before the export)"]["within_budget"]
    assert rows["whole run"]["minutes"] == 75.0 and rows["train the teacher"]["minutes"] == 20.0
