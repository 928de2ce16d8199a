"""Pristine source photos for the embedded dataset: the ones shipped inside wheels, or a user's folder.

scikit-image and scikit-learn put a dozen real photos inside their wheels (no network, no pooch cache),
so a fresh machine can build a training set. Only genuine colour photographs are used: the synthetic
colour wheel, logos, chessboards and grey-only scans would teach a quality model nothing about photos,
and a grey image cannot be desaturated. ``motorcycle_right`` is left out because it is the other half of
a stereo pair with ``motorcycle_left``: the two would leak content across train/val/test splits.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgeiqa.errors import DataError, ImageDecodeError
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.preprocess import decode_image

# (package, file inside the package's data folder) for every real colour photo found in the wheels.
BUNDLED_SOURCES: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "ihc": ("skimage", "data/ihc.png"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "retina": ("skimage", "data/retina.jpg"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# Keep sizes a multiple of the JPEG MCU so codec block grids line up with the image edge.
_SIZE_MULTIPLE = 8
_MIN_SIDE = 32  # the full-reference measures need a few scales of a 2x pyramid
# Decode as stored, upright, with no reduction: the resizing below is the only one.
_DECODE = PreprocessContract(jpeg_draft=False, fragments=None)


@dataclass(frozen=True)
class PristineSource:
    """One reference photo, already sized: ``pixels`` is HxWx3 uint8."""

    name: str
    pixels: np.ndarray
    origin: str


def _package_file(package: str, relative: str) -> Path | None:
    """Path of a data file inside an installed package, or None when the package or file is absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def bundled_paths() -> dict[str, Path]:
    """Name -> file of every bundled photo present in this environment, sorted by name."""
    found = {name: _package_file(pkg, rel) for name, (pkg, rel) in BUNDLED_SOURCES.items()}
    return {name: found[name] for name in sorted(found) if found[name] is not None}


def source_name(path: Path) -> str:
    """A file stem made safe for ``<source>__<type>__L<level>.png`` names (no ``__``, no odd characters)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem)
    return re.sub(r"_{2,}", "_", name).strip("_") or "image"


def folder_paths(folder: Path) -> dict[str, Path]:
    """Name -> file of every image in ``folder`` (not recursive), sorted by name."""
    if not folder.is_dir():
        raise DataError(f"pristine folder {folder} does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"pristine folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    paths: dict[str, Path] = {}
    for path in files:
        name = source_name(path)
        if name in paths:
            raise DataError(f"pristine images {paths[name]} and {path} map to the same source name {name!r}")
        paths[name] = path
    return dict(sorted(paths.items()))


def fit_to_side(img: Image.Image, max_side: int) -> np.ndarray:
    """Antialiased reduction so the long side is ``max_side`` (never enlarged), then a centre crop of a
    few pixels so both sides are multiples of 8."""
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    w, h = (d - d % _SIZE_MULTIPLE for d in img.size)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return np.asarray(img.crop((left, top, left + w, top + h)), dtype=np.uint8).copy()


def load_pristine(
    pristine_dir: Path | None = None, max_side: int = 384, max_sources: int | None = None
) -> list[PristineSource]:
    """The sized reference photos, sorted by name: the bundled ones, or every image in ``pristine_dir``."""
    if max_side < _MIN_SIDE:
        raise DataError(f"max_side must be >= {_MIN_SIDE} px, got {max_side}")
    paths = bundled_paths() if pristine_dir is None else folder_paths(Path(pristine_dir))
    if not paths:
        raise DataError("no bundled pristine photos found (is scikit-image or scikit-learn installed?)")
    names = list(paths)[: max_sources if max_sources is not None else None]
    sources = []
    for name in names:
        try:
            img = decode_image(paths[name], _DECODE)
        except ImageDecodeError as exc:
            # One bad photo in a user's folder (a truncated PNG, say) must not sink the whole set.
            print(f"edgeiqa: skipped pristine image that cannot be decoded: {exc}", file=sys.stderr)
            continue
        pixels = fit_to_side(img, max_side)
        if min(pixels.shape[:2]) < _MIN_SIDE:
            raise DataError(
                f"pristine image {paths[name]} is too small ({img.width}x{img.height}); "
                f"both sides must be >= {_MIN_SIDE} px after sizing"
            )
        sources.append(PristineSource(name=name, pixels=pixels, origin=str(paths[name])))
    if not sources:
        raise DataError(f"none of the {len(names)} pristine images could be decoded")
    return sources
