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
from edgeiqa.distill.runs import load_splits
from edgeiqa.distill.saved_model import load_model
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.metrics import plcc, srcc
from edgeiqa.runtime.predictor import Predictor
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
    assert teacher.epochs == 1
    for stage in (
        "teacher",
        "student/pretrain",
        "student/finetune",
        "student/final",
        "student_only/finetune",
        "student_only/final",
    ):
        assert (out / stage / "best.json").exists(), stage
    assert not (out / "student_only" / "pretrain").exists()  # the ablation never sees the teacher
    summary = json.loads((out / "summary.json").read_text())
    assert summary == alone.summary
    assert set(summary) >= {"teacher", "student", "student_only"} and summary["split"] == "test"
    test = load_splits(cfg.data).test
    assert summary["n"] == len(test) == 16  # one test source: 3 types x 5 levels + pristine
    # Each model's numbers are its own on the test split: score the same files through the runtime
    # (Predictor.load(checkpoint folder)) and compare; a summary that mixed up models or splits fails.
    folders = {
        "teacher": out / "teacher",
        "student": out / "student" / "final",
        "student_only": out / "student_only" / "final",
    }
    mos = [r.mos for r in test]
    for name, folder in folders.items():
        with Predictor.load(folder) as predictor:
            scores = predictor([r.path for r in test])
        assert summary[name]["srcc"] == pytest.approx(srcc(scores, mos), abs=1e-4), name
        assert summary[name]["plcc"] == pytest.approx(plcc(scores, mos), abs=1e-3), name


def test_final_student_speaks_mos_and_matches_the_runtime(trained_run, tiny_synth, tmp_path) -> None:
    from edgeiqa.distill.calibration import score_map_from_dict
    from edgeiqa.export.exporter import export_artifact

    cfg, *_ = trained_run
    final = Path(cfg.out) / "student" / "final"
    model = load_model(final).model
    state = json.loads(next(final.glob("epoch_*/state.json")).read_text())
    mapping = state["score_mapping"]
    assert mapping["kind"] == "logistic4_monotone" and mapping["folded"] is True and mapping["mos_range"] == [0, 100]
    images = sorted(tiny_synth.parent.glob("images/*.png"))[:6]
    feeds = [preprocess(p, model.contract) for p in images]
    inputs = [torch.from_numpy(np.stack([f[n] for f in feeds])) for n in model.contract.input_names]
    with torch.no_grad():
        scores, raw = model(*inputs).numpy(), model.model(*inputs).numpy()
    # Speaks MOS: the output is the recorded map applied to the raw student output (folded, not re-derived).
    np.testing.assert_allclose(scores, score_map_from_dict(mapping)(raw), rtol=1e-4, atol=1e-3)
    # Matches the runtime: the exported ONNX artifact, run by the torch-free Predictor on the same files
    # (its own decode + preprocessing), gives the torch model's scores.
    # The gate's own verdict is not the question here (its rank rule is fragile on an untrained model's
    # near-equal scores); the comparison below is.
    artifact = export_artifact(final, "onnx", "fp32", tmp_path, val=images, raise_on_failure=False).artifact
    with Predictor.load(artifact, allow_invalid=True) as predictor:
        runtime = predictor(images)
    np.testing.assert_allclose(runtime, scores, rtol=1e-4, atol=1e-3)


def test_a_finished_stage_is_skipped_on_resume_and_restarted_on_request(trained_run) -> None:
    cfg, *_ = trained_run
    stage = Path(cfg.out) / "teacher"
    best_before = (stage / "best.json").read_text()
    (stage / "stale.txt").write_text("left by an older run")
    again = run_teacher(cfg, progress=False)
    assert again.resumed_from == 0 and again.epochs == 1  # the finished epoch, not a new one
    assert (stage / "best.json").read_text() == best_before and (stage / "stale.txt").exists()
    assert len(json.loads((stage / "metrics.json").read_text())) == 1
    fresh = run_teacher(cfg, resume=False, progress=False)  # what --restart asks for
    assert fresh.resumed_from is None and fresh.epochs == 1
    assert not (stage / "stale.txt").exists()  # started over in an empty folder
    assert (stage / "best.json").exists() and len(json.loads((stage / "metrics.json").read_text())) == 1


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


def test_predictor_scores_with_teacher_and_student_checkpoints(trained_run, tiny_synth) -> None:
    """Predictor.load(folder) runs any checkpoint through the torch backend with its own contract/views."""
    from edgeiqa.distill.modules import teacher_forward
    from edgeiqa.models.teacher_views import collate_teacher_views, teacher_views
    from edgeiqa.runtime.decode import decode_image
    from edgeiqa.runtime.predictor import Predictor

    cfg, *_ = trained_run
    images = sorted(tiny_synth.parent.glob("images/*.png"))[:5]
    teacher = load_model(Path(cfg.out) / "teacher")
    assert teacher.kind == "teacher" and teacher.mos_range == (0.0, 100.0)
    with Predictor.load(Path(cfg.out) / "teacher") as predictor:
        got = predictor(images)
    views = collate_teacher_views(
        [teacher_views(decode_image(p, teacher.views.contract), teacher.views) for p in images]
    )
    with torch.no_grad():
        want = teacher_forward(teacher.model, views).numpy() * 100.0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)

    student = load_model(Path(cfg.out) / "student" / "final")
    assert student.kind == "calibrated"
    with Predictor.load(Path(cfg.out) / "student") as predictor:  # the run's student folder -> final/
        got = predictor(images)
    feeds = [preprocess(p, student.contract) for p in images]
    with torch.no_grad():
        want = student.model(*(torch.from_numpy(np.stack([f[n] for f in feeds])) for n in student.contract.input_names))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-4)


def test_a_tampered_checkpoint_is_refused_unless_told(trained_run, tmp_path) -> None:
    import shutil

    from edgeiqa.errors import ConfigError
    from edgeiqa.runtime.predictor import Predictor
    from edgeiqa.runtime.runners import RunnerError

    cfg, *_ = trained_run
    source = load_model(Path(cfg.out) / "student" / "final").folder
    copy = tmp_path / "final"
    shutil.copytree(source, copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # flip one bit of the last weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="differs from .* recorded in state.json.*--no-verify"):
        load_model(copy)
    with pytest.raises((ConfigError, RunnerError), match="recorded in state.json"):
        Predictor.load(copy)
    assert load_model(copy, verify=False).kind == "calibrated"


def test_the_python_api_leaves_threads_and_rng_as_it_found_them(trained_run) -> None:
    cfg, *_ = trained_run
    assert cfg.threads == 1
    torch.set_num_threads(2)
    torch.manual_seed(1234)
    expected_next = torch.rand(3)
    torch.manual_seed(1234)
    run_teacher(cfg, progress=False)  # resumes a finished stage: builds (seeds) the model, trains nothing
    assert torch.get_num_threads() == 2
    assert torch.equal(torch.rand(3), expected_next)


def test_distill_can_leave_the_evaluation_to_a_later_run(trained_run) -> None:
    cfg, *_ = trained_run
    summary_file = Path(cfg.out) / "summary.json"
    before = summary_file.stat().st_mtime_ns
    result = run_distill(cfg, progress=False, evaluate_after=False)  # resumes finished stages: no training
    assert result.summary == {} and summary_file.stat().st_mtime_ns == before
    again = run_distill(cfg, progress=False)
    assert again.summary["student"]["n"] == 16 and summary_file.stat().st_mtime_ns > before
