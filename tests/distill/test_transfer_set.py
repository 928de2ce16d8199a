"""Pre-training's transfer set: the training photos, an extra folder, and distorted copies made on the fly."""

from __future__ import annotations

import shutil

import pytest
import torch
from experiment_helpers import tiny_experiment, write_yaml

from edgeiqa.distill.distributed import DistContext
from edgeiqa.distill.runs import load_splits
from edgeiqa.distill.stages import Run
from edgeiqa.distill.validate import validate_experiment
from edgeiqa.distill.views_data import DistortedCopies, ViewsDataset
from edgeiqa.errors import ConfigError
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.models import create_model


@pytest.fixture(scope="module")
def student_contract():
    return create_model("test_eqcnet").contract


def _dataset(records, contract, copies, train=False, seed=0) -> ViewsDataset:
    return ViewsDataset(records, contract, None, (0.0, 100.0), train=train, seed=seed, copies=copies)


def _records(tmp_path, tiny_synth, n=4):
    raw = tiny_experiment(tmp_path / "run", tiny_synth)
    return load_splits(ExperimentConfig.load(write_yaml(tmp_path / "exp.yaml", raw)).data).train[:n]


def test_copies_follow_the_originals_keep_their_label_and_change_the_pixels(
    tmp_path, tiny_synth, student_contract
) -> None:
    records = _records(tmp_path, tiny_synth)
    plain = _dataset(records, student_contract, None)
    with_copies = _dataset(records, student_contract, DistortedCopies(2, ("gaussian_blur", "gaussian_noise"), (3, 5)))
    assert len(plain) == 4 and len(with_copies) == 12
    for i in range(4):
        original = with_copies[i]
        # The originals are exactly the plain dataset's items; every copy keeps its source's label.
        assert torch.equal(original["student"]["image"], plain[i]["student"]["image"])
        for k in (1, 2):
            copy = with_copies[k * 4 + i]
            assert copy["mos"] == original["mos"]
            assert copy["index"] == k * 4 + i
            assert not torch.equal(copy["student"]["image"], original["student"]["image"])


def test_a_copy_is_the_same_within_an_epoch_and_drawn_anew_the_next(tmp_path, tiny_synth, student_contract) -> None:
    records = _records(tmp_path, tiny_synth)
    copies = DistortedCopies(1, ("gaussian_blur", "gaussian_noise", "jpeg", "contrast_change"), (1, 5))
    data = _dataset(records, student_contract, copies, train=True)
    twin = _dataset(records, student_contract, copies, train=True)
    draws = []
    for epoch in range(4):
        data.set_epoch(epoch)
        twin.set_epoch(epoch)
        draws.append([data.distortion_of(4 + i, data.item_rng(4 + i)) for i in range(4)])
        for i in range(4, 8):  # reproducible from (seed, epoch, index) alone: the teacher's view matches
            assert torch.equal(data[i]["student"]["image"], twin[i]["student"]["image"])
    assert all(d is not None and 1 <= d[1] <= 5 for epoch in draws for d in epoch)
    assert len({tuple(epoch) for epoch in draws}) > 1  # a new distortion or level every epoch


def test_the_transfer_set_is_the_training_photos_plus_the_folder(tmp_path, tiny_synth) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    sources = sorted(tiny_synth.parent.rglob("*.png"))[:3]
    for src in sources:
        shutil.copy(src, extra / f"extra_{src.name}")
    raw = tiny_experiment(
        tmp_path / "run",
        tiny_synth,
        data={
            "transfer_dir": str(extra),
            "transfer_copies": 2,
            "transfer_levels": [2, 4],
            "transfer_distortions": ["jpeg", "motion_blur"],
        },
    )
    cfg = ExperimentConfig.load(write_yaml(tmp_path / "exp.yaml", raw))
    splits = load_splits(cfg.data)
    records, copies = Run(cfg, splits, DistContext()).transfer_set()
    assert [r.path for r in records[: len(splits.train)]] == [r.path for r in splits.train]
    assert sorted(r.path.name for r in records[len(splits.train) :]) == sorted(f"extra_{s.name}" for s in sources)
    assert copies == DistortedCopies(2, ("jpeg", "motion_blur"), (2, 4))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"transfer_copies": -1}, "data.transfer_copies: must be >= 0"),
        ({"transfer_copies": 1, "transfer_distortions": ["blurr"]}, "data.transfer_distortions: unknown 'blurr'"),
        ({"transfer_copies": 1, "transfer_distortions": []}, "data.transfer_distortions: empty"),
        ({"transfer_levels": [4, 2]}, "data.transfer_levels: need [low, high]"),
        ({"transfer_levels": [0, 6]}, "data.transfer_levels: need [low, high]"),
    ],
)
def test_bad_transfer_settings_are_named(tmp_path, tiny_synth, data, message) -> None:
    cfg = ExperimentConfig.load(
        write_yaml(tmp_path / "exp.yaml", tiny_experiment(tmp_path / "run", tiny_synth, data=data))
    )
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        validate_experiment(cfg)


def test_default_transfer_distortions_are_registered() -> None:
    from edgeiqa.data.distortions import DISTORTIONS
    from edgeiqa.distill.config import TRANSFER_DISTORTIONS

    assert set(TRANSFER_DISTORTIONS) <= set(DISTORTIONS)


def test_only_pretraining_sees_the_copies_finetuning_trains_on_the_labelled_photos(
    tmp_path, tiny_synth, monkeypatch
) -> None:
    # A distorted copy carries its source's MOS only as a placeholder: a fine-tuning stage that trained
    # on copies would teach the student that blur does not matter. Record what each stage trains on.
    from edgeiqa.distill.api import run_distill, run_teacher

    raw = tiny_experiment(tmp_path / "run", tiny_synth, data={"transfer_copies": 2})
    cfg = ExperimentConfig.load(write_yaml(tmp_path / "exp.yaml", raw))
    run_teacher(cfg, progress=False)
    seen: dict[str, int] = {}
    original_train = Run.train

    def recording_train(self, name, module, train_set, *args, **kwargs):
        seen[name] = len(train_set)
        return original_train(self, name, module, train_set, *args, **kwargs)

    monkeypatch.setattr(Run, "train", recording_train)
    run_distill(cfg, stages=("pretrain", "finetune"), progress=False, evaluate_after=False)
    n_train = len(load_splits(cfg.data).train)
    assert seen == {"pretrain": 3 * n_train, "finetune": n_train}
