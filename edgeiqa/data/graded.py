"""Graded distortions made at a photo's native resolution: the UHD check and the teacher's ranking set.

A *graded set* holds, for every source photo, the photo itself (level 0) and each distortion type at
levels 1..4 of growing severity, all at the source's own pixel size (a 4K photo stays 4K: sensor noise and
compression live in pixels that a reduced copy no longer has). Nothing here needs a human label: within
one photo and one type, a higher level is worse, so a model that judges quality orders the levels.

- :data:`CHECK_LEVELS` fixes the UHD check (``studies/uhd_check.py``): four capture/delivery faults
  at fixed, realistic severities.
- :func:`jittered_levels` draws a training set's parameters around the same ladders, plus types the
  check never uses, so a teacher trained to order them is judged on photos *and* severities it never saw.

Files: ``<out>/images/<source>__<type>__L<level>.jpg`` (a lossy type at its own quality, the rest at
quality 95 with 4:4:4 chroma, so the storage adds no visible artefact) and ``<out>/graded.csv`` with
``path,source,distortion,level,parameter``. Generation skips files already written, so an interrupted
run resumes.
"""

from __future__ import annotations

import csv
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from edgeiqa.data.distortions import apply_distortion
from edgeiqa.errors import ConfigError, ImageDecodeError
from edgeiqa.fileio import atomic_write_text
from edgeiqa.progress import progress_bar, progress_write
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.preprocess import decode_image

GRADED_COLUMNS = ("path", "source", "distortion", "level", "parameter")
STORE_QUALITY = 95  # lossless enough for storage: every type but jpeg is saved at this quality, 4:4:4
PRISTINE = "pristine"
_DECODE = PreprocessContract(jpeg_draft=False, fragments=None)


def _jpeg(img: Image.Image, quality: float, rng: np.random.Generator) -> Image.Image:
    return img  # encoded by _save at this quality: the file *is* the distortion


def _noise(img: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(img, dtype=np.float32)
    noisy = pixels + rng.normal(0.0, sigma, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def _blur(img: Image.Image, radius: float, rng: np.random.Generator) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius))


