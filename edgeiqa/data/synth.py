"""The embedded default dataset: pristine photos x distortion types x levels, labelled with a pseudo-MOS.

``synthesize`` writes ``<out_dir>/images/<source>__<type>__L<level>.png`` (each pristine photo too, as
``<source>__pristine__L0.png`` with the top score) and ``<out_dir>/mos.csv`` with the columns
``path,mos,split,source,distortion,level``. Everything is a function of the arguments: noise, motion
blur directions and the train/val/test split come from ``seed``, so two runs give identical bytes.
Splits are by source photo, so no scene appears in two splits.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgeiqa.data.distortions import DISTORTIONS, LEVELS, apply_distortion
from edgeiqa.data.pristine import PristineSource, load_pristine
from edgeiqa.data.pseudo_mos import PRISTINE_MOS, pseudo_mos, single_thread
from edgeiqa.errors import ConfigError, DataError

CSV_COLUMNS = ("path", "mos", "split", "source", "distortion", "level")
PRISTINE_TYPE = "pristine"
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.15}  # the rest is train
_PNG_COMPRESS_LEVEL = 1  # fast; the files are a cache of a deterministic computation


@dataclass(frozen=True)
class SynthSummary:
    """What ``synthesize`` wrote."""

    csv_path: Path
    n_images: int
    n_sources: int
    types: tuple[str, ...]
    seconds: float


def select_levels(levels: int) -> tuple[int, ...]:
    """``levels`` severities spread evenly over 1..5 (3 -> 1, 3, 5; 1 -> 1), so a small set still spans
    mild to bad; the ``level`` column keeps the 1..5 severity scale whatever the count."""
    if not 1 <= levels <= LEVELS:
        raise ConfigError(f"levels must be in 1..{LEVELS}, got {levels}")
    return tuple(int(v) for v in np.rint(np.linspace(1, LEVELS, levels)))


def select_types(types: Sequence[str] | None) -> tuple[str, ...]:
    """The distortion types to generate, validated against the registry (all of them by default)."""
    if types is None:
        return tuple(DISTORTIONS)
    chosen = tuple(types)
    if not chosen:
        raise ConfigError("no distortion types selected; known: " + ", ".join(DISTORTIONS))
    unknown = [t for t in chosen if t not in DISTORTIONS]
    if unknown:
        raise ConfigError(f"unknown distortion type(s) {', '.join(unknown)}; known: {', '.join(DISTORTIONS)}")
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"distortion types listed twice: {', '.join(chosen)}")
    return chosen


def assign_splits(names: Sequence[str], seed: int) -> dict[str, str]:
    """Source name -> train/val/test: a seeded shuffle, ~70/15/15, at least one source in each split."""
    n = len(names)
    if n < 3:
        raise DataError(f"the train/val/test split needs at least 3 pristine sources, got {n}")
    counts = {split: max(1, int(np.floor(frac * n + 0.5))) for split, frac in SPLIT_FRACTIONS.items()}
    order = np.random.default_rng([seed, 0x5B117]).permutation(sorted(names))
    splits = ["val"] * counts["val"] + ["test"] * counts["test"]
    splits += ["train"] * (n - len(splits))
    return {str(name): split for name, split in zip(order, splits)}


def image_rng(seed: int, source: str, distortion: str, level: int) -> np.random.Generator:
    """The generator for one image, keyed by names rather than positions, so an image's pixels do not
    change when other sources or types are added to or removed from the run."""
    key = [seed, zlib.crc32(source.encode()), zlib.crc32(distortion.encode()), level]
    return np.random.default_rng(key)


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"output {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise DataError(f"output folder {out_dir} is not empty; pass overwrite=True (--overwrite) to replace it")


def _save_png(pixels: np.ndarray, path: Path) -> None:
    Image.fromarray(pixels).save(path, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)


def _source_rows(
    src: PristineSource, split: str, types: Sequence[str], levels: Sequence[int], seed: int, root: Path, bar
) -> list[dict[str, str]]:
    """Write one source's pristine and distorted images under ``root/images``; return their CSV rows."""

    def row(distortion: str, level: int, mos: float, pixels: np.ndarray) -> dict[str, str]:
        rel = f"images/{src.name}__{distortion}__L{level}.png"
        _save_png(pixels, root / rel)
        bar.update(1)
        return {
            "path": rel,
            "mos": f"{mos:.4f}",
            "split": split,
            "source": src.name,
            "distortion": distortion,
            "level": str(level),
        }

    rows = [row(PRISTINE_TYPE, 0, PRISTINE_MOS, src.pixels)]
    for distortion in types:
        for level in levels:
            out = apply_distortion(distortion, src.pixels, level, image_rng(seed, src.name, distortion, level))
            rows.append(row(distortion, level, pseudo_mos(src.pixels, out), out))
    return rows


def _write_csv(rows: list[dict[str, str]], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _publish(tmp: Path, out_dir: Path) -> None:
    """Move the finished temp folder to ``out_dir``; an old ``out_dir`` is swapped out, then removed."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        out_dir.rename(old / "content")
        try:
            tmp.rename(out_dir)
        except BaseException:
            (old / "content").rename(out_dir)  # put the previous dataset back before failing
            shutil.rmtree(old, ignore_errors=True)
            raise
    else:
        tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def synthesize(
    out_dir: Path,
    seed: int = 0,
    pristine_dir: Path | None = None,
    max_side: int = 384,
    types: Sequence[str] | None = None,
    levels: int = 5,
    max_sources: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    workers: int | None = None,
) -> SynthSummary:
    """Generate the dataset into ``out_dir`` atomically (temp folder beside it, renamed at the end).

    ``workers`` threads (default: the cores, at most 4) each take whole source photos. The bytes do not
    depend on it: every image draws from its own generator and rows keep the sources' order.
    """
    from edgeiqa.progress import progress_bar

    start = time.perf_counter()
    out_dir = Path(out_dir)
    chosen, level_set = select_types(types), select_levels(levels)
    if max_sources is not None and max_sources < 3:
        raise ConfigError(f"max_sources must be >= 3 (one source per split at least), got {max_sources}")
    _check_out_dir(out_dir, overwrite)
    sources = load_pristine(pristine_dir, max_side=max_side, max_sources=max_sources)
    splits = assign_splits([s.name for s in sources], seed)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        (tmp / "images").mkdir()
        total = len(sources) * (1 + len(chosen) * len(level_set))
        rows: list[dict[str, str]] = []
        workers = workers or min(os.cpu_count() or 1, 4)
        # Threads, not processes: the distortions, the pseudo-MOS (torch, one thread each) and the PNG
        # encoder release the GIL; on 2 cores two threads cut the quickstart's data step nearly in half.
        with (
            single_thread(),
            progress_bar(total, "synth", unit="img", enabled=progress) as bar,
            ThreadPoolExecutor(workers, thread_name_prefix="edgeiqa-synth") as pool,
        ):
            per_source = pool.map(
                lambda src: _source_rows(src, splits[src.name], chosen, level_set, seed, tmp, bar), sources
            )
            for source_rows in per_source:
                rows += source_rows
        _write_csv(rows, tmp / "mos.csv")
        _publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SynthSummary(
        csv_path=out_dir / "mos.csv",
        n_images=len(rows),
        n_sources=len(sources),
        types=chosen,
        seconds=time.perf_counter() - start,
    )
