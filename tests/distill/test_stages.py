"""The staged transfer end to end on the tiny models: every stage writes what the next one reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from experiment_helpers import tiny_experiment, write_yaml
from edgeiqa.cli import main
from edgeiqa.distill.api import run_distill, run_teacher
from edgeiqa.distill.config import ExperimentConfig
from edgeiqa.distill.stages import load_calibrated
from edgeiqa.runtime.preprocess import preprocess


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_synth):
    out = tmp_path_factory.mktemp("run")
    cfg = ExperimentConfig.load(write_yaml(out / "exp.yaml", tiny_experiment(out / "run", tiny_synth)))
    teacher = run_teacher(cfg, progress=False)
    distilled = run_distill(cfg, progress=False)
    alone = run_distill(cfg, student_only=True, progress=False)
    return cfg, teacher, distilled, alone


def test_every_stage_leaves_its_checkpoint_and_the_summary_compares_all_three(trained_run) -> None:
    cfg, teacher, _, alone = trained_run
    out = Path(cfg.out)
    assert teacher["epochs"] == 1
    for stage in ("teacher", "student/pretrain", "student/finetune", "student/final",
                  "student_only/finetune", "student_only/final"):
        assert (out / stage / "best.json").exists(), stage
    assert not (out / "student_only" / "pretrain").exists()  # the ablation never sees the teacher
    summary = json.loads((out / "summary.json").read_text())
    assert summary == alone["summary"]
    assert set(summary) >= {"teacher", "student", "student_only"} and summary["split"] == "test"
    for name in ("teacher", "student", "student_only"):
        assert -1.0 <= summary[name]["srcc"] <= 1.0 and summary[name]["n"] == 16  # one test source: 3 types x 5 levels + pristine


def test_final_student_speaks_mos_and_matches_the_runtime_preprocessing(trained_run, tiny_synth) -> None:
    cfg, *_ = trained_run
    model = load_calibrated(f"{cfg.out}/student/final")
    state = json.loads(next((Path(cfg.out) / "student" / "final").glob("epoch_*/state.json")).read_text())
    assert state["score_mapping"]["kind"] == "logistic4" and state["score_mapping"]["folded"] is True
    images = sorted(tiny_synth.parent.glob("images/*.png"))[:6]
    feeds = [preprocess(p, model.contract) for p in images]
    with torch.no_grad():
        scores = model(*(torch.from_numpy(np.stack([f[n] for f in feeds])) for n in model.contract.input_names))
    low, high = state["score_mapping"]["mos_range"]
    b1, b2 = state["score_mapping"]["params"][:2]
    # The 4PL output lies between its asymptotes, which the bounded fit keeps near the MOS scale.
    assert torch.all(scores >= min(b1, b2) - 1e-3) and torch.all(scores <= max(b1, b2) + 1e-3)
    assert high - low == 100


def test_a_finished_stage_is_skipped_on_resume_and_restarted_on_request(trained_run) -> None:
    cfg, *_ = trained_run
    again = run_teacher(cfg, progress=False)
    assert again["resumed_from"] == 0 and again["epochs"] == 1
    before = json.loads((Path(cfg.out) / "teacher" / "metrics.json").read_text())
    assert len(before) == 1


def test_cli_runs_a_single_stage_and_names_config_errors(trained_run, tmp_path, capsys) -> None:
    cfg, *_ = trained_run
    bad = write_yaml(tmp_path / "bad.yaml", {"student": {"finetune": {"optim": {"lr": "fast"}}}})
    assert main(["distill", "--config", str(bad)]) == 2
    assert "bad.yaml.student.finetune.optim.lr: expected float, got 'fast'" in capsys.readouterr().err
    assert main(["distill", "--config", str(tmp_path / "none.yaml")]) == 2
    config = write_yaml(tmp_path / "exp.yaml", tiny_experiment(cfg.out, cfg.data.root))
    assert main(["distill", "--config", str(config), "--stages", "calibrate", "--quiet"]) == 0
    assert "student: test SRCC" in capsys.readouterr().out
    assert main(["distill", "--config", str(config), "--stages", "polish"]) == 2
