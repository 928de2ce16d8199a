"""The in-memory form of an IQA dataset: one :class:`ImageRecord` per scored image, in an :class:`IQATable`.

Every loader in :mod:`edgeiqa.data.loaders` returns an ``IQATable``; training, evaluation and the
benchmarks only ever see this form. Pure Python (no numpy, no torch) so it imports anywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgeiqa.errors import ConfigError

SPLITS = ("train", "val", "test")
# How an experiment splits a table (data.split): see IQATable.with_split.
SPLIT_RULES = ("official", "random", "folds")


@dataclass(frozen=True)
class ImageRecord:
    """One image and its human (or pseudo) mean opinion score.

    ``split`` is "train", "val", "test", or "" when the dataset has no official split. ``group`` is the
    content the image shows (its reference/pristine image for synthetic distortions): random splits keep
    a group on one side so no content leaks between train and test. It defaults to the file stem.
    """

    path: Path
    mos: float
    split: str = ""
    group: str = ""
    std: float | None = None

    def __post_init__(self) -> None:
        path = Path(self.path)
        if not path.is_absolute():
            raise ValueError(f"ImageRecord.path must be absolute, got {self.path}")
        if self.split not in SPLITS + ("",):
            raise ValueError(f"ImageRecord.split must be one of {SPLITS} or '', got {self.split!r}")
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "mos", float(self.mos))
        if not self.group:
            object.__setattr__(self, "group", path.stem)
        if self.std is not None:
            object.__setattr__(self, "std", float(self.std))


@dataclass
class IQATable:
    """A whole dataset: its records and the nominal range of its scores (e.g. (0, 100) for LIVE-C).

    ``split_seed`` is set by :meth:`random_split`, so a table can tell an official split (published
    with the dataset, comparable across papers) from one drawn here.
    """

    name: str
    records: list[ImageRecord]
    mos_range: tuple[float, float]
    split_seed: int | None = field(default=None)

    def __post_init__(self) -> None:
        low, high = (float(v) for v in self.mos_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"{self.name}: mos_range must be (low, high) with low < high, got {self.mos_range}")
        self.mos_range = (low, high)

    def __len__(self) -> int:
        return len(self.records)

    def split(self, name: str) -> list[ImageRecord]:
        """The records of one split ("train", "val" or "test"), in table order."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return [r for r in self.records if r.split == name]

    @property
    def is_split(self) -> bool:
        """Whether every record belongs to a split (official or random)."""
        return bool(self.records) and all(r.split for r in self.records)

    @property
    def has_official_split(self) -> bool:
        """Whether the split came with the dataset (not drawn by :meth:`random_split`)."""
        return self.is_split and self.split_seed is None

    def split_sizes(self) -> dict[str, int]:
        """Number of records per split name ("" counts records without a split)."""
        sizes: dict[str, int] = {}
        for record in self.records:
            sizes[record.split] = sizes.get(record.split, 0) + 1
        return sizes

    def with_split(self, rule: str, seed: int, fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> IQATable:
        """The table an experiment uses (``data.split``): under ``"official"`` the dataset's own split when
        it has one, otherwise (and always under ``"random"``) :meth:`random_split` with ``seed``; under
        ``"folds"``, :meth:`fold_split` with ``seed`` as the fold."""
        if rule not in SPLIT_RULES:
            raise ConfigError(f"split rule must be one of {', '.join(map(repr, SPLIT_RULES))}, got {rule!r}")
        if rule == "folds":
            return self.fold_split(seed, fractions)
        if rule == "official" and self.has_official_split:
            return self
        return self.random_split(seed, fractions)

    def fold_split(self, fold: int, fractions: Sequence[float] = (0.7, 0.1, 0.2)) -> IQATable:
        """A copy whose test split is fold ``fold`` of a k-fold partition by group, for cross-validation.

        The groups' order is fixed (the hash of :meth:`random_split` with seed 0) and cut into
        ``k = round(1 / test fraction)`` folds of near-equal size, so folds 0..k-1 test every group once.
        Validation takes the groups that follow the test fold (wrapping round), as many as the val fraction
        asks of the whole table; training takes the rest.
        """
        train, val, test = _check_fractions(fractions)
        folds = fold_count(test)
        if not 0 <= fold < folds:
            raise ConfigError(f"fold must be in 0..{folds - 1} for a test fraction of {test:g}, got {fold}")
        groups = sorted({r.group for r in self.records}, key=lambda g: _group_key(0, g))
        bounds = [round(i * len(groups) / folds) for i in range(folds + 1)]
        rest = groups[bounds[fold + 1] :] + groups[: bounds[fold]]
        n_val = round(val * len(groups))
        assignment = dict.fromkeys(groups[bounds[fold] : bounds[fold + 1]], "test")
        assignment.update(dict.fromkeys(rest[:n_val], "val"))
        assignment.update(dict.fromkeys(rest[n_val:], "train"))
        records = [dataclasses.replace(r, split=assignment[r.group]) for r in self.records]
        return IQATable(self.name, records, self.mos_range, split_seed=fold)

    def random_split(self, seed: int, fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> IQATable:
        """A copy with train/val/test drawn by group, deterministically for ``seed``.

        ``fractions`` (train, val, test) apply to the number of groups; a zero fraction leaves that split
        empty (LIVE-C's customary 80/20 is ``(0.8, 0.0, 0.2)``). The order of groups comes from a hash of
        (seed, group), so it is the same on every machine and Python version, and independent of the
        order of the records. Any existing split is replaced.
        """
        groups = sorted({r.group for r in self.records}, key=lambda g: _group_key(seed, g))
        counts = _allocate(len(groups), _check_fractions(fractions))
        assignment: dict[str, str] = {}
        start = 0
        for split_name, count in zip(SPLITS, counts):
            for group in groups[start : start + count]:
                assignment[group] = split_name
            start += count
        records = [dataclasses.replace(r, split=assignment[r.group]) for r in self.records]
        return IQATable(self.name, records, self.mos_range, split_seed=seed)


def fold_count(test_fraction: float) -> int:
    """The number of folds a test fraction makes (0.2 -> 5); refuses one that is not 1/k."""
    if test_fraction <= 0 or abs(1 / test_fraction - round(1 / test_fraction)) > 1e-6:
        raise ConfigError(f"split 'folds' needs a test fraction of 1/k (0.2 for 5 folds), got {test_fraction:g}")
    return round(1 / test_fraction)


def _group_key(seed: int, group: str) -> str:
    # sha256 rather than random.shuffle: stable across Python versions, platforms and record order.
    return hashlib.sha256(f"{seed}\x00{group}".encode()).hexdigest()


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or min(values) < 0 or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ConfigError(
            f"split fractions must be 3 non-negative numbers (train, val, test) summing to 1, got {tuple(fractions)}"
        )
    return values  # type: ignore[return-value]


def _allocate(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Split ``n`` items by ``fractions`` (largest remainder), giving each positive fraction >= 1 item
    whenever there are enough items, so a small dataset never ends up with an empty test split."""
    exact = [f * n for f in fractions]
    counts = [int(math.floor(e)) for e in exact]
    by_remainder = sorted(range(3), key=lambda i: (exact[i] - counts[i], fractions[i]), reverse=True)
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    for i in range(3):
        if fractions[i] > 0 and counts[i] == 0:
            donor = max(range(3), key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    return counts
