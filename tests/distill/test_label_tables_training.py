"""Pre-training from teacher label tables: the run's teacher labels the training photos and the
``data.pseudo_pool`` once (``<out>/labels/teacher.csv``), the student pre-trains on every labelled
image with its kd terms read from the table, and a later run reuses the table instead of relabelling."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from experiment_helpers import tiny_experiment, write_yaml
from PIL import Image

from edgeiqa.distill import stages
from edgeiqa.distill.api import open_run, run_distill, run_teacher
from edgeiqa.distill.ensemble import ENSEMBLE_FILE
from edgeiqa.distill.labels import read_table
from edgeiqa.distill.losses import WeightedLoss
from edgeiqa.distill.modules import StudentTrainModule
from edgeiqa.distill.runs import load_splits
from edgeiqa.distill.stages import Run
from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.models import create_model

POOL = 6
QUICK = {"epochs": 1, "batch_size": 8, "lr": 0.003, "warmup_epochs": 0.0, "max_steps_per_epoch": 2}


def _config(out: Path, tiny_synth: Path, **data) -> ExperimentConfig:
    cfg = tiny_experiment(out / "run", tiny_synth, data=data)
    cfg["teacher"]["optim"] = dict(QUICK)
    cfg["student"]["pretrain"] = {"optim": dict(QUICK)}
    cfg["student"]["finetune"] = {"optim": dict(QUICK)}
    cfg["data"] = {**cfg["data"], **data}
    return ExperimentConfig.load(write_yaml(out / "exp.yaml", cfg))


def _pool(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    paths = []
    for i in range(POOL):
        paths.append(folder / f"extra{i}.jpg")
        Image.fromarray(rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)).save(paths[-1], quality=90)
    return paths


class Spy:
    """Wraps the stage functions the test asks about, calling the real ones."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        self.labelled, self.stages, self.train_sets = [], [], []
        label_images, train_stage, dataset = stages.label_images, stages.train_student_stage, Run.dataset

        def spy_label(*args, **kwargs):
            self.labelled.append(label_images(*args, **kwargs))
            return self.labelled[-1]

        def spy_stage(run, student, stage, name, folder, teacher, use_labels, records, *args, **kwargs):
            self.stages.append((name, list(records), kwargs.get("labels"), teacher))
            return train_stage(run, student, stage, name, folder, teacher, use_labels, records, *args, **kwargs)

        def spy_dataset(run, records, *args, **kwargs):
            made = dataset(run, records, *args, **kwargs)
            if kwargs.get("train"):
                self.train_sets.append(made)
            return made

        mp.setattr(stages, "label_images", spy_label)
        mp.setattr(stages, "train_student_stage", spy_stage)
        mp.setattr(Run, "dataset", spy_dataset)


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory, tiny_synth):
    out = tmp_path_factory.mktemp("pool_run")
    pool = _pool(out / "pool")
    cfg = _config(out, tiny_synth, pseudo_pool=[str(out / "pool")])
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_teacher(cfg, progress=False)
        with pytest.MonkeyPatch.context() as mp:
            first = Spy(mp)
            run_distill(cfg, progress=False)
        table = Path(cfg.out) / "labels" / "teacher.csv"
        written = table.read_bytes()
        with pytest.MonkeyPatch.context() as mp:
            second = Spy(mp)
            run_distill(cfg, progress=False)
    finally:
        torch.set_num_threads(previous)
    return cfg, pool, first, second, written


def test_the_teacher_labels_training_photos_and_pool_once(pool_run) -> None:
    cfg, pool, first, second, written = pool_run
    table = Path(cfg.out) / "labels" / "teacher.csv"
    train = load_splits(cfg.data).train
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["path"] for r in rows} == {str(r.path) for r in train} | {str(p.resolve()) for p in pool}
    assert len(rows) == len(train) + POOL
    assert all(0 <= float(r["score"]) <= 100 and float(r["spread"]) == 0 for r in rows)  # MOS scale, one view
    assert json.loads(Path(str(table) + ".json").read_text())["mos_range"] == [0, 100]
    assert [r.written for r in first.labelled] == [len(rows)]
    # The second run reads the table: nothing relabelled, not a byte changed.
    assert [(r.written, r.skipped_done) for r in second.labelled] == [(0, len(rows))]
    assert table.read_bytes() == written


