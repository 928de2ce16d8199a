"""A scoring run that streams: rows are written as images are scored, and a re-run resumes.

``edgeiqa predict --out scores.csv`` writes its rows to ``scores.csv.partial`` and flushes them after
every batch, so a crash, a kill or a full disk keeps every score already computed; only a finished run
is moved onto ``scores.csv`` (atomically: a reader never sees half a CSV). Running the same command
again carries the scored rows of ``scores.csv.partial`` or ``scores.csv`` over and skips those files;
failed rows are tried again. Cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``,
``@``, tab, CR) or that start with ``'`` get one leading ``'``; :func:`read_cell` takes it off again.
"""

from __future__ import annotations

import csv
import errno
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from edgeiqa.errors import EdgeIQAError
from edgeiqa.progress import progress_bar
from edgeiqa.runtime.inputs import path_key
from edgeiqa.runtime.predictor import Predictor

HEADER = ("path", "score", "error")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class OutputWriteError(EdgeIQAError):
    """The scores could not be written (disk full, quota, I/O error); what was written is kept."""


def write_cell(text: str) -> str:
    """``text`` safe to open in a spreadsheet: a formula-looking cell gets a leading ``'``."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def read_cell(text: str) -> str:
    """The inverse of :func:`write_cell`."""
    return text[1:] if text.startswith("'") else text


def one_line(text: str) -> str:
    """A path or message with control characters escaped, so a file name cannot split a stderr line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


@dataclass
class RunCounts:
    """What a run did: files scored and failed now, files carried over from an earlier run."""

    scored: int = 0
    failed: int = 0
    resumed: int = 0
    seconds: float = 0.0


class ScoresWriter:
    """Rows to a text stream (stdout), flushed after every batch."""

    def __init__(self, handle: TextIO, name: str = "<stdout>") -> None:
        self.handle, self.name = handle, name
        self.done: set[int] = set()
        self.resumed = 0
        self._csv = csv.writer(handle, lineterminator="\n")
        self._header = False  # written with the first row: an empty input prints no CSV at all

    def __enter__(self) -> ScoresWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.flush()

    def row(self, path: str, score: float | None, error: str | None) -> None:
        if not self._header:
            self._header = True
            self._guard(self._csv.writerow, HEADER)
        cells = [write_cell(path), "" if score is None else f"{score:.6f}", write_cell(error or "")]
        self._guard(self._csv.writerow, cells)

    def flush(self) -> None:
        self._guard(self.handle.flush)

    def _guard(self, call, *args) -> None:
        try:
            call(*args)
        except OSError as exc:
            what = "full" if exc.errno in _DISK_FULL else "not writable"
            raise OutputWriteError(
                f"{self.name}: {exc.strerror or exc} (disk {what}?); the rows written before this are kept there: "
                "free space and run the same command again to resume"
            ) from exc


class ScoresFile(ScoresWriter):
    """``out``'s rows in ``out.partial`` as they come; :meth:`finish` moves it onto ``out`` atomically."""

    def __init__(self, out: str | os.PathLike, resume: bool = True) -> None:
        self.out = Path(out)
        self.partial = self.out.with_name(self.out.name + ".partial")
        self._resume = resume
        handle = open(os.devnull, "w")  # replaced in __enter__, once earlier rows are carried over
        super().__init__(handle, str(self.partial))

    def __enter__(self) -> ScoresFile:
        self.handle.close()
        tmp = self.partial.with_name(self.partial.name + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as fresh:
                self._csv = csv.writer(fresh, lineterminator="\n")
                self._csv.writerow(HEADER)
                if self._resume:
                    for source in (self.partial, self.out):
                        self._carry(source)
            os.replace(tmp, self.partial)
            self.handle = open(self.partial, "a", encoding="utf-8", newline="")
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OutputWriteError(f"{tmp}: cannot write the scores ({exc.strerror or exc})") from exc
        self._csv = csv.writer(self.handle, lineterminator="\n")
        self._header = True
        return self

    def _carry(self, source: Path) -> None:
        """Copy ``source``'s scored rows (not yet carried) into the new partial file."""
        if not source.is_file():
            return
        with open(source, encoding="utf-8", newline="") as old:
            text_rows = csv.reader(_complete_lines(old))
            if tuple(next(text_rows, ())) != HEADER:
                return
            for cells in text_rows:
                if len(cells) != 3 or not cells[1] or cells[2]:
                    continue
                key = path_key(read_cell(cells[0]))
                if key not in self.done:
                    self.done.add(key)
                    self._csv.writerow(cells)
                    self.resumed += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.flush()
            finally:
                self.handle.close()
            return
        try:  # already failing (a full disk): what reached the file stays; do not mask the first error
            self.handle.close()
        except OSError:
            pass

    def finish(self) -> Path:
        """Sync the rows to disk and move the partial file onto ``out`` (the run is complete)."""
        try:
            with open(self.partial, "rb+") as handle:
                os.fsync(handle.fileno())
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(self.partial, 0o666 & ~mask)  # a plain open() would give these, not mkstemp's 0600
            os.replace(self.partial, self.out)
        except OSError as exc:
            raise OutputWriteError(f"{self.partial}: cannot move the scores onto {self.out} ({exc.strerror})") from exc
        return self.out

    def discard(self) -> None:
        """Remove the partial file (a run that scored nothing leaves no CSV behind)."""
        self.partial.unlink(missing_ok=True)


def _complete_lines(handle: TextIO) -> Iterable[str]:
    """Lines that end in a newline: a row cut short by a crash or a full disk is scored again."""
    for line in handle:
        if line.endswith("\n"):
            yield line


def score_stream(
    predictor: Predictor,
    paths: Iterable[str],
    writer: ScoresWriter,
    *,
    batch_size: int = 8,
    workers: int | None = None,
    progress: bool = True,
    errors: TextIO | None = None,
) -> RunCounts:
    """Score ``paths`` (any iterable, read lazily), skipping those ``writer`` already holds; each failure
    is one ``edgeiqa: path: reason`` line on ``errors`` (stderr) as it happens."""
    errors = errors if errors is not None else sys.stderr
    counts = RunCounts(resumed=writer.resumed)
    start = time.perf_counter()
    todo = (p for p in paths if not writer.done or path_key(p) not in writer.done)
    with progress_bar(None, "predict", unit="img", enabled=progress) as bar:
        for item in predictor.iter_predict(todo, batch_size=batch_size, workers=workers):
            error = None if item.error is None else _reason(item.source, item.error)
            writer.row(item.source, item.score, error)
            if error is None:
                counts.scored += 1
            else:
                counts.failed += 1
                print(f"edgeiqa: {one_line(item.source)}: {error}", file=errors, flush=True)
            if (counts.scored + counts.failed) % batch_size == 0:
                writer.flush()
            bar.update(1)
    writer.flush()
    counts.seconds = time.perf_counter() - start
    return counts


def _reason(path: str, message: str) -> str:
    """The error without its leading ``path:`` (the row already names the file), on one line."""
    prefix = f"{path}: "
    reason = message[len(prefix) :] if message.startswith(prefix) else message
    return one_line(" ".join(reason.split()))
