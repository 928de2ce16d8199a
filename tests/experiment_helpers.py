"""Tiny experiment configs for tests that train (imported by test modules; tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path

import yaml


def tiny_experiment(out: Path, csv_path: Path, **overrides) -> dict:
    """An experiment dict with the tiny test models and one-epoch stages; ``overrides`` merge on top
    (a mapping into the section of that name, which need not be in the dict yet)."""
    optim = {"epochs": 1, "batch_size": 8, "lr": 0.003, "warmup_epochs": 0.0}
    cfg = {
        "name": "tiny",
        "seed": 0,
        "out": str(out),
        "threads": 1,
        "data": {"dataset": "csv", "root": str(csv_path), "options": {"mos_range": [0, 100]}},
        "teacher": {"model": "test_eiqanet", "optim": dict(optim)},
        "student": {
            "model": "test_eqcnet",
            "feature_pairs": [{"student": "embed", "teacher": "head:input"}],
            "pretrain": {"optim": dict(optim)},
            "finetune": {"optim": dict(optim)},
        },
    }
    for key, value in overrides.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


# The qat stage switched on, one small epoch, activation ranges from 16 training images.
TINY_QAT = {"enabled": True, "optim": {"epochs": 1, "batch_size": 8, "lr": 1e-4}, "calibration_images": 16}


def qat_experiment(out: Path, csv_path: Path, **qat) -> dict:
    """:func:`tiny_experiment` with the optional qat stage enabled (``qat`` merges into its section)."""
    return tiny_experiment(out, csv_path, student={"qat": {**TINY_QAT, **qat}})


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path
