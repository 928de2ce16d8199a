"""Entry points behind ``edgeiqa train-teacher`` and ``edgeiqa distill`` (also usable from Python)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgeiqa.configs import to_dict
from edgeiqa.distill.config import ExperimentConfig
from edgeiqa.distill.distributed import init_distributed
from edgeiqa.distill.runs import load_splits
from edgeiqa.distill.stages import STUDENT_STAGES, Run, evaluate, train_student, train_teacher
from edgeiqa.fileio import atomic_write_text
from edgeiqa.errors import ConfigError


def open_run(cfg: ExperimentConfig, progress: bool = True) -> Run:
    """Join torchrun's group if any, set threads, load the splits, record the config in the run folder."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist = init_distributed(cfg.device)
    out = Path(cfg.out)
    run = Run(cfg, load_splits(cfg.data), dist, progress)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        import yaml

        atomic_write_text(out / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return run


def parse_stages(text: str | None) -> tuple[str, ...]:
    stages = tuple(s.strip() for s in text.split(",")) if text else STUDENT_STAGES
    unknown = [s for s in stages if s not in STUDENT_STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; stages are {list(STUDENT_STAGES)}")
    return stages


def run_teacher(cfg: ExperimentConfig, resume: bool = True, progress: bool = True) -> dict[str, Any]:
    run = open_run(cfg, progress)
    try:
        result = train_teacher(run, resume=resume)
        return {"best_val_srcc": max((h["val_srcc"] for h in result.history), default=None),
                "epochs": len(result.history), "seconds": result.seconds, "resumed_from": result.resumed_from}
    finally:
        run.dist.close()


def run_distill(
    cfg: ExperimentConfig, stages: tuple[str, ...] = STUDENT_STAGES, student_only: bool = False,
    resume: bool = True, progress: bool = True,
) -> dict[str, Any]:
    run = open_run(cfg, progress)
    try:
        final = train_student(run, stages, student_only, resume=resume)
        summary = evaluate(run) if "calibrate" in stages else {}
        return {"final": str(final), "summary": summary}
    finally:
        run.dist.close()
