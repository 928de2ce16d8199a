"""One training loop for every stage: AdamW + warm-up/cosine, AMP where it helps, early stopping on
validation SRCC, an atomic checkpoint per epoch, resume after a kill, and DDP when run under torchrun.

A stage supplies a :class:`TrainModule` (its ``forward(batch)`` returns the loss and its named parts, so
DDP sees the whole computation) and a validation function; this module owns everything else.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeiqa.distill.checkpoint import Checkpoint, latest_checkpoint, restore_rng_state, save_checkpoint
from edgeiqa.distill.config import OptimConfig
from edgeiqa.distill.distributed import DistContext
from edgeiqa.distill.finetune import apply_train_mode, param_groups
from edgeiqa.fileio import atomic_write_text
from edgeiqa.progress import progress_bar, progress_write


class TrainModule(nn.Module):
    """What a stage trains. Frozen helpers (the teacher) must not be registered as submodules."""

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:  # pragma: no cover
        raise NotImplementedError


@dataclass
class StageResult:
    stage_dir: Path
    best: Checkpoint | None
    history: list[dict[str, float]]
    resumed_from: int | None
    seconds: float


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up then cosine decay to ``min_ratio`` of the base learning rate."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _autocast(device: torch.device, cfg: OptimConfig):
    enabled = cfg.amp == "auto" and device.type == "cuda"
    dtype = torch.bfloat16 if enabled and torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


def _write_history(stage_dir: Path, history: list[dict[str, float]]) -> None:
    atomic_write_text(stage_dir / "metrics.json", json.dumps(history, indent=1))
    if history:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(history[-1]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(stage_dir / "metrics.csv", buf.getvalue())


def _restore(ckpt: Checkpoint, module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    module.load_state_dict(ckpt.model_state())
    optim_state = ckpt.optimizer_state()
    if optim_state is not None:
        optimizer.load_state_dict(optim_state)
    restore_rng_state(ckpt.state["rng"])


@dataclass
class _Stage:
    """What one :func:`run_stage` call trains with; fixed for all its epochs."""

    name: str
    module: TrainModule
    trained: nn.Module  # ``module``, wrapped for DDP when distributed
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]
    cfg: OptimConfig
    stage_dir: Path
    dist: DistContext
    steps_per_epoch: int
    show: bool  # progress output (this rank, when asked for)


@dataclass
class _Standing:
    """Where a stage stands: restored from its last checkpoint on resume, advanced by every epoch."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_srcc: float = -math.inf
    since_best: int = 0
    next_epoch: int = 0
    resumed_from: int | None = None


def _resume(
    stage_dir: Path,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: OptimConfig,
    dist: DistContext,
    resume: bool,
) -> _Standing:
    """The last checkpoint's weights, optimiser, RNG and standing (``resume``), or a clean start."""
    if not resume and dist.is_main and stage_dir.exists():
        shutil.rmtree(stage_dir)  # a fresh start must not inherit an older run's best.json
    dist.barrier()
    last = latest_checkpoint(stage_dir) if resume else None
    if last is None:
        return _Standing()
    _restore(last, module, optimizer)
    # A finished stage is skipped on resume: nothing is left to do.
    next_epoch = cfg.epochs if last.state.get("complete") else last.epoch + 1
    return _Standing(
        last.state.get("history", []),
        last.state.get("best_srcc", -math.inf),
        last.state.get("since_best", 0),
        next_epoch,
        last.epoch,
    )


