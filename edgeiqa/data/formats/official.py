"""Loaders for UHD-IQA, KonIQ-10k, KADID-10k and SPAQ from their official metadata files.

Each reads the file the dataset's authors publish, unchanged, and is strict about its columns and
values; where the distributions differ in folder layout the loader looks in each known place.
"""

from __future__ import annotations

import math
from pathlib import Path

from edgeiqa.data.formats.tables import (
    RecordList,
    Table,
    find_file,
    find_folder,
    find_image,
    image_name,
    parse_score,
    parse_split,
    read_csv,
    read_xlsx,
    require_dir,
)
from edgeiqa.data.records import ImageRecord, IQATable
from edgeiqa.errors import ConfigError, DataError

UHDIQA_COLUMNS = ("image_name", "quality_mos", "set")
KONIQ_SCORES = "koniq10k_scores_and_distributions.csv"
KONIQ_SETS = "koniq10k_distributions_sets.csv"
KONIQ_SCORE_COLUMNS = ("image_name", "MOS", "SD", "MOS_zscore")
KONIQ_SET_COLUMNS = ("image_name", "MOS", "set")
KADID_COLUMNS = ("dist_img", "ref_img", "dmos", "var")
SPAQ_SHEET = "MOS and Image attribute scores"
SPAQ_COLUMNS = ("Image name", "MOS")


def _folders(root: Path, override: str | Path | None, defaults: list[Path]) -> list[Path]:
    return [root / override] if override is not None else defaults


def load_uhdiqa(root: Path, *, metadata: str | Path | None = None, image_dir: str | Path | None = None) -> IQATable:
    """UHD-IQA (Hosu et al., 2024): ``uhd-iqa-metadata.csv`` with ``image_name, quality_mos, set``.

    MOS in 0..1; official split training/validation/test (4,269 / 904 / 900). Images are looked up in
    ``<set>/`` (the database archive's layout), ``challenge/<set>/`` (the AIM 2024 challenge layout),
    ``images/``, ``database/`` or the root itself, or only in ``image_dir`` when given.
    """
    root = require_dir(root, "uhdiqa")
    table = read_csv(find_file(root, metadata, ["uhd-iqa-metadata.csv"], "UHD-IQA metadata"), UHDIQA_COLUMNS)
    records = RecordList()
    for row in table.rows:
        where = table.where(row)
        set_name = row["set"]
        split = parse_split(where, "set", set_name)
        folders = _folders(
            root, image_dir, [root / set_name, root / "challenge" / set_name, root / "images", root / "database", root]
        )
        path = find_image(where, image_name(table, row, "image_name"), folders)
        records.add(where, ImageRecord(path, parse_score(table, row, "quality_mos"), split))
    return IQATable("uhdiqa", records.items, (0.0, 1.0))


def _koniq_sets(table: Table) -> dict[str, tuple[str, float, str]]:
    """image name -> (split, 100-point MOS, where) from ``koniq10k_distributions_sets.csv``."""
    sets: dict[str, tuple[str, float, str]] = {}
    for row in table.rows:
        where = table.where(row)
        name = image_name(table, row, "image_name")
        if name in sets:
            raise DataError(f"{where}: image {name!r} is listed twice (first at {sets[name][2]})")
        sets[name] = (parse_split(where, "set", row["set"]), parse_score(table, row, "MOS"), where)
    return sets


def load_koniq10k(
    root: Path,
    *,
    mos_scale: int = 100,
    metadata: str | Path | None = None,
    sets: str | Path | None = None,
    image_dir: str | Path | None = None,
) -> IQATable:
    """KonIQ-10k (Hosu et al., 2020) from ``koniq10k_scores_and_distributions.csv``.

    ``mos_scale=100`` (default) uses ``MOS_zscore``, the [1, 100] score the KonIQ paper and most
    later work report; it equals the ``MOS`` column of ``koniq10k_distributions_sets.csv``.
    ``mos_scale=5`` uses the raw 1..5 ``MOS`` with its ``SD`` as ``std`` (SD is on that 1..5 scale, so it
    is left out of the 100-point records). The official train/val/test split (7,058 / 1,000 / 2,015)
    comes from ``koniq10k_distributions_sets.csv`` (github.com/subpic/koniq, ``set`` column) when it is
    present; that file alone is also enough for the 100-point scale. Images: ``1024x768/`` or ``512x384/``.
    """
    root = require_dir(root, "koniq10k")
    if mos_scale not in (100, 5):
        raise ConfigError(f"koniq10k: mos_scale must be 100 (MOS_zscore) or 5 (raw MOS), got {mos_scale!r}")
    folder = find_folder(root, image_dir, ["1024x768", "512x384"], "KonIQ-10k image folder")
    sets_path = _optional_file(root, sets, [KONIQ_SETS, f"metadata/{KONIQ_SETS}"])
    split_of = _koniq_sets(read_csv(sets_path, KONIQ_SET_COLUMNS)) if sets_path else {}
    scores_path = _optional_file(root, metadata, [KONIQ_SCORES, f"metadata/{KONIQ_SCORES}"])
    if scores_path is None and not split_of:
        raise DataError(f"{root}: KonIQ-10k metadata not found (expected {KONIQ_SCORES} or {KONIQ_SETS})")
    records = RecordList()
    if scores_path is None:
        if mos_scale == 5:
            raise DataError(f"{sets_path}: holds only the 100-point MOS; mos_scale=5 needs {KONIQ_SCORES}")
        for name, (split, mos, where) in split_of.items():
            records.add(where, ImageRecord(find_image(where, name, [folder]), mos, split))
        return IQATable("koniq10k", records.items, (1.0, 100.0))
    _koniq_scores(read_csv(scores_path, KONIQ_SCORE_COLUMNS), folder, mos_scale, split_of, sets_path, records)
    return IQATable("koniq10k", records.items, (1.0, 100.0) if mos_scale == 100 else (1.0, 5.0))


