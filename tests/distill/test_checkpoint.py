"""Checkpoints are atomic, verified, pruned, and restore optimizer and RNG state exactly."""

from __future__ import annotations

import json

import pytest
import torch

from edgeiqa.distill.checkpoint import latest_checkpoint, resolve_checkpoint, restore_rng_state, save_checkpoint
from edgeiqa.errors import EdgeIQAError


def _trained_pair() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_round_trip_restores_weights_optimizer_and_rng(tmp_path) -> None:
    model, optimizer = _trained_pair()
    save_checkpoint(tmp_path, 0, model, {"stage": "finetune"}, optimizer, is_best=True)
    expected_next = torch.rand(3)
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.epoch == 0 and ckpt.state["stage"] == "finetune"
    fresh = torch.nn.Linear(3, 2)
    fresh.load_state_dict(ckpt.model_state())
    assert torch.equal(fresh.weight, model.weight)
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-2)
    opt2.load_state_dict(ckpt.optimizer_state())
    for p_old, p_new in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(optimizer.state[p_old]["exp_avg"], opt2.state[p_new]["exp_avg"])
    restore_rng_state(ckpt.state["rng"])
    assert torch.equal(torch.rand(3), expected_next)


def test_only_recent_and_best_epochs_are_kept(tmp_path) -> None:
    model, optimizer = _trained_pair()
    for epoch in range(5):
        save_checkpoint(tmp_path, epoch, model, {}, optimizer, is_best=epoch == 1)
    kept = sorted(p.name for p in tmp_path.glob("epoch_*"))
    assert kept == ["epoch_0001", "epoch_0003", "epoch_0004"]
    assert resolve_checkpoint(tmp_path).epoch == 1  # a stage folder resolves to its best epoch
    assert latest_checkpoint(tmp_path).epoch == 4


def test_half_written_folders_are_ignored_and_removed(tmp_path) -> None:
    model, _ = _trained_pair()
    save_checkpoint(tmp_path, 0, model, {})
    (tmp_path / "epoch_0001.tmp").mkdir()
    (tmp_path / "epoch_0001.tmp" / "model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).epoch == 0
    assert not (tmp_path / "epoch_0001.tmp").exists()


def test_a_corrupted_weights_file_is_detected(tmp_path) -> None:
    model, _ = _trained_pair()
    folder = save_checkpoint(tmp_path, 0, model, {})
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x01")
    with pytest.raises(EdgeIQAError, match="sha256 [0-9a-f]{64} differs from [0-9a-f]{64} recorded in state.json"):
        latest_checkpoint(tmp_path)
    assert json.loads((tmp_path / "last.json").read_text()) == {"dir": "epoch_0000"}


def test_resolve_names_a_folder_without_checkpoints(tmp_path) -> None:
    with pytest.raises(EdgeIQAError, match="no checkpoint found"):
        resolve_checkpoint(tmp_path)


def test_a_partial_contract_keeps_the_backbones_normalisation_from_stage_to_stage(tmp_path) -> None:
    # The quickstart names only the student's sizes; EfficientNet-Lite's TF weights want 0.5/0.5. Each
    # stage rebuilds the model from the previous stage's checkpoint: a rebuild that filled the omitted
    # mean/std with ImageNet's would fine-tune (and ship) a student on inputs it was not pre-trained on.
    from edgeiqa.distill.saved_model import load_model
    from edgeiqa.distill.stages import _model_meta
    from edgeiqa.models import create_model

    model = create_model("eqcnet_lite0", contract={"working_size": 160, "fragments": {"grid": 4, "patch": 32}})
    assert model.contract.mean == (0.5, 0.5, 0.5) and model.contract.std == (0.5, 0.5, 0.5)
    for stage in ("pretrain", "finetune", "final"):
        trained = torch.nn.ModuleDict({"student": model})  # what a stage saves: its train module
        save_checkpoint(tmp_path / stage, 0, trained, _model_meta(model, "student", (0.0, 100.0)), is_best=True)
        model = load_model(tmp_path / stage).model
        assert model.contract.working_size == 160, stage
        assert model.contract.mean == (0.5, 0.5, 0.5) and model.contract.std == (0.5, 0.5, 0.5), stage


def test_a_student_is_rebuilt_with_the_contract_it_was_trained_with(tmp_path) -> None:
    # A checkpoint saved before its variant's defaults changed must preprocess as it was trained.
    from edgeiqa.distill.saved_model import load_model
    from edgeiqa.distill.stages import _model_meta
    from edgeiqa.models import create_model

    model = create_model("test_eqcnet")
    state = _model_meta(model, "student", (0.0, 100.0))
    state["contract"] = {**state["contract"], "reducing_gap": 2.5, "mean": [0.1, 0.2, 0.3]}
    save_checkpoint(tmp_path, 0, torch.nn.ModuleDict({"student": model}), state, is_best=True)
    contract = load_model(tmp_path).model.contract
    assert (contract.reducing_gap, contract.mean) == (2.5, (0.1, 0.2, 0.3))


def test_a_teacher_whose_model_would_preprocess_differently_is_refused(tmp_path) -> None:
    from edgeiqa.distill.saved_model import load_model
    from edgeiqa.distill.stages import _model_meta
    from edgeiqa.errors import ConfigError
    from edgeiqa.models import create_model

    model = create_model("test_eiqanet")
    state = _model_meta(model, "teacher", (0.0, 100.0))
    state["contract"] = {**state["contract"], "mean": [0.1, 0.2, 0.3]}  # trained on other inputs than it rebuilds
    save_checkpoint(tmp_path, 0, torch.nn.ModuleDict({"teacher": model}), state, is_best=True)
    with pytest.raises(ConfigError, match=r"state\.json: model 'test_eiqanet' rebuilt .* preprocesses differently"):
        load_model(tmp_path)
