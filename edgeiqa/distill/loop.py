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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from edgeiqa.distill.checkpoint import Checkpoint, latest_checkpoint, restore_rng_state, save_checkpoint
from edgeiqa.fileio import atomic_write_text
from edgeiqa.distill.config import OptimConfig
from edgeiqa.distill.distributed import DistContext
from edgeiqa.distill.finetune import apply_train_mode, param_groups
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
    """Train ``module`` for ``cfg.epochs`` epochs (or until early stopping) and checkpoint each epoch."""
    started = time.perf_counter()
    device = dist.device
    module.to(device)
    groups = param_groups(module, cfg)
    params = [p for group in groups for p in group["params"]]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict[str, float]] = []
    best_srcc, since_best, start_epoch, resumed_from = -math.inf, 0, 0, None
    if not resume and dist.is_main and stage_dir.exists():
        shutil.rmtree(stage_dir)  # a fresh start must not inherit an older run's best.json
    dist.barrier()
    last = latest_checkpoint(stage_dir) if resume else None
    if last is not None:
        _restore(last, module, optimizer)
        history = last.state.get("history", [])
        best_srcc, since_best = last.state.get("best_srcc", -math.inf), last.state.get("since_best", 0)
        start_epoch, resumed_from = last.epoch + 1, last.epoch
        if last.state.get("complete"):
            start_epoch = cfg.epochs  # nothing left to do: a finished stage is skipped on resume
    trained = dist.wrap(module)
    total_steps = cfg.epochs * steps_per_epoch
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    for epoch in range(start_epoch, cfg.epochs):
        trained.train()
        apply_train_mode(module, cfg, epoch)
        sums: dict[str, float] = {}
        step = -1
        batches = make_batches(epoch)
        bar = progress_bar(steps_per_epoch, f"{name} {epoch + 1}/{cfg.epochs}", iterable=batches,
                           enabled=progress and dist.is_main, leave=False)
        for step, batch in enumerate(bar):
            if step >= steps_per_epoch:
                break
            factor = lr_factor(epoch * steps_per_epoch + step, total_steps, warmup, cfg.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            with _autocast(device, cfg):
                loss, parts = trained(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            for key, value in {"loss": float(loss.detach()), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.4f}")
        module.eval()
        with torch.no_grad():
            val = validate()
        n = max(1, min(steps_per_epoch, step + 1))
        record = {"epoch": epoch, **{f"train_{k}": v / n for k, v in sums.items()}, **{f"val_{k}": v for k, v in val.items()}}
        history.append(record)
        improved = val["srcc"] > best_srcc
        best_srcc, since_best = (val["srcc"], 0) if improved else (best_srcc, since_best + 1)
        stop = bool(cfg.early_stop_patience) and since_best >= cfg.early_stop_patience
        complete = stop or epoch + 1 == cfg.epochs
        if dist.is_main:
            state = dict(metadata, stage=name, metrics=record, history=history, best_srcc=best_srcc,
                         since_best=since_best, complete=complete)
            save_checkpoint(stage_dir, epoch, module, state, optimizer, is_best=improved or cfg.select == "last")
            _write_history(stage_dir, history)
            if progress:
                progress_write(f"{name} epoch {epoch + 1}/{cfg.epochs}: loss {record.get('train_loss', float('nan')):.4f} "
                           f"val SRCC {val['srcc']:.4f}{' *' if improved else ''}")
        dist.barrier()
        if stop:
            break
    best = latest_checkpoint(stage_dir, "best") if stage_dir.exists() else None
    return StageResult(stage_dir, best, history, resumed_from, time.perf_counter() - started)
