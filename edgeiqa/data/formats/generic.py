"""A generic CSV: ``path, mos`` plus optional ``split``, ``group`` (or ``source``) and ``std``.

This is the format of the embedded synthetic dataset (``path,mos,split,source,distortion,level``,
where ``source`` names the pristine photo) and the simplest way to bring any other dataset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from edgeiqa.data.formats.tables import (
    RecordList,
    Row,
    Table,
    find_image,
    parse_optional,
    parse_score,
    parse_split,
    read_csv,
)
from edgeiqa.data.records import ImageRecord, IQATable
from edgeiqa.errors import ConfigError, DataError

REQUIRED = ("path", "mos")
OPTIONAL = ("split", "group", "source", "std")


def load_csv(
    root: Path,
    *,
    metadata: str | Path = "mos.csv",
    mos_range: Sequence[float] | None = None,
    name: str | None = None,
) -> IQATable:
    """Read ``root`` (a CSV file) or ``root/metadata`` (default ``mos.csv``); paths are relative to the CSV.

    ``split`` may be empty on every row (no split) or set on every row (train/val/test, also
    training/validation); ``group`` falls back to ``source`` and then to the file stem. ``mos_range``
    defaults to the observed (min, max) of the scores; pass the nominal range of the scale when known.
    """
    path = Path(os.path.normpath((root if root.is_file() else root / metadata).absolute()))
    table = read_csv(path, REQUIRED, OPTIONAL)
    records = RecordList()
    for row in table.rows:
        where = table.where(row)
        if not row["path"]:
            raise DataError(f"{where}: empty 'path' value")
        # normpath, not resolve(): keep symlinked folders as the user named them.
        full = Path(os.path.normpath(path.parent / row["path"]))
        image = find_image(where, full.name, [full.parent])
        group = row["group"] or row["source"]
        std = parse_optional(table, row, "std")
        records.add(where, ImageRecord(image, parse_score(table, row, "mos"), _split(table, row), group, std))
    _check_split_consistency(table, records.items)
    return IQATable(name or path.parent.name or "csv", records.items, _range(path, records.items, mos_range))


def _split(table: Table, row: Row) -> str:
    text = row["split"]
    return parse_split(table.where(row), "split", text) if text else ""


def _check_split_consistency(table: Table, records: list[ImageRecord]) -> None:
    # A half-split table would silently train on rows meant to be held out: all or nothing.
    has_split = [bool(r.split) for r in records]
    if any(has_split) and not all(has_split):
        row = table.rows[has_split.index(False)]
        raise DataError(f"{table.where(row)}: empty 'split' while other rows have one (set it on every row or none)")


def _range(path: Path, records: list[ImageRecord], mos_range: Sequence[float] | None) -> tuple[float, float]:
    if mos_range is not None:
        if len(mos_range) != 2 or not float(mos_range[0]) < float(mos_range[1]):
            raise ConfigError(f"mos_range must be (low, high) with low < high, got {tuple(mos_range)}")
        return float(mos_range[0]), float(mos_range[1])
    low, high = min(r.mos for r in records), max(r.mos for r in records)
    if not low < high:
        raise DataError(f"{path}: every score is {low}; pass mos_range=(low, high) to give the scale")
    return low, high