def test_pretraining_covers_every_labelled_image_with_the_tables_scores(pool_run) -> None:
    cfg, _, first, _, _ = pool_run
    labels = read_table(Path(cfg.out) / "labels" / "teacher.csv")
    pretrain = [s for s in first.stages if s[0] == "pretrain"]
    assert len(pretrain) == 1
    _, records, given, teacher = pretrain[0]
    assert teacher is None  # the teacher never runs inside an epoch
    assert given == labels and len(records) == len(labels) == len(load_splits(cfg.data).train) + POOL
    assert {str(r.path) for r in records} == set(labels)
    # What a batch carries as the teacher's score is the table's, normalised to 0..1.
    dataset = first.train_sets[0]
    assert len(dataset) == len(labels)
    for index in (0, len(dataset) - 1):
        item = dataset[index]
        expected = labels[str(dataset.records[index].path)]
        assert float(item["teacher_score"]) == pytest.approx(expected, abs=1e-6)
    history = json.loads((Path(cfg.out) / "student" / "pretrain" / "metrics.json").read_text())
    assert {"train_kd_score", "train_kd_rank"} <= set(history[-1]) and "train_feature" not in history[-1]
    finetune = next(s for s in first.stages if s[0] == "finetune")
    assert finetune[2] == labels and finetune[3] is None
    assert (Path(cfg.out) / "student" / "final" / "last.json").exists()


def test_the_student_module_takes_the_table_score_as_the_teacher_prediction(one_torch_thread) -> None:
    torch.manual_seed(0)
    student = create_model("test_eqcnet")
    module = StudentTrainModule(student, WeightedLoss({"kd_score": 1.0}), teacher=None, use_labels=False).eval()
    x = {"image": torch.rand(3, 3, 64, 64), "fragments": torch.rand(3, 3, 32, 32)}
    x = {name: x[name] for name in student.contract.input_names}
    target = torch.tensor([0.1, 0.5, 0.9])
    with torch.no_grad():
        loss, _ = module({"student": x, "mos": torch.zeros(3), "teacher_score": target})
        pred = student(*x.values())
    assert float(loss) == pytest.approx(
        float(F.smooth_l1_loss(pred, target, beta=module.loss.options.smooth_l1_beta)), rel=1e-5
    )
    with pytest.raises(ConfigError, match="teacher scores"):
        module({"student": x, "mos": torch.zeros(3)})


def test_a_foreign_table_missing_a_training_photo_is_refused(tmp_path, tiny_synth, one_torch_thread) -> None:
    train = load_splits(_config(tmp_path, tiny_synth).data).train
    table = tmp_path / "scores.csv"  # another scorer's output: path,score, no sidecar
    table.write_text("path,score\n" + "".join(f"{r.path},{i}\n" for i, r in enumerate(train[1:])))
    cfg = _config(tmp_path, tiny_synth, pseudo_labels=[{"path": str(table)}])
    with pytest.raises(ConfigError, match=r"^1 training image\(s\) have no teacher label") as info:
        run_distill(cfg, stages=("finetune",), progress=False)
    assert "\n" not in str(info.value) and train[0].path.name in str(info.value)


def test_an_ensemble_teacher_is_not_run_inside_an_epoch(tmp_path, tiny_synth) -> None:
    cfg = _config(tmp_path, tiny_synth)
    (Path(cfg.out) / "teacher").mkdir(parents=True)
    (Path(cfg.out) / "teacher" / ENSEMBLE_FILE).write_text(
        json.dumps({"members": [], "tta": ["identity"], "mos_range": [0, 100]})
    )
    with pytest.raises(EdgeIQAError, match="pseudo_pool") as info:
        stages.load_teacher(open_run(cfg, progress=False))
    assert "\n" not in str(info.value)
    with pytest.raises(EdgeIQAError, match="pseudo_pool"):  # and so does a distil run that would need it
        run_distill(cfg, stages=("pretrain",), progress=False)