def _upscale(img: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    """A low-resolution capture shown at full size: antialiased reduction, then bicubic enlargement."""
    small = img.resize(
        (max(1, round(img.width / factor)), max(1, round(img.height / factor))), Image.Resampling.LANCZOS
    )
    return small.resize(img.size, Image.Resampling.BICUBIC)


Maker = Callable[[Image.Image, float, np.random.Generator], Image.Image]
MAKERS: dict[str, Maker] = {"jpeg": _jpeg, "gaussian_noise": _noise, "gaussian_blur": _blur, "upscale": _upscale}
# The UHD check: JPEG quality, noise sigma (0..255), blur radius (px), upscaling factor; mildest first.
CHECK_LEVELS: dict[str, tuple[float, ...]] = {
    "jpeg": (60, 35, 20, 10),
    "gaussian_noise": (4, 8, 16, 28),
    "gaussian_blur": (1.0, 2.0, 3.5, 6.0),
    "upscale": (1.5, 2.0, 3.0, 4.0),
}
# Types only the training set has, taken from the KADIS-style registry at its levels 1..4.
REGISTRY_TYPES = ("motion_blur", "contrast_change", "brightness_change", "impulse_noise")


@dataclass(frozen=True)
class GradedItem:
    source: str
    distortion: str
    level: int
    parameter: float


def source_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator that depends only on the seed and the names: the same bytes on every machine."""
    return np.random.default_rng([seed, zlib.crc32("/".join(map(str, parts)).encode())])


def check_items(source: str) -> list[GradedItem]:
    items = [GradedItem(source, PRISTINE, 0, 0.0)]
    for name, ladder in CHECK_LEVELS.items():
        items += [GradedItem(source, name, k + 1, float(v)) for k, v in enumerate(ladder)]
    return items


def jittered_levels(source: str, seed: int, spread: float = 0.25) -> list[GradedItem]:
    """A training set's ladders: each check parameter moved by up to ``spread`` (in log scale, drawn per
    source), the level order kept; plus the registry types at levels 1..4."""
    items = [GradedItem(source, PRISTINE, 0, 0.0)]
    for name, ladder in CHECK_LEVELS.items():
        rng = source_rng(seed, source, name)
        factors = np.exp(rng.uniform(-spread, spread, size=len(ladder)))
        values = sorted((float(v * f) for v, f in zip(ladder, factors)), reverse=name == "jpeg")
        items += [GradedItem(source, name, k + 1, v) for k, v in enumerate(values)]
    items += [GradedItem(source, name, k, float(k)) for name in REGISTRY_TYPES for k in range(1, 5)]
    return items


def render(item: GradedItem, pristine: Image.Image, seed: int) -> Image.Image:
    if item.distortion == PRISTINE:
        return pristine
    rng = source_rng(seed, item.source, item.distortion, item.level)
    if item.distortion in MAKERS:
        return MAKERS[item.distortion](pristine, item.parameter, rng)
    pixels = apply_distortion(item.distortion, np.asarray(pristine), int(item.parameter), rng)
    return Image.fromarray(pixels)


def _save(img: Image.Image, item: GradedItem, path: Path) -> None:
    tmp = path.with_suffix(".part")
    if item.distortion == "jpeg":
        img.save(tmp, format="JPEG", quality=int(round(item.parameter)), subsampling=2)
    else:
        img.save(tmp, format="JPEG", quality=STORE_QUALITY, subsampling=0)
    tmp.replace(path)


def file_name(item: GradedItem) -> str:
    return f"{item.source}__{item.distortion}__L{item.level}.jpg"


def make_graded_set(
    sources: Sequence[Path],
    out_dir: Path,
    items_for: Callable[[str], list[GradedItem]],
    seed: int = 0,
    max_side: int | None = None,
    progress: bool = True,
) -> Path:
    """Write every item of every source into ``out_dir`` (skipping files already there); returns the CSV.

    ``max_side`` reduces larger sources first (antialiased); None keeps each photo's own size. A source
    that cannot be decoded is reported on one line and skipped.
    """
    images = Path(out_dir) / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    sources = list(sources)
    stems = [Path(p).stem for p in sources]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:  # files are named after the stem: a second photo would silently get the first one's images
        raise ConfigError(f"graded set: several sources are named {twice}; give every source its own name")
    for path in progress_bar(len(sources), "graded set", iterable=sources, unit="photo", enabled=progress):
        name = Path(path).stem
        items = items_for(name)
        todo = [it for it in items if not (images / file_name(it)).exists()]
        if todo:
            try:
                pristine = _load(Path(path), max_side)
            except ImageDecodeError as exc:
                progress_write(f"edgeiqa: skipped source: {exc}")
                continue
            for item in todo:
                _save(render(item, pristine, seed), item, images / file_name(item))
        rows += [
            {
                "path": f"images/{file_name(it)}",
                "source": it.source,
                "distortion": it.distortion,
                "level": str(it.level),
                "parameter": f"{it.parameter:g}",
            }
            for it in items
        ]
    csv_path = Path(out_dir) / "graded.csv"
    atomic_write_text(csv_path, _csv_text(rows))
    return csv_path


def _load(path: Path, max_side: int | None) -> Image.Image:
    img = decode_image(path, _DECODE).convert("RGB")
    if max_side is not None and max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    return img


def _csv_text(rows: Iterable[dict[str, str]]) -> str:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=GRADED_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_graded(csv_path: Path) -> list[tuple[Path, GradedItem]]:
    """The rows of a graded set's CSV as (absolute image path, item)."""
    root = Path(os.path.abspath(csv_path)).parent  # absolute paths (links kept), wherever it is read from
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(GRADED_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{csv_path}: not a graded set (missing columns {sorted(missing)})")
        return [
            (
                root / row["path"],
                GradedItem(row["source"], row["distortion"], int(row["level"]), float(row["parameter"])),
            )
            for row in reader
        ]


def split_sources(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Sorted sources alternately into (training, check) halves: the check never sees a training photo."""
    ordered = sorted(paths, key=lambda p: Path(p).name)
    return ordered[0::2], ordered[1::2]


def ordering_by_type(items: Sequence[GradedItem], scores: Sequence[float]) -> dict[str, float]:
    """Per distortion type, the mean over photos of SRCC(score, -level) across that photo's levels 0..4:
    1.0 when every photo's score falls with every step of severity, -1.0 when it always rises."""
    from scipy.stats import spearmanr

    pristine = {it.source: s for it, s in zip(items, scores) if it.level == 0}
    ladders: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for it, s in zip(items, scores):
        if it.level > 0 and it.source in pristine:
            ladders.setdefault((it.source, it.distortion), [(0, pristine[it.source])]).append((it.level, float(s)))
    per_type: dict[str, list[float]] = {}
    for (_, kind), ladder in sorted(ladders.items()):
        levels, values = zip(*ladder)
        rho = spearmanr([-lv for lv in levels], values).statistic
        per_type.setdefault(kind, []).append(0.0 if np.isnan(rho) else float(rho))  # all-equal scores: no order
    return {kind: float(np.mean(v)) for kind, v in per_type.items()}