def _train_epoch(stage: _Stage, epoch: int, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
    """One epoch of at most ``steps_per_epoch`` steps; the mean of the loss and of each named part."""
    cfg, steps = stage.cfg, stage.steps_per_epoch
    stage.trained.train()
    apply_train_mode(stage.module, cfg, epoch)
    total, warmup = cfg.epochs * steps, int(cfg.warmup_epochs * steps)
    sums: dict[str, float] = {}
    step = -1
    bar = progress_bar(
        steps, f"{stage.name} {epoch + 1}/{cfg.epochs}", iterable=batches, enabled=stage.show, leave=False
    )
    for step, batch in enumerate(bar):
        if step >= steps:
            break
        factor = lr_factor(epoch * steps + step, total, warmup, cfg.min_lr_ratio)
        for group in stage.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        with _autocast(stage.dist.device, cfg):
            loss, parts = stage.trained(batch)
        stage.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(stage.params, cfg.grad_clip)
        stage.optimizer.step()
        for key, value in {"loss": float(loss.detach()), **parts}.items():
            sums[key] = sums.get(key, 0.0) + value
        bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.4f}")
    n = max(1, min(steps, step + 1))
    return {key: value / n for key, value in sums.items()}


def _end_epoch(
    stage: _Stage,
    standing: _Standing,
    epoch: int,
    train: dict[str, float],
    val: dict[str, float],
    metadata: dict[str, Any],
) -> bool:
    """Record the epoch, keep track of the best validation SRCC, checkpoint; whether to stop early."""
    cfg = stage.cfg
    record = {"epoch": epoch, **{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items()}}
    standing.history.append(record)
    improved = val["srcc"] > standing.best_srcc
    if improved:
        standing.best_srcc, standing.since_best = val["srcc"], 0
    else:
        standing.since_best += 1
    stop = bool(cfg.early_stop_patience) and standing.since_best >= cfg.early_stop_patience
    if stage.dist.is_main:
        state = dict(
            metadata,
            stage=stage.name,
            metrics=record,
            history=standing.history,
            best_srcc=standing.best_srcc,
            since_best=standing.since_best,
            complete=stop or epoch + 1 == cfg.epochs,
        )
        save_checkpoint(
            stage.stage_dir, epoch, stage.module, state, stage.optimizer, is_best=improved or cfg.select == "last"
        )
        _write_history(stage.stage_dir, standing.history)
        if stage.show:
            progress_write(
                f"{stage.name} epoch {epoch + 1}/{cfg.epochs}: loss "
                f"{record.get('train_loss', float('nan')):.4f} val SRCC {val['srcc']:.4f}{' *' if improved else ''}"
            )
    stage.dist.barrier()
    return stop


def run_stage(
    name: str,
    module: TrainModule,
    make_batches: Callable[[int], Iterable[dict[str, Any]]],
    steps_per_epoch: int,
    validate: Callable[[], dict[str, float]],
    cfg: OptimConfig,
    stage_dir: Path,
    dist: DistContext,
    metadata: dict[str, Any],
    resume: bool = True,
    progress: bool = True,
) -> StageResult:
    """Train ``module`` for ``cfg.epochs`` epochs (or until early stopping) and checkpoint each epoch.

    ``make_batches(epoch)`` yields the epoch's batches, ``validate()`` returns validation metrics (with
    ``srcc``), ``metadata`` goes into every checkpoint's state. Resuming continues after the last
    complete epoch (:func:`_resume`); each epoch trains (:func:`_train_epoch`), then validates and
    checkpoints (:func:`_end_epoch`).
    """
    started = time.perf_counter()
    module.to(dist.device)
    groups = param_groups(module, cfg)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    standing = _resume(stage_dir, module, optimizer, cfg, dist, resume)
    stage = _Stage(
        name,
        module,
        dist.wrap(module),
        optimizer,
        [p for g in groups for p in g["params"]],
        cfg,
        stage_dir,
        dist,
        steps_per_epoch,
        progress and dist.is_main,
    )
    for epoch in range(standing.next_epoch, cfg.epochs):
        train = _train_epoch(stage, epoch, make_batches(epoch))
        module.eval()
        with torch.no_grad():
            val = validate()
        if _end_epoch(stage, standing, epoch, train, val, metadata):
            break
    best = latest_checkpoint(stage_dir, "best") if stage_dir.exists() else None
    return StageResult(stage_dir, best, standing.history, standing.resumed_from, time.perf_counter() - started)
