"""Which checkpoint a stage hands on: its best validation epoch, or (optim.select: last) its last one."""

from __future__ import annotations

import pytest
import torch
from experiment_helpers import tiny_experiment, write_yaml

from edgeiqa.distill.checkpoint import latest_checkpoint
from edgeiqa.distill.config import OptimConfig
from edgeiqa.distill.distributed import DistContext
from edgeiqa.distill.loop import TrainModule, run_stage
from edgeiqa.errors import ConfigError
from edgeiqa.experiment import ExperimentConfig


class _Regressor(TrainModule):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, batch):
        loss = (self.linear(batch["x"]).squeeze(1) - batch["y"]).pow(2).mean()
        return loss, {}


def _train(tmp_path, select: str):
    torch.manual_seed(0)
    data = [{"x": torch.randn(4, 2), "y": torch.randn(4)} for _ in range(2)]
    falling = iter([0.9, 0.5, 0.3])  # validation says the first epoch was the best one
    optim = OptimConfig(epochs=3, batch_size=4, warmup_epochs=0.0, select=select)
    return run_stage(
        "toy",
        _Regressor(),
        lambda epoch: iter(data),
        2,
        lambda: {"srcc": next(falling)},
        optim,
        tmp_path / select,
        DistContext(),
        {},
        resume=False,
        progress=False,
    )


@pytest.mark.parametrize("select, handed_on", [("best", 0), ("last", 2)])
def test_the_stage_hands_on_the_epoch_its_select_rule_names(tmp_path, select, handed_on) -> None:
    result = _train(tmp_path, select)
    assert result.best is not None and result.best.epoch == handed_on
    assert latest_checkpoint(tmp_path / select, "best").epoch == handed_on
    assert latest_checkpoint(tmp_path / select, "last").epoch == 2


def test_an_unknown_select_rule_is_named(tmp_path, tiny_synth) -> None:
    raw = tiny_experiment(tmp_path / "run", tiny_synth, teacher={"optim": {"epochs": 1, "select": "worst"}})
    with pytest.raises(ConfigError, match="select"):
        ExperimentConfig.load(write_yaml(tmp_path / "exp.yaml", raw))
