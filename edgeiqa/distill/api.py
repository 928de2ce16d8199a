"""Entry points behind ``edgeiqa train-teacher`` and ``edgeiqa distill`` (also usable from Python).

Both take a :class:`~edgeiqa.distill.config.TrainingConfig` (an experiment file's
:class:`edgeiqa.experiment.TrainingConfig` is one) and return a typed result, :class:`TrainResult` or
:class:`DistillResult`; ``to_dict``/``from_dict`` give their plain JSON form.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeiqa.configs import to_dict
from edgeiqa.distill.config import TrainingConfig
from edgeiqa.distill.distributed import init_distributed
from edgeiqa.distill.evaluation import evaluate
from edgeiqa.distill.qat import train_qat
from edgeiqa.distill.runs import load_splits
from edgeiqa.distill.stages import STUDENT_STAGES, Run, train_student, train_teacher
from edgeiqa.distill.validate import validate_experiment
from edgeiqa.errors import ConfigError
from edgeiqa.fileio import atomic_write_text


@dataclass(frozen=True)
class TrainResult:
    """The teacher's training: its best validation SRCC (None when no epoch ran), the epochs in its
    history, the seconds this call took, and the epoch it resumed after (None: a fresh start)."""

    best_val_srcc: float | None
    epochs: int
    seconds: float
    resumed_from: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_val_srcc": self.best_val_srcc,
            "epochs": self.epochs,
            "seconds": self.seconds,
            "resumed_from": self.resumed_from,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        return cls(data["best_val_srcc"], int(data["epochs"]), float(data["seconds"]), data.get("resumed_from"))


@dataclass(frozen=True)
class DistillResult:
    """The student's folders and, when it evaluated, the contents of ``summary.json`` (else empty).

    ``final`` is the last stage's checkpoint (``student/final``, or ``student_only/final``); ``qat_final``
    the quantization-aware student's when that stage ran.
    """

    final: Path
    qat_final: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Paths as strings; ``qat_final`` only when the stage ran."""
        out: dict[str, Any] = {"final": str(self.final)}
        if self.qat_final is not None:
            out["qat_final"] = str(self.qat_final)
        return {**out, "summary": self.summary}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistillResult:
        qat = data.get("qat_final")
        return cls(Path(data["final"]), Path(qat) if qat else None, dict(data.get("summary") or {}))


@contextmanager
def scoped_process_state(threads: int | None) -> Iterator[None]:
    """Torch threads and every global RNG (torch, numpy, random) for the duration of a run only.

    Training seeds the model and resuming restores a checkpoint's RNG state; the Python API may be called
    again in the same process (a notebook, a sweep), which must not inherit either.
    """
    previous_threads = torch.get_num_threads()
    numpy_state, python_state = np.random.get_state(), random.getstate()
    if threads:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(previous_threads)
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def open_run(cfg: TrainingConfig, progress: bool = True) -> Run:
    """Validate the whole experiment, join torchrun's group if any, load the splits, record the config in
    the run folder. Nothing is created before the config passed validation."""
    validate_experiment(cfg)
    dist = init_distributed(cfg.device)
    out = Path(cfg.out)
    run = Run(cfg, load_splits(cfg.data), dist, progress)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        import yaml

        atomic_write_text(out / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return run


def parse_stages(text: str | None) -> tuple[str, ...] | None:
    """``--stages`` as a tuple; None when not given (every enabled stage)."""
    if not text:
        return None
    stages = tuple(s.strip() for s in text.split(","))
    unknown = [s for s in stages if s not in STUDENT_STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; stages are {list(STUDENT_STAGES)}")
    return stages


def run_teacher(cfg: TrainingConfig, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train (or resume) the teacher of ``cfg`` into ``<out>/teacher``."""
    with scoped_process_state(cfg.threads):
        return _run_teacher(cfg, resume, progress)


def _run_teacher(cfg: TrainingConfig, resume: bool, progress: bool) -> TrainResult:
    run = open_run(cfg, progress)
    try:
        result = train_teacher(run, resume=resume)
        return TrainResult(
            max((h["val_srcc"] for h in result.history), default=None),
            len(result.history),
            result.seconds,
            result.resumed_from,
        )
    finally:
        run.dist.close()


def run_distill(
    cfg: TrainingConfig,
    stages: tuple[str, ...] | None = None,
    student_only: bool = False,
    resume: bool = True,
    progress: bool = True,
    evaluate_after: bool = True,
) -> DistillResult:
    """Train the student stages; then (``evaluate_after``) score every trained model into summary.json.

    ``stages`` None runs every enabled stage in order (``qat`` only when ``student.qat.enabled``, and
    never for the label-only ablation). Asking for ``qat`` by name when it is disabled, or with
    ``student_only``, is a one-line :class:`ConfigError` before anything trains.

    A caller that trains the ablation next passes ``evaluate_after=False`` here: the later run's summary
    covers both students, so evaluating now would only be replaced.
    """
    with scoped_process_state(cfg.threads):
        return _run_distill(cfg, stages, student_only, resume, progress, evaluate_after)


def wants_qat(cfg: TrainingConfig, stages: tuple[str, ...] | None, student_only: bool) -> bool:
    """Whether the ``qat`` stage runs; raises when it was asked for by name but cannot (see run_distill)."""
    if stages is not None and "qat" in stages:
        if not cfg.student.qat.enabled:
            raise ConfigError(
                "stage 'qat' asked for, but student.qat.enabled is false: set "
                "student: {qat: {enabled: true}} in the config to run quantization-aware training"
            )
        if student_only:
            raise ConfigError(
                "stage 'qat' fine-tunes the distilled student (student/), not the label-only "
                "ablation: drop --student-only"
            )
        return True
    return stages is None and cfg.student.qat.enabled and not student_only


def _run_distill(
    cfg: TrainingConfig,
    stages: tuple[str, ...] | None,
    student_only: bool,
    resume: bool,
    progress: bool,
    evaluate_after: bool,
) -> DistillResult:
    qat = wants_qat(cfg, stages, student_only)  # before open_run: nothing is created for a refused request
    stages = stages or STUDENT_STAGES
    run = open_run(cfg, progress)
    try:
        final = train_student(run, stages, student_only, resume=resume)
        qat_final = train_qat(run, run.out / "student", resume=resume) if qat else None
        summary = evaluate(run) if ("calibrate" in stages or qat) and evaluate_after else {}
        return DistillResult(Path(final), Path(qat_final) if qat_final is not None else None, summary)
    finally:
        run.dist.close()
