"""The ensemble teacher (edgeiqa.distill.ensemble): members trained one by one into one teacher folder,
scored as the mean over members x test-time views, each member reported on its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from experiment_helpers import tiny_experiment, write_yaml
from PIL import Image

from edgeiqa.distill.api import open_run, run_teacher
from edgeiqa.distill.ensemble import ENSEMBLE_FILE, load_ensemble, write_ensemble
from edgeiqa.distill.evaluation import evaluate
from edgeiqa.distill.modules import teacher_forward
from edgeiqa.distill.runs import load_splits
from edgeiqa.distill.saved_model import load_model
from edgeiqa.errors import ConfigError
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.models.teacher_views import collate_teacher_views, teacher_views
from edgeiqa.runtime.preprocess import decode_image

MEMBERS = ["members/0-test_eiqanet", "members/1-test_eiqanet"]


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, tiny_synth) -> ExperimentConfig:
    out = tmp_path_factory.mktemp("ensemble")
    base = tiny_experiment(out / "run", tiny_synth)["teacher"]
    teacher = {
        **base,
        "optim": {**base["optim"], "max_steps_per_epoch": 2},
        "members": [{"seed_offset": 0}, {"seed_offset": 1}],
        "tta": ["identity", "flip"],
    }
    cfg = ExperimentConfig.load(write_yaml(out / "exp.yaml", tiny_experiment(out / "run", tiny_synth, teacher=teacher)))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_teacher(cfg, progress=False)
    finally:
        torch.set_num_threads(previous)
    return cfg


def _by_hand(folder: Path, paths: list[Path]) -> np.ndarray:
    """One member's scores, [view, image], identity then mirrored: load_model + the teacher's own views,
    nothing from the ensemble module."""
    member = load_model(folder)
    spec = member.model.config.views
    out = []
    for mirror in (False, True):
        views = []
        for path in paths:
            img = decode_image(path, spec.contract)
            if mirror:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            views.append(teacher_views(img, spec))
        with torch.no_grad():
            out.append(teacher_forward(member.model, collate_teacher_views(views)).numpy())
    return np.stack(out)


def test_members_train_into_one_teacher_folder(ensemble_run) -> None:
    teacher = Path(ensemble_run.out) / "teacher"
    record = json.loads((teacher / ENSEMBLE_FILE).read_text())
    assert record["members"] == MEMBERS and record["tta"] == ["identity", "flip"]
    assert record["mos_range"] == [0, 100]
    for rel in MEMBERS:
        assert load_model(teacher / rel).kind == "teacher"


def test_the_ensemble_score_is_the_mean_over_members_and_views(ensemble_run, one_torch_thread) -> None:
    teacher = Path(ensemble_run.out) / "teacher"
    records = load_splits(ensemble_run.data).test[:6]
    paths = [r.path for r in records]
    ensemble = load_ensemble(teacher)
    mean, spread, members = ensemble.score(records, batch_size=4)
    by_hand = np.concatenate([_by_hand(teacher / rel, paths) for rel in MEMBERS])  # [4, N]
    np.testing.assert_allclose(mean, by_hand.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(spread, by_hand.std(axis=0), atol=1e-5)
    # Each member under its own name (not its checkpoint's epoch folder, which both share).
    assert list(members) == ensemble.names == ["0-test_eiqanet", "1-test_eiqanet"]
    np.testing.assert_allclose(members["0-test_eiqanet"], by_hand[:2].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(members["1-test_eiqanet"], by_hand[2:].mean(axis=0), atol=1e-5)
    assert not np.allclose(by_hand[0], by_hand[2], atol=1e-4)  # seed offsets give different members
    assert not np.allclose(by_hand[0], by_hand[1], atol=1e-6)  # the flip view is really mirrored
    assert np.all(spread > 0)


def test_a_single_teacher_folder_is_a_one_member_ensemble(ensemble_run, one_torch_thread) -> None:
    folder = Path(ensemble_run.out) / "teacher" / MEMBERS[1]
    records = load_splits(ensemble_run.data).test[:3]
    single = load_ensemble(folder)
    assert len(single.members) == 1 and single.tta == ("identity",) and single.mos_range == (0.0, 100.0)
    mean, spread, _ = single.score(records)
    np.testing.assert_allclose(mean, _by_hand(folder, [r.path for r in records])[0], atol=1e-5)
    assert np.all(spread == 0)


def test_a_member_outside_the_teacher_folder_is_refused(ensemble_run, tmp_path) -> None:
    teacher = Path(ensemble_run.out) / "teacher"
    for member in ("../elsewhere", str(teacher / MEMBERS[0])):  # relative escape; absolute path elsewhere
        (tmp_path / ENSEMBLE_FILE).write_text(
            json.dumps({"members": [member], "tta": ["identity"], "mos_range": [0, 1]})
        )
        with pytest.raises(ConfigError, match="outside the teacher folder"):
            load_ensemble(tmp_path)
    (tmp_path / ENSEMBLE_FILE).write_text(json.dumps({"members": [], "tta": ["identity"], "mos_range": [0, 1]}))
    with pytest.raises(ConfigError, match="no members"):
        load_ensemble(tmp_path)


def test_unknown_test_time_views_are_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="rotate"):
        write_ensemble(tmp_path, [tmp_path / "members" / "0-x"], ["identity", "rotate"], (0.0, 1.0))
    assert not (tmp_path / ENSEMBLE_FILE).exists()


def test_evaluate_reports_every_member_beside_the_ensemble(ensemble_run, one_torch_thread) -> None:
    summary = evaluate(open_run(ensemble_run, progress=False))
    assert {"teacher", "teacher/0-test_eiqanet", "teacher/1-test_eiqanet"} <= set(summary)
    scores = summary["scores"]
    np.testing.assert_allclose(
        scores["teacher"],
        np.mean([scores["teacher/0-test_eiqanet"], scores["teacher/1-test_eiqanet"]], axis=0),
        atol=1e-3,
    )
    assert scores["teacher/0-test_eiqanet"] != scores["teacher/1-test_eiqanet"]
    assert max(scores["teacher"]) > 1.0  # reported on the MOS scale (0..100), not the 0..1 training scale
    assert json.loads((Path(ensemble_run.out) / "summary.json").read_text())["teacher"] == summary["teacher"]


def test_the_teacher_folder_is_one_thing_to_point_at(ensemble_run, one_torch_thread) -> None:
    # Predictor.load(RUN/teacher) (and so `edgeiqa predict RUN/teacher`) scores with every member and view,
    # exactly as the ensemble does in training and labelling, on the MOS scale.
    from edgeiqa.distill import torch_runner
    from edgeiqa.runtime.predictor import Predictor

    assert torch_runner.ENSEMBLE_FILE == ENSEMBLE_FILE
    teacher = Path(ensemble_run.out) / "teacher"
    records = load_splits(ensemble_run.data).test[:5]
    expected, _, _ = load_ensemble(teacher).score(records)
    with Predictor.load(teacher) as predictor:
        scores = predictor([r.path for r in records])
    np.testing.assert_allclose(scores, expected * 100.0, rtol=1e-5, atol=1e-4)


def test_scores_map_back_onto_the_teachers_mos_scale(tmp_path) -> None:
    from edgeiqa.distill.ensemble import EnsembleTeacher

    teacher = EnsembleTeacher(tmp_path, [], ("identity",), (1.0, 5.0))
    assert teacher.to_mos(np.array([0.0, 0.5, 1.0])).tolist() == [1.0, 3.0, 5.0]
