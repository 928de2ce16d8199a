"""Fixtures shared across test folders: a tiny embedded dataset and a tiny experiment config."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_TYPES = ["gaussian_blur", "gaussian_noise", "jpeg"]


@pytest.fixture(autouse=True)
def _no_reuse_across_tests():
    """Exports reuse identical intermediate files within a process (edgeiqa.export.reuse): each test
    starts without what earlier tests left, so none passes or fails by the order tests run in."""
    import sys

    if "edgeiqa.export.reuse" in sys.modules:  # never import the export stack for tests that do not use it
        sys.modules["edgeiqa.export.reuse"].forget_all()


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: on two shared cores its pool spinning beside ONNX Runtime's
    (or beside another test process) makes tiny models slow."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 images (3 sources x 3 distortion types x 5 levels + pristine) at 64 px; returns mos.csv."""
    from edgeiqa.data.synth import synthesize

    root = tmp_path_factory.mktemp("tiny_synth") / "data"
    return synthesize(root, seed=0, max_side=64, max_sources=3, types=TINY_TYPES, progress=False).csv_path


@pytest.fixture(scope="session")
def qat_run(tmp_path_factory: pytest.TempPathFactory, tiny_synth: Path):
    """A tiny run trained through every stage, the optional ``qat`` stage included (shared by the distill
    and export tests, which only read it): ``(config, its YAML path, run_distill's result)``."""
    from experiment_helpers import qat_experiment, write_yaml

    from edgeiqa.distill.api import run_distill, run_teacher
    from edgeiqa.experiment import ExperimentConfig

    out = tmp_path_factory.mktemp("qat_run")
    config = write_yaml(out / "exp.yaml", qat_experiment(out / "run", tiny_synth))
    cfg = ExperimentConfig.load(config)
    run_teacher(cfg, progress=False)
    return cfg, config, run_distill(cfg, progress=False)  # every enabled stage: ..., calibrate, qat
