"""Distortion ranking (edgeiqa.distill.ranking): groups of one photo x one distortion type, drawn
reproducibly, one flip per group, and a loss that rewards ordering the levels (higher level, lower
score); plus the teacher stage that trains on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from experiment_helpers import tiny_experiment, write_yaml
from PIL import Image

from edgeiqa.data.graded import check_items, make_graded_set, read_graded
from edgeiqa.distill.api import run_teacher
from edgeiqa.distill.ranking import RankingGroups, distortion_rank_term, ranking_feed
from edgeiqa.distill.saved_model import load_model
from edgeiqa.errors import ConfigError
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.models import create_model
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.preprocess import decode_image, preprocess_image

# No fragments: the student's input is then a function of the decoded image alone, so a group's
# tensors can be compared with an independent decode (mirrored or not).
CONTRACT = PreprocessContract(working_size=32, fragments=None)


def textured(seed: int, width: int = 96, height: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.uniform(-40, 40, size=(height, width, 3))
    img += np.kron(rng.uniform(-60, 60, size=(height // 8, width // 8, 3)), np.ones((8, 8, 1)))
    img += np.linspace(40, 200, width)[None, :, None]  # left dark, right bright: a mirror shows
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def graded_csv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ranking")
    sources = []
    for i in range(2):
        sources.append(root / f"photo{i}.png")
        Image.fromarray(textured(i)).save(sources[-1])
    return make_graded_set(sources, root / "set", check_items, seed=0, progress=False)


def test_each_group_is_one_photo_and_one_type_with_its_pristine(graded_csv) -> None:
    groups = RankingGroups(graded_csv, 3, student_contract=CONTRACT)
    items = {path: item for path, item in read_graded(graded_csv)}
    assert len(groups) == 2 * 4  # 2 photos x 4 types
    seen = set()
    for group in groups.groups:
        head, *rest = group
        assert head[1] == 0 and items[head[0]].distortion == "pristine"
        source = items[head[0]].source
        types = {items[p].distortion for p, _ in rest}
        assert len(types) == 1 and {items[p].source for p, _ in rest} == {source}
        assert [lvl for _, lvl in group] == [0, 1, 2, 3, 4]
        assert all(items[p].level == lvl for p, lvl in group)
        seen.add((source, types.pop()))
    assert len(seen) == len(groups)


def _mirrored_or_not(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = decode_image(path, CONTRACT)
    plain = preprocess_image(img, CONTRACT)["image"]
    mirrored = preprocess_image(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), CONTRACT)["image"]
    return plain, mirrored


def test_items_draw_sorted_distinct_levels_with_one_flip_for_the_whole_group(graded_csv) -> None:
    groups = RankingGroups(graded_csv, 3, student_contract=CONTRACT, seed=5)
    flips = []
    for draw in range(2):
        groups.draw = draw
        for index in range(len(groups)):
            item = groups[index]
            levels = item["level"].tolist()
            assert levels == sorted(levels) and len(set(levels)) == 3
            by_level = {lvl: p for p, lvl in groups.groups[index]}
            assert set(levels) <= set(by_level)
            images = item["student"]["image"].numpy()
            assert images.shape[0] == 3
            # Each image is its level's file, decoded independently: all mirrored, or none.
            states = []
            for image, level in zip(images, levels):
                plain, mirrored = _mirrored_or_not(by_level[int(level)])
                if np.allclose(image, plain, atol=1e-6):
                    states.append(False)
                else:
                    np.testing.assert_allclose(image, mirrored, atol=1e-6)
                    states.append(True)
            assert len(set(states)) == 1, states
            flips.append(states[0])
    assert 0 < sum(flips) < len(flips)  # both happen: the flip is drawn, not fixed


def test_draws_are_reproducible_for_seed_and_draw(graded_csv) -> None:
    spec = create_model("test_eiqanet").view_spec
    a = RankingGroups(graded_csv, 3, teacher_spec=spec, seed=1)
    b = RankingGroups(graded_csv, 3, teacher_spec=spec, seed=1)
    for index in (0, 5):
        x, y = a[index], b[index]
        assert torch.equal(x["level"], y["level"])
        for key in x["teacher"]:
            assert torch.equal(x["teacher"][key], y["teacher"][key]), key
        assert x["teacher"]["global_view"].shape[0] == 3 and "student" not in x

    def levels(groups: RankingGroups) -> list[tuple[float, ...]]:
        return [tuple(groups[i]["level"].tolist()) for i in range(len(groups))]

    first = levels(a)
    a.draw = 1
    assert levels(a) != first  # a new pass draws other levels
    assert levels(RankingGroups(graded_csv, 3, teacher_spec=spec, seed=2)) != first


def test_the_feed_visits_every_group_once_per_pass_then_draws_again(graded_csv) -> None:
    groups = RankingGroups(graded_csv, 2, student_contract=CONTRACT)
    feed = ranking_feed(groups)
    first_pass = [next(feed) for _ in range(len(groups))]
    assert groups.draw == 0 and all(item["level"].shape == (2,) for item in first_pass)
    next(feed)
    assert groups.draw == 1


def test_the_loss_prefers_the_level_order() -> None:
    group = {"level": torch.tensor([0.0, 2.0, 3.0, 4.0])}
    right = torch.tensor([0.9, 0.6, 0.4, 0.1])  # worse level, lower score
    for scale in (0.1, 1.0):
        good = distortion_rank_term(lambda g: right, group, scale)
        bad = distortion_rank_term(lambda g: right.flip(0), group, scale)
        assert float(good) < float(bad)
    pred = torch.tensor([0.1, 0.6, 0.4, 0.9], requires_grad=True)
    distortion_rank_term(lambda g: pred, group, 0.1).backward()
    assert pred.grad[0] < 0 and pred.grad[3] > 0  # descent raises the pristine, lowers the worst


def test_a_set_without_pristine_rows_is_one_line_naming_the_file(graded_csv, tmp_path) -> None:
    lines = graded_csv.read_text().splitlines()
    no_pristine = tmp_path / "graded.csv"
    no_pristine.write_text("\n".join([lines[0], *(line for line in lines[1:] if ",pristine," not in line)]) + "\n")
    with pytest.raises(ConfigError) as info:
        RankingGroups(no_pristine, 3, student_contract=CONTRACT)
    assert str(no_pristine) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="2..5"):
        RankingGroups(graded_csv, 6, student_contract=CONTRACT)


def _teacher_config(tmp_path: Path, tiny_synth: Path, **teacher) -> ExperimentConfig:
    base = tiny_experiment(tmp_path / "run", tiny_synth)["teacher"]
    optim = {**base["optim"], "max_steps_per_epoch": 2}
    section = {**base, "optim": optim, "losses": {"regression": 1.0, "distortion_rank": 1.0}, **teacher}
    return ExperimentConfig.load(
        write_yaml(tmp_path / "exp.yaml", tiny_experiment(tmp_path / "run", tiny_synth, teacher=section))
    )


def test_distortion_rank_without_a_ranking_set_is_a_config_error(tmp_path, tiny_synth, one_torch_thread) -> None:
    cfg = _teacher_config(tmp_path, tiny_synth)
    with pytest.raises(ConfigError, match="ranking_set") as info:
        run_teacher(cfg, progress=False)
    assert "\n" not in str(info.value)


def test_a_teacher_trains_with_the_ranking_term(tmp_path, tiny_synth, graded_csv, one_torch_thread) -> None:
    cfg = _teacher_config(tmp_path, tiny_synth, ranking_set=str(graded_csv), ranking_group=3)
    result = run_teacher(cfg, progress=False)
    assert result.epochs == 1
    loaded = load_model(Path(cfg.out) / "teacher")
    assert loaded.kind == "teacher"
    history = loaded.checkpoint.state["history"]
    term = history[-1]["train_distortion_rank"]
    assert np.isfinite(term) and 0 < term < 1  # the term ran on graded groups (fidelity lies in 0..1)


def test_a_student_finetunes_with_the_ranking_term(tmp_path, tiny_synth, graded_csv, one_torch_thread) -> None:
    """The student's fine-tuning orders graded groups too (the teacher's rule, on the student's inputs)."""
    from edgeiqa.distill.api import run_distill

    optim = {"epochs": 1, "batch_size": 8, "lr": 0.003, "warmup_epochs": 0.0, "max_steps_per_epoch": 2}
    finetune = {
        "optim": optim,
        "losses": {"regression": 1.0, "distortion_rank": 1.0},
        "ranking_set": str(graded_csv),
        "ranking_group": 3,
    }
    student = {**tiny_experiment(tmp_path / "run", tiny_synth)["student"], "finetune": finetune}
    student["pretrain"] = {**student["pretrain"], "enabled": False}
    data = tiny_experiment(tmp_path / "run", tiny_synth, student=student)
    cfg = ExperimentConfig.load(write_yaml(tmp_path / "exp.yaml", data))
    run_teacher(cfg, progress=False)
    run_distill(cfg, progress=False, evaluate_after=False)
    history = load_model(Path(cfg.out) / "student" / "finetune").checkpoint.state["history"]
    term = history[-1]["train_distortion_rank"]
    assert np.isfinite(term) and 0 < term < 1


def test_a_student_ranking_set_without_its_loss_is_a_config_error(tmp_path, tiny_synth, graded_csv) -> None:
    student = tiny_experiment(tmp_path / "run", tiny_synth)["student"]
    student["finetune"] = {**student["finetune"], "ranking_set": str(graded_csv)}
    data = tiny_experiment(tmp_path / "run", tiny_synth, student=student)
    from edgeiqa.experiment import validate_training

    with pytest.raises(ConfigError, match="student.finetune.ranking_set: unused"):
        validate_training(ExperimentConfig.load(write_yaml(tmp_path / "exp.yaml", data)))
