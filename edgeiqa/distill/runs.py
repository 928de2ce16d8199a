"""Plumbing shared by the stages: splits, loaders, inference over a split."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from edgeiqa.data.loaders import load_dataset
from edgeiqa.data.records import ImageRecord, IQATable
from edgeiqa.distill.config import DataConfig
from edgeiqa.distill.distributed import DistContext
from edgeiqa.distill.views_data import ViewsDataset, collate_views
from edgeiqa.errors import ConfigError


@dataclass
class Splits:
    table: IQATable
    train: list[ImageRecord]
    val: list[ImageRecord]
    test: list[ImageRecord]

    @property
    def mos_range(self) -> tuple[float, float]:
        return self.table.mos_range


def load_splits(cfg: DataConfig) -> Splits:
    """The dataset with train/val/test: its official split, or a seeded split by content group."""
    table = load_dataset(cfg.dataset, cfg.root, **cfg.options)
    table = table.with_split(cfg.split, cfg.split_seed, tuple(cfg.fractions))
    splits = Splits(table, table.split("train"), table.split("val"), table.split("test"))
    for name in ("train", "val"):
        if not getattr(splits, name):
            raise ConfigError(f"{cfg.root}: the {name} split is empty; set data.fractions so it gets images")
    return splits


def make_loader(
    dataset: ViewsDataset, batch_size: int, dist: DistContext, workers: int, shuffle: bool, seed: int
) -> tuple[DataLoader, Callable[[int], Iterable[dict[str, Any]]]]:
    """A loader plus ``batches(epoch)``, whose order is a function of (seed, epoch) so resume repeats it."""
    if dist.enabled:
        sampler = DistributedSampler(dataset, dist.world_size, dist.rank, shuffle=shuffle, seed=seed)
    else:
        generator = torch.Generator()
        sampler = RandomSampler(dataset, generator=generator) if shuffle else None
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_views,
        drop_last=shuffle and len(dataset) > batch_size,
    )

    def batches(epoch: int) -> Iterable[dict[str, Any]]:
        dataset.set_epoch(epoch)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        elif sampler is not None:
            generator.manual_seed(seed * 100_003 + epoch)
        return iter(loader)

    return loader, batches


@torch.no_grad()
def predict(
    forward: Callable[[dict[str, Any]], torch.Tensor], loader: DataLoader, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and (normalised) MOS for every item of an evaluation loader, in dataset order."""
    from edgeiqa.distill.modules import to_device

    preds, targets = [], []
    for batch in loader:
        batch = to_device(batch, device)
        preds.append(forward(batch).float().cpu())
        targets.append(batch["mos"].cpu())
    return torch.cat(preds).numpy(), torch.cat(targets).numpy()