def _koniq_scores(
    table: Table,
    folder: Path,
    mos_scale: int,
    split_of: dict[str, tuple[str, float, str]],
    sets_path: Path | None,
    records: RecordList,
) -> None:
    """Records from ``koniq10k_scores_and_distributions.csv``, split taken from the sets file if any."""
    for row in table.rows:
        where = table.where(row)
        name = image_name(table, row, "image_name")
        if split_of and name not in split_of:
            raise DataError(f"{where}: image {name!r} has no split in {sets_path}")
        split = split_of[name][0] if split_of else ""
        mos = parse_score(table, row, "MOS_zscore" if mos_scale == 100 else "MOS")
        std = parse_score(table, row, "SD") if mos_scale == 5 else None
        records.add(where, ImageRecord(find_image(where, name, [folder]), mos, split, std=std))


def _optional_file(root: Path, override: str | Path | None, names: list[str]) -> Path | None:
    if override is not None:
        return find_file(root, override, names, "metadata file")
    return next((root / n for n in names if (root / n).is_file()), None)


def load_kadid10k(root: Path, *, metadata: str | Path | None = None, image_dir: str | Path | None = None) -> IQATable:
    """KADID-10k (Lin et al., 2019): ``dmos.csv`` with ``dist_img, ref_img, dmos, var``; images in ``images/``.

    Despite its name ``dmos`` is an opinion score on 1..5 where higher is better, so it is used as MOS
    as is; ``std`` is the square root of ``var``. ``group`` is the reference image's stem (I01..I81): the
    125 distorted versions of a reference must stay on one side of a split. No official split.
    """
    root = require_dir(root, "kadid10k")
    table = read_csv(find_file(root, metadata, ["dmos.csv"], "KADID-10k metadata"), KADID_COLUMNS)
    folder = find_folder(root, image_dir, ["images"], "KADID-10k image folder")
    records = RecordList()
    for row in table.rows:
        where = table.where(row)
        path = find_image(where, image_name(table, row, "dist_img"), [folder])
        reference = image_name(table, row, "ref_img")
        variance = parse_score(table, row, "var")
        if variance < 0:
            raise DataError(f"{where}: 'var' is {row['var']!r}; a variance cannot be negative")
        mos = parse_score(table, row, "dmos")
        records.add(where, ImageRecord(path, mos, "", Path(reference).stem, math.sqrt(variance)))
    return IQATable("kadid10k", records.items, (1.0, 5.0))


def load_spaq(root: Path, *, metadata: str | Path | None = None, image_dir: str | Path | None = None) -> IQATable:
    """SPAQ (Fang et al., 2020): ``Annotations/MOS and Image attribute scores.xlsx``; images in ``TestImage/``.

    A CSV export of that sheet (same name, ``.csv``; columns ``Image name, MOS``) is read first, since
    it needs no extra package; the ``.xlsx`` is read with openpyxl when it is installed. MOS in 0..100,
    no official split. When a listed name is missing, the same stem with a .jpg/.png suffix is accepted
    (copies of SPAQ differ in the extension of the shipped files).
    """
    root = require_dir(root, "spaq")
    names = [f"{folder}{SPAQ_SHEET}.{ext}" for ext in ("csv", "xlsx") for folder in ("Annotations/", "")]
    meta = find_file(root, metadata, names, "SPAQ metadata")
    hint = f" as '{meta.with_suffix('.csv').name}'"
    table = read_xlsx(meta, SPAQ_COLUMNS, hint=hint) if meta.suffix.lower() == ".xlsx" else read_csv(meta, SPAQ_COLUMNS)
    folder = find_folder(root, image_dir, ["TestImage", "TestImages", "images"], "SPAQ image folder")
    records = RecordList()
    for row in table.rows:
        where = table.where(row)
        name = image_name(table, row, "Image name")
        stem = Path(name).stem
        path = find_image(where, name, [folder], [stem + ext for ext in (".jpg", ".JPG", ".png", ".PNG")])
        records.add(where, ImageRecord(path, parse_score(table, row, "MOS")))
    return IQATable("spaq", records.items, (0.0, 100.0))
