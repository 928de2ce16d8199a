"""Teacher labels as a product: score images once with a teacher, reuse the table in every student.

``label_images`` writes ``path,score,spread`` rows (the teacher's MOS-scale score and the spread of its
members and views) to a CSV as it goes, so an interrupted run loses nothing and a re-run skips every path
already written; ``shard=(i, n)`` keeps the paths whose stable hash falls in shard ``i`` of ``n``, so many
processes or machines label one pool and :func:`merge_tables` joins their tables. A file that cannot be
decoded is one line on stderr and is skipped. A JSON sidecar (``<table>.json``) records the teacher and
the MOS range, which is what a student needs to read the scores on its own scale.

Any scorer's table works as long as it has ``path,score`` (a pyiqa metric's output, say): give its
range in ``data.pseudo_labels`` or let :func:`read_table` take its own min and max.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeiqa.data.graded import read_graded
from edgeiqa.data.records import ImageRecord
from edgeiqa.distill.ensemble import EnsembleTeacher
from edgeiqa.errors import ConfigError, EdgeIQAError, ImageDecodeError
from edgeiqa.fileio import atomic_write_text
from edgeiqa.progress import progress_bar, progress_write
from edgeiqa.runtime.batch import expand_paths

LABEL_COLUMNS = ("path", "score", "spread")
CHUNK = 32  # images scored per call: rows reach the file at least this often


@dataclass(frozen=True)
class LabelRun:
    written: int
    skipped_done: int
    failed: list[str]
    table: Path


def in_shard(path: str, shard: tuple[int, int]) -> bool:
    index, count = shard
    return zlib.crc32(path.encode()) % count == index


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 1)
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (count >= 1 and 0 <= index < count):
        raise ConfigError(f"--shard {text}: need 0 <= i < n")
    return index, count


def done_paths(table: Path) -> set[str]:
    """Paths already in ``table`` (a partial last line, from a kill mid-write, is dropped and rewritten)."""
    if not table.exists():
        return set()
    text = table.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        atomic_write_text(table, text)
    rows = list(csv.DictReader(io.StringIO(text)))
    return {row["path"] for row in rows}


def teacher_digests(teacher: EnsembleTeacher) -> list[str]:
    """What identifies a teacher's labels: the sha256 of every member's weights, and the views."""
    return [str((m.checkpoint.state.get("sha256") or {}).get("model")) for m in teacher.members] + list(teacher.tta)


def label_images(
    teacher: EnsembleTeacher,
    paths: Iterable[Path | str],
    table: Path,
    shard: tuple[int, int] = (0, 1),
    device: str = "cpu",
    batch_size: int = 8,
    progress: bool = True,
    restart_if_stale: bool = False,
) -> LabelRun:
    """Score every path of ``shard`` not yet in ``table`` and append its row; see the module docstring.

    A table written by another teacher (other weights or views, per its sidecar) is refused, or with
    ``restart_if_stale`` relabelled from scratch: rows from two teachers never mix in one table."""
    table = Path(table)
    table.parent.mkdir(parents=True, exist_ok=True)
    if table.exists() and _written_by(table) not in (None, teacher_digests(teacher)):
        if not restart_if_stale:
            raise ConfigError(
                f"{table}: written by another teacher (its sidecar's weights differ); "
                "delete it or write to another --out"
            )
        progress_write(f"edgeiqa: {table} was written by an earlier teacher: labelling again")
        table.unlink()
    done = done_paths(table)
    # Absolute but not resolved: a link is its own image (a pool may be links to a few photos, and the
    # training records keep their link paths), so following it would merge rows and miss records.
    todo = [os.path.abspath(p) for p in paths]
    todo = [p for p in dict.fromkeys(todo) if in_shard(p, shard)]
    remaining = [p for p in todo if p not in done]
    _write_sidecar(table, teacher, shard)
    written, failed = 0, []
    low, high = teacher.mos_range
    bar = progress_bar(len(remaining), "labels", unit="img", enabled=progress)
    with open(table, "a", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if handle.tell() == 0:
            writer.writerow(LABEL_COLUMNS)
        for chunk in _chunks(remaining, CHUNK):
            for path, score, spread in _score_chunk(teacher, chunk, device, batch_size, failed):
                writer.writerow([path, f"{score * (high - low) + low:.6f}", f"{spread * (high - low):.6f}"])
                written += 1
            handle.flush()
            os.fsync(handle.fileno())
            bar.update(len(chunk))
    bar.close()
    return LabelRun(written, len(todo) - len(remaining), failed, table)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _score_chunk(
    teacher: EnsembleTeacher, chunk: Sequence[str], device: str, batch_size: int, failed: list[str]
) -> list[tuple[str, float, float]]:
    """Scores of a chunk; when one file fails, each image alone, so only the bad ones are left out."""
    records = [ImageRecord(path=Path(p), mos=0.0) for p in chunk]
    try:
        mean, spread, _ = teacher.score(records, device, batch_size)
        return list(zip(chunk, mean.tolist(), spread.tolist()))
    except ImageDecodeError:
        if len(chunk) == 1:
            raise
    rows = []
    for path in chunk:
        try:
            rows += _score_chunk(teacher, [path], device, batch_size, failed)
        except ImageDecodeError as exc:
            progress_write(f"edgeiqa: skipped: {exc}")
            failed.append(path)
    return rows


def _write_sidecar(table: Path, teacher: EnsembleTeacher, shard: tuple[int, int]) -> None:
    record = {
        "teacher": str(teacher.folder),
        "members": teacher.names,
        "tta": list(teacher.tta),
        "teacher_digests": teacher_digests(teacher),
        "mos_range": list(teacher.mos_range),
        "shard": list(shard),
        "columns": list(LABEL_COLUMNS),
    }
    atomic_write_text(sidecar(table), json.dumps(record, indent=1))


def _written_by(table: Path) -> list[str] | None:
    side = sidecar(table)
    return json.loads(side.read_text()).get("teacher_digests") if side.is_file() else None


def sidecar(table: Path) -> Path:
    return Path(str(table) + ".json")


def pool_paths(entries: Sequence[str]) -> list[Path]:
    """The images of ``data.pseudo_pool``: folders and globs (as ``edgeiqa predict`` reads them) and graded
    sets (a ``graded.csv``: every level of every photo)."""
    paths: list[Path] = []
    for entry in entries:
        if entry.endswith(".csv"):
            paths += [path for path, _ in read_graded(Path(entry))]
        else:
            paths += [Path(p) for p in expand_paths([entry])]
    return paths


def read_table(table: Path | str, score_range: Sequence[float] | None = None) -> dict[str, float]:
    """``path -> score`` normalised to 0..1 by ``score_range``, else the sidecar's MOS range, else the
    table's own min and max. Relative paths are relative to the table's folder."""
    table = Path(table)
    if not table.is_file():
        raise ConfigError(f"{table}: no such label table")
    with open(table, newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"path", "score"} <= set(reader.fieldnames or ()):
            raise ConfigError(f"{table}: a label table needs the columns path,score (has {reader.fieldnames})")
        raw: dict[str, float] = {}
        for line, row in enumerate(reader, start=2):
            try:
                value = float(row["score"])
            except (TypeError, ValueError):
                raise ConfigError(f"{table}:{line}: score {row['score']!r} is not a number") from None
            if not np.isfinite(value):
                raise ConfigError(f"{table}:{line}: score {row['score']!r} is not finite")
            raw[os.path.abspath(table.parent / row["path"])] = value  # as label_images writes paths
    if not raw:
        raise ConfigError(f"{table}: no rows")
    low, high = _range(table, raw, score_range)
    return {path: (value - low) / (high - low) for path, value in raw.items()}


def _range(table: Path, raw: dict[str, float], score_range: Sequence[float] | None) -> tuple[float, float]:
    if score_range is None and sidecar(table).is_file():
        score_range = json.loads(sidecar(table).read_text()).get("mos_range")
    if score_range is None:
        score_range = (min(raw.values()), max(raw.values()))
    low, high = float(score_range[0]), float(score_range[1])
    if not low < high:
        raise ConfigError(f"{table}: score range {score_range} is empty")
    return low, high


def merge_tables(tables: Sequence[Path], out: Path) -> int:
    """Join shard tables into one, rows sorted by path; a path scored differently twice is an error."""
    rows: dict[str, list[str]] = {}
    for table in tables:
        with open(table, newline="") as handle:
            for row in csv.DictReader(handle):
                values = [row[c] for c in LABEL_COLUMNS]
                if rows.setdefault(row["path"], values) != values:
                    raise EdgeIQAError(f"{table}: {row['path']} is in two tables with different scores")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    writer.writerows(rows[p] for p in sorted(rows))
    atomic_write_text(out, buf.getvalue())
    first = sidecar(Path(tables[0]))
    if first.is_file():
        meta = json.loads(first.read_text())
        atomic_write_text(sidecar(out), json.dumps({**meta, "shard": [0, 1]}, indent=1))
    return len(rows)


def sorted_rows(table: Path) -> list[tuple[str, ...]]:
    """A table's rows in path order: how an unsharded run and its merged shards are compared."""
    with open(table, newline="") as handle:
        return sorted(tuple(row[c] for c in LABEL_COLUMNS) for row in csv.DictReader(handle))
