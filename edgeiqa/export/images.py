"""Image sets the export layer reads: INT8 calibration images and the parity gate's validation images.

Both are preprocessed with the runtime's own :func:`edgeiqa.runtime.preprocess.preprocess` (Pillow,
the reference decoder), so calibration and parity see exactly the arrays a deployed artifact gets.

INT8 calibration images come from a training or validation split, **never the test split**:
:meth:`ImageSet.from_table` refuses ``split="test"``, and tables are filtered by split before any
image is chosen. A plain folder or list of paths has no split: the caller vouches for it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.data.records import IQATable
from edgeiqa.errors import ConfigError
from edgeiqa.runtime.batch import expand_paths
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.preprocess import preprocess

CALIBRATION_SPLITS = ("train", "val")


@dataclass(frozen=True)
class ImageSet:
    """Image paths (+ MOS when known) and where they came from, for the manifest."""

    paths: tuple[str, ...]
    mos: tuple[float, ...] | None = None
    source: str = "paths"
    split: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.paths:
            raise ConfigError(f"image set {self.source!r} is empty")
        if self.mos is not None and len(self.mos) != len(self.paths):
            raise ConfigError(f"image set {self.source!r}: {len(self.paths)} paths but {len(self.mos)} MOS values")

    def __len__(self) -> int:
        return len(self.paths)

    def describe(self) -> dict[str, Any]:
        """JSON for the manifest: where the images came from and how many (not the paths)."""
        return {
            "source": self.source,
            "split": self.split,
            "n": len(self.paths),
            "mos": self.mos is not None,
            **self.info,
        }

    @classmethod
    def from_paths(
        cls, paths: Iterable[str | os.PathLike], mos: Sequence[float] | None = None, source: str = "paths"
    ) -> ImageSet:
        return cls(tuple(str(p) for p in paths), None if mos is None else tuple(float(m) for m in mos), source)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, n: int | None = None, seed: int = 0) -> ImageSet:
        """Image files under ``folder`` (recursively), at most ``n`` of them, chosen reproducibly."""
        found = expand_paths([folder])
        if not found:
            raise ConfigError(f"{folder}: no image files found")
        chosen = _choose(found, n, seed)
        return cls(tuple(chosen), source=str(folder), info={"available": len(found)})

    @classmethod
    def from_table(cls, table: IQATable, split: str, n: int | None = None, seed: int = 0) -> ImageSet:
        """At most ``n`` images of one split of ``table`` (for INT8 calibration: ``train`` or ``val`` only)."""
        if split not in CALIBRATION_SPLITS:
            raise ConfigError(
                f"INT8 calibration images must come from the {' or '.join(CALIBRATION_SPLITS)} split, not "
                f"{split!r}: calibrating on test images leaks them into the artifact"
            )
        return cls._from_split(table, split, n, seed)

    @classmethod
    def validation_from_table(cls, table: IQATable, split: str | None, n: int | None = None, seed: int = 0) -> ImageSet:
        """Images + MOS for the parity gate: one split, or every record when ``split`` is None."""
        return cls._from_split(table, split, n, seed)

    @classmethod
    def _from_split(cls, table: IQATable, split: str | None, n: int | None, seed: int) -> ImageSet:
        records = table.records if split is None else table.split(split)
        if not records:
            sizes = table.split_sizes()
            raise ConfigError(
                f"dataset {table.name!r} has no {split!r} images (split sizes: {sizes}); split it first "
                "or name a folder of images"
            )
        by_path = {str(r.path): r for r in records}
        chosen = _choose(list(by_path), n, seed)
        return cls(
            tuple(chosen),
            tuple(by_path[p].mos for p in chosen),
            table.name,
            split,
            {"available": len(records)},
        )


def _choose(paths: list[str], n: int | None, seed: int) -> list[str]:
    """``n`` of ``paths`` in a reproducible, machine-independent order (all of them when n is None)."""
    if n is None or n >= len(paths):
        return list(paths)
    # sha256 rather than random: the same images on every machine and Python version.
    ranked = sorted(paths, key=lambda p: hashlib.sha256(f"{seed}\x00{Path(p).name}\x00{p}".encode()).hexdigest())
    return sorted(ranked[:n])


def load_image_set(
    spec: str | os.PathLike,
    *,
    dataset: str | None = None,
    split: str | None = "train",
    n: int | None = 300,
    seed: int = 0,
    calibration: bool = True,
) -> ImageSet:
    """What the CLI's ``--calib`` / ``--val`` take: a dataset root, a CSV, or a folder of images.

    ``dataset`` names a registered loader (``livec``, ``koniq10k``, ``csv``, ...). Without it, a
    ``.csv`` file (or a folder holding ``mos.csv``) is read as the generic CSV dataset and anything
    else as a plain folder of images. ``calibration`` applies the never-the-test-split rule.
    """
    path = Path(spec)
    if dataset is None and (path.suffix.lower() == ".csv" or (path / "mos.csv").is_file()):
        dataset = "csv"
    if dataset is None:
        if not path.is_dir():
            raise ConfigError(f"{path}: not a folder of images, a CSV, or a dataset root (pass --calib-dataset)")
        return ImageSet.from_folder(path, n, seed)
    from edgeiqa.data.loaders import load_dataset

    table = load_dataset(dataset, path)
    if calibration:
        return ImageSet.from_table(table, split or "train", n, seed)
    return ImageSet.validation_from_table(table, split, n, seed)


def iter_feeds(
    paths: Sequence[str], contract: PreprocessContract, batch_size: int = 1, fixed_batch: bool = False
) -> Iterator[dict[str, np.ndarray]]:
    """Batched model inputs, in order; consecutive same-shaped images are stacked up to ``batch_size``.

    ``fixed_batch`` pads the last batch by repeating its last image (TensorRT's calibrator needs
    full batches); otherwise the last batch is short.
    """
    pending: list[dict[str, np.ndarray]] = []
    for path in paths:
        feed = preprocess(path, contract)
        if pending and any(feed[k].shape != pending[0][k].shape for k in feed):
            yield _stack(pending, batch_size if fixed_batch else None)
            pending = []
        pending.append(feed)
        if len(pending) == batch_size:
            yield _stack(pending, None)
            pending = []
    if pending:
        yield _stack(pending, batch_size if fixed_batch else None)


def _stack(feeds: list[dict[str, np.ndarray]], pad_to: int | None) -> dict[str, np.ndarray]:
    if pad_to is not None and len(feeds) < pad_to:
        feeds = feeds + [feeds[-1]] * (pad_to - len(feeds))
    return {name: np.ascontiguousarray(np.stack([f[name] for f in feeds])) for name in feeds[0]}


def ort_calibration_reader(paths: Sequence[str], contract: PreprocessContract, batch_size: int = 1) -> Any:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over ``paths`` (preprocessed lazily)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.paths = list(paths)
            self.seen: list[str] = []
            self.rewind()

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

        def rewind(self) -> None:
            self._feeds = iter_feeds(self._track(), contract, batch_size)

        def _track(self) -> Iterator[str]:
            for path in self.paths:
                self.seen.append(path)  # what the calibrator really read, for tests and audits
                yield path

    return _Reader()
