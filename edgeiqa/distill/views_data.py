"""One decode, every view: the student's contract views and the teacher's global view + patches.

Distillation must show both networks the *same* image (same flip); decoding once also halves the
JPEG cost, which dominates CPU training on large photos.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import default_collate

from edgeiqa.data.distortions import apply_distortion
from edgeiqa.data.records import ImageRecord
from edgeiqa.data.torch_dataset import IQAImageDataset
from edgeiqa.errors import ConfigError
from edgeiqa.models.teacher_views import TeacherViewSpec, collate_teacher_views, teacher_views
from edgeiqa.runtime.batch import expand_paths
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.preprocess import decode_image, preprocess_image


@dataclass(frozen=True)
class DistortedCopies:
    """``count`` distorted copies of every record, appended after the originals: copy ``k`` of record
    ``i`` is item ``(k + 1) * len(records) + i``. Each draws one of ``distortions`` at a level in
    ``levels`` (inclusive) from the item's generator, so it changes with the epoch like any augmentation."""

    count: int
    distortions: tuple[str, ...]
    levels: tuple[int, int] = (1, 3)


class ViewsDataset(IQAImageDataset):
    """Items with ``student`` inputs (per contract), ``teacher`` views, normalised ``mos`` and ``index``.

    Either side may be None (teacher training needs no student views; student-alone training no
    teacher). Augmentation is the parent's: flip + jitter reproducible from (seed, epoch, index).
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        student_contract: PreprocessContract | None,
        teacher_spec: TeacherViewSpec | None,
        mos_range: tuple[float, float],
        train: bool = False,
        seed: int = 0,
        copies: DistortedCopies | None = None,
        mirror: bool = False,
        soft_targets: dict[str, float] | None = None,
    ) -> None:
        decode_contract = student_contract or (teacher_spec.contract if teacher_spec else None)
        if decode_contract is None:
            raise ValueError("ViewsDataset needs a student contract, a teacher view spec, or both")
        super().__init__(records, decode_contract, train=train, seed=seed, mos_range=mos_range, normalize_mos=True)
        self.student_contract = student_contract
        self.teacher_spec = teacher_spec
        self.copies = copies if copies is not None and copies.count > 0 else None
        self.mirror = mirror  # every item mirrored: the test-time "flip" view of an ensemble teacher
        # path -> the teacher's normalised score, read from label tables (item "teacher_score")
        self.soft_targets = soft_targets
        if soft_targets is not None:
            missing = [r.path for r in self.records if os.path.abspath(r.path) not in soft_targets]
            if missing:
                raise ConfigError(
                    f"{len(missing)} training image(s) have no teacher label, e.g. {missing[0]}: "
                    "label them (edgeiqa label) or add them to data.pseudo_pool"
                )

    def __len__(self) -> int:
        return len(self.records) * (1 + (self.copies.count if self.copies else 0))

    def target(self, index: int) -> float:
        return super().target(index % len(self.records))  # a copy keeps its source's label

    def distortion_of(self, index: int, rng: np.random.Generator) -> tuple[str, int] | None:
        """The (distortion, level) item ``index`` gets, drawn from ``rng``; None for an original."""
        if self.copies is None or index < len(self.records):
            return None
        name = self.copies.distortions[int(rng.integers(len(self.copies.distortions)))]
        return name, int(rng.integers(self.copies.levels[0], self.copies.levels[1] + 1))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        img = decode_image(self.records[index % len(self.records)].path, self.contract)
        item_rng = self.item_rng(index)
        drawn = self.distortion_of(index, item_rng)
        if drawn is not None:  # before the flip, so the teacher and the student see the same copy
            img = Image.fromarray(apply_distortion(drawn[0], np.asarray(img.convert("RGB")), drawn[1], item_rng))
        rng = item_rng if self.train else None  # evaluation: no flip, no fragment jitter
        if (rng is not None and rng.random() < 0.5) or self.mirror:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        item: dict[str, Any] = {"mos": torch.tensor(self.target(index), dtype=torch.float32), "index": index}
        if self.soft_targets is not None:
            score = self.soft_targets[os.path.abspath(self.records[index % len(self.records)].path)]
            item["teacher_score"] = torch.tensor(score, dtype=torch.float32)
        if self.student_contract is not None:
            item["student"] = {
                k: torch.from_numpy(v) for k, v in preprocess_image(img, self.student_contract, rng).items()
            }
        if self.teacher_spec is not None:
            item["teacher"] = teacher_views(img, self.teacher_spec, rng)
        return item


def collate_views(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack student inputs, pad teacher patches (mask), stack targets."""
    batch: dict[str, Any] = {
        "mos": torch.stack([it["mos"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }
    if "student" in items[0]:
        batch["student"] = default_collate([it["student"] for it in items])
    if "teacher" in items[0]:
        batch["teacher"] = collate_teacher_views([it["teacher"] for it in items])
    if "teacher_score" in items[0]:
        batch["teacher_score"] = torch.stack([it["teacher_score"] for it in items])
    return batch


def unlabelled_records(folder: Path) -> list[ImageRecord]:
    """Every image under ``folder`` as a record with a placeholder MOS (pre-training ignores labels)."""
    return [ImageRecord(path=Path(p).resolve(), mos=0.0, split="train") for p in expand_paths([folder])]
