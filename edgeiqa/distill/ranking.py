"""Distortion ranking: a model learns that, within one photo and one distortion type, more is worse.

Human scores on a few hundred small photos never show a 4K frame's sensor noise or compression, and a
teacher trained on them alone ignores both at UHD (``studies/results/uhd_check_*.json``). A graded set
(:mod:`edgeiqa.data.graded`: photos at native resolution, each distortion at levels 0..4) needs no
label: each training step also draws one *group* (one photo, one type, ``size`` of its levels, one
flip for all) and the ``distortion_rank`` loss asks the model to order the group by level. The MOS
batch and its losses are untouched, so the scale the model learns stays the MOS scale.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from edgeiqa.data.graded import GradedItem, read_graded
from edgeiqa.distill.losses import _order_prob, pairwise_fidelity
from edgeiqa.errors import ConfigError
from edgeiqa.models.teacher_views import TeacherViewSpec, collate_teacher_views, teacher_views
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.preprocess import decode_image, preprocess_image

DISTORTION_RANK = "distortion_rank"
# Native patches per image of a ranking group: the order of a group's levels shows in any patch, and the
# teacher's full count at 4K (6) made each training step's ranking part cost more than its MOS batch.
RANKING_PATCHES = 2


def ranking_views(spec: TeacherViewSpec) -> TeacherViewSpec:
    """The teacher's views for ranking groups: its own, with at most :data:`RANKING_PATCHES` patches
    (jittered over the photo in training, so over the epochs every region is seen)."""
    return dataclasses.replace(spec, max_patches=min(spec.max_patches, RANKING_PATCHES))


class RankingGroups(Dataset):
    """Item ``i``: ``size`` levels of group ``i`` (one source x one type, its pristine as level 0), each as
    the teacher's views and/or the student's inputs, plus ``level``. Which levels and the flip come from
    (seed, draw, i), so a run is reproducible."""

    def __init__(
        self,
        csv_path: Path | str,
        size: int,
        teacher_spec: TeacherViewSpec | None = None,
        student_contract: PreprocessContract | None = None,
        seed: int = 0,
    ) -> None:
        rows = read_graded(Path(csv_path))
        pristine = {item.source: path for path, item in rows if item.level == 0}
        groups: dict[tuple[str, str], list[tuple[Path, GradedItem]]] = defaultdict(list)
        for path, item in rows:
            if item.level > 0 and item.source in pristine:
                groups[(item.source, item.distortion)].append((path, item))
        self.groups = [
            [(pristine[src], 0)] + sorted(((p, it.level) for p, it in members), key=lambda m: m[1])
            for (src, _), members in sorted(groups.items())
        ]
        if not self.groups:
            raise ConfigError(f"{csv_path}: no group has both a pristine photo and distorted levels")
        if not 2 <= size <= min(len(g) for g in self.groups):
            raise ConfigError(f"ranking group size must be in 2..{min(len(g) for g in self.groups)}, got {size}")
        self.size, self.seed, self.draw = size, seed, 0
        self.teacher_spec, self.student_contract = teacher_spec, student_contract
        self.decode_contract = student_contract or (teacher_spec.contract if teacher_spec else None)
        if self.decode_contract is None:
            raise ValueError("RankingGroups needs a teacher view spec or a student contract")

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.draw, index])
        chosen = sorted(rng.choice(len(self.groups[index]), size=self.size, replace=False))
        flip = rng.random() < 0.5
        views, inputs, levels = [], [], []
        for k in chosen:
            path, level = self.groups[index][k]
            img = decode_image(path, self.decode_contract)
            if flip:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if self.teacher_spec is not None:
                views.append(teacher_views(img, self.teacher_spec, rng))
            if self.student_contract is not None:
                inputs.append(
                    {n: torch.from_numpy(a) for n, a in preprocess_image(img, self.student_contract, rng).items()}
                )
            levels.append(level)
        item: dict[str, Any] = {"level": torch.tensor(levels, dtype=torch.float32)}
        if views:
            item["teacher"] = collate_teacher_views(views)
        if inputs:
            item["student"] = {n: torch.stack([x[n] for x in inputs]) for n in inputs[0]}
        return item


def ranking_feed(groups: RankingGroups, workers: int = 0) -> Iterator[dict[str, Any]]:
    """Groups forever, in a seeded order that changes every pass; decoding in ``workers`` processes."""
    while True:
        order = np.random.default_rng([groups.seed, groups.draw]).permutation(len(groups))
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(groups, order.tolist()), batch_size=None, num_workers=workers
        )
        yield from loader
        groups.draw += 1


def distortion_rank_term(
    forward: Callable[[dict[str, Any]], torch.Tensor], group: dict[str, Any], scale: float
) -> torch.Tensor:
    """Fidelity loss between the model's pair order on one group and the level order (lower is better)."""
    pred = forward(group)
    return pairwise_fidelity(pred, _order_prob(-group["level"].to(pred.device)), scale=scale)
