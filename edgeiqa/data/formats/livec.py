"""LIVE In the Wild Image Quality Challenge (LIVE-C; Ghadiyaram & Bovik, 2016).

Two forms are read:

* the official release: ``Data/AllImages_release.mat``, ``Data/AllMOS_release.mat`` and (optionally)
  ``Data/AllStdDev_release.mat``, images in ``Images/``. Its README lists 1,169 entries: 1,162 test
  images plus 7 training images (first in the release order, files in ``Images/trainingImages/``)
  that were only shown to teach subjects the task. As the release intends and as every published
  LIVE-C result does (entries ``[7:1169]``), the first 7 entries are dropped; pass
  ``include_training_images=True`` to keep them (loaded from ``Images/trainingImages/``).
* a CSV ``img_name, mos[, std]`` with images in ``images/`` (the form of the development copy).

MOS in 0..100. LIVE-C has no official split (papers draw random 80/20 splits: see
:meth:`IQATable.random_split`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.data.formats.tables import (
    RecordList,
    find_file,
    find_folder,
    find_image,
    image_name,
    parse_optional,
    parse_score,
    read_csv,
    require_dir,
)
from edgeiqa.data.records import ImageRecord, IQATable
from edgeiqa.errors import DataError, require

TRAINING_ENTRIES = 7  # the release's first 7 entries are its subject-training images
MAT_FILES = {"images": "AllImages_release", "mos": "AllMOS_release", "std": "AllStdDev_release"}
LIVEC_RANGE = (0.0, 100.0)


def load_livec(
    root: Path,
    *,
    include_training_images: bool = False,
    metadata: str | Path | None = None,
    image_dir: str | Path | None = None,
) -> IQATable:
    """LIVE-C from the official .mat files when ``Data/`` holds them, else from a CSV (``mos.csv``)."""
    root = require_dir(root, "livec")
    data = root / "Data"
    if metadata is None and any((data / f"{name}.mat").is_file() for name in MAT_FILES.values()):
        return _load_mat(root, data, include_training_images, image_dir)
    return _load_csv(root, metadata, image_dir)


def _load_csv(root: Path, metadata: str | Path | None, image_dir: str | Path | None) -> IQATable:
    path = find_file(root, metadata, ["mos.csv", f"Data/{MAT_FILES['mos']}.mat"], "LIVE-C metadata")
    table = read_csv(path, ("img_name", "mos"), optional=("std",))
    folder = find_folder(root, image_dir, ["images", "Images"], "LIVE-C image folder")
    records = RecordList()
    for row in table.rows:
        where = table.where(row)
        image = find_image(where, image_name(table, row, "img_name"), [folder])
        records.add(where, ImageRecord(image, parse_score(table, row, "mos"), std=parse_optional(table, row, "std")))
    return IQATable("livec", records.items, LIVEC_RANGE)


def _mat_variable(path: Path, name: str) -> np.ndarray:
    """One variable of a MATLAB file, or a DataError naming the file and what it does hold."""
    if not path.is_file():
        raise DataError(f"{path}: LIVE-C metadata file not found")
    scipy_io = require("scipy.io", "train", "reading LIVE-C .mat files")
    try:
        contents: dict[str, Any] = scipy_io.loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError for a damaged file
        raise DataError(f"{path}: cannot read the MATLAB file ({type(exc).__name__}: {exc})") from exc
    if name not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise DataError(f"{path}: no variable '{name}' (found {found})")
    return np.asarray(contents[name])


def _mat_string(path: Path, index: int, value: Any) -> str:
    # A MATLAB cell of strings loads as nested object/unicode arrays: unwrap the single element.
    while isinstance(value, np.ndarray):
        if value.size != 1:
            raise DataError(f"{path}, entry {index + 1}: expected one file name, found {value.size} values")
        value = value.ravel()[0]
    name = str(value).strip()
    if not name:
        raise DataError(f"{path}, entry {index + 1}: empty image name")
    return name


def _mat_numbers(path: Path, name: str, count: int) -> np.ndarray:
    values = _mat_variable(path, name)
    try:
        values = values.astype(np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: '{name}' is not numeric ({exc})") from exc
    if values.size != count:
        raise DataError(f"{path}: '{name}' has {values.size} values but {MAT_FILES['images']}.mat lists {count} images")
    return values


def _load_mat(root: Path, data: Path, include_training: bool, image_dir: str | Path | None) -> IQATable:
    images_mat = data / f"{MAT_FILES['images']}.mat"
    names_raw = _mat_variable(images_mat, MAT_FILES["images"]).ravel()
    names = [_mat_string(images_mat, i, v) for i, v in enumerate(names_raw)]
    if len(names) <= TRAINING_ENTRIES:
        raise DataError(
            f"{images_mat}: {len(names)} entries; the release has {TRAINING_ENTRIES} training + 1,162 test images"
        )
    mos_mat = data / f"{MAT_FILES['mos']}.mat"
    mos = _mat_numbers(mos_mat, MAT_FILES["mos"], len(names))
    std_mat = data / f"{MAT_FILES['std']}.mat"
    std = _mat_numbers(std_mat, MAT_FILES["std"], len(names)) if std_mat.is_file() else None
    folder = find_folder(root, image_dir, ["Images", "images"], "LIVE-C image folder")
    records = RecordList()
    for i in range(0 if include_training else TRAINING_ENTRIES, len(names)):
        where = f"{mos_mat}, entry {i + 1} ({names[i]})"
        if not math.isfinite(mos[i]):
            raise DataError(f"{where}: MOS is {mos[i]}; a score must be a finite number")
        sub = folder / "trainingImages" if i < TRAINING_ENTRIES else folder
        spread = float(std[i]) if std is not None and math.isfinite(std[i]) else None
        records.add(where, ImageRecord(find_image(where, names[i], [sub]), float(mos[i]), std=spread))
    return IQATable("livec", records.items, LIVEC_RANGE)
