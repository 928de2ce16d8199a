"""Score many files: expand folders, score in batches, record each bad file on one line and go on.

What ``edgeiqa predict ARTIFACT PATHS...`` runs::

    result = predict_files(Predictor.load(artifact), paths, batch_size=8)
    write_scores_csv(result, "scores.csv")
    exit_code = 0 if result.ok else 1
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edgeiqa.fileio import atomic_write_text
from edgeiqa.progress import progress_bar
from edgeiqa.runtime.predictor import Predictor

PathLike = str | os.PathLike

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pnm"}
)


@dataclass(frozen=True)
class FileResult:
    """One file's outcome: a MOS-scale ``score`` or a one-line ``error`` reason (never both)."""

    path: str
    score: float | None
    error: str | None = None


@dataclass
class BatchResult:
    """Every file's outcome, in input order, and the wall time the scoring took."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def scored(self) -> list[FileResult]:
        return [r for r in self.results if r.error is None]

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.error is not None]

    @property
    def ok(self) -> bool:
        """True when every file was scored (the CLI exits 0), False when any failed (exit 1)."""
        return all(r.error is None for r in self.results)

    def failure_lines(self) -> list[str]:
        """``path: reason``, one line per failed file."""
        return [f"{r.path}: {r.error}" for r in self.failed]


def _walk_images(
    folder: Path, extensions: frozenset[str], unreadable: list[tuple[str, str]] | None = None
) -> list[Path]:
    """Image files under ``folder``, recursively, in a stable order; hidden files and folders skipped.

    Folders that cannot be listed are appended to ``unreadable`` as ``(folder, reason)``: os.walk
    would otherwise skip them without a word and the batch would exit 0 with their images unscored.
    """
    found = []

    def failed(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append((str(exc.filename or folder), f"cannot read folder ({exc.strerror or exc})"))

    for root, dirs, files in os.walk(folder, onerror=failed):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(root) / name
            for name in sorted(files)
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions
        )
    return found


def expand_paths(paths_or_dirs: Iterable[PathLike], extensions: frozenset[str] = IMAGE_EXTENSIONS) -> list[str]:
    """Files to score, in command-line order: folders expanded recursively, everything else as given.

    A file named explicitly is kept whatever its extension (the user asked for it), and so is a
    path that does not exist: scoring it records "cannot open" for it like any other bad file.
    Duplicates are dropped, keeping the first occurrence.
    """
    return scan_paths(paths_or_dirs, extensions)[0]


def scan_paths(
    paths_or_dirs: Iterable[PathLike], extensions: frozenset[str] = IMAGE_EXTENSIONS
) -> tuple[list[str], list[tuple[str, str]]]:
    """:func:`expand_paths`, plus ``(folder, reason)`` for every folder that could not be listed."""
    files: list[str] = []
    unreadable: list[tuple[str, str]] = []
    for entry in paths_or_dirs:
        path = Path(entry)
        if _is_dir(path):
            files.extend(str(p) for p in _walk_images(path, extensions, unreadable))
        else:
            files.append(str(path))
    return list(dict.fromkeys(files)), unreadable


def _is_dir(path: Path) -> bool:
    # Path.is_dir raises on ENAMETOOLONG and EACCES; such a path is scored as a file, whose open
    # then fails with that reason on the file's own line instead of sinking the whole batch.
    try:
        return path.is_dir()
    except OSError:
        return False


def _reason(path: str, message: str) -> str:
    """The decode error without its leading ``path:`` (the result already names the file), on one line."""
    prefix = f"{path}: "
    reason = message[len(prefix) :] if message.startswith(prefix) else message
    return " ".join(reason.split())


def predict_files(
    predictor: Predictor,
    paths_or_dirs: Iterable[PathLike],
    batch_size: int = 8,
    workers: int | None = None,
    progress: bool = True,
) -> BatchResult:
    """Score every image file under ``paths_or_dirs``; bad files become one-line failures, never aborts.

    ``workers`` sets the decode threads for this run (default: the predictor's). ``progress`` shows
    progress on stderr (a bar on a terminal, a few plain lines otherwise: :mod:`edgeiqa.progress`).
    """
    start = time.perf_counter()
    files, unreadable = scan_paths(paths_or_dirs)
    results = [FileResult(folder, None, reason) for folder, reason in unreadable]
    with progress_bar(len(files), "predict", unit="img", enabled=progress) as bar:
        for item in predictor.iter_predict(files, batch_size=batch_size, workers=workers):
            path = files[item.index]
            error = None if item.error is None else _reason(path, item.error)
            results.append(FileResult(path, item.score, error))
            bar.update(1)
    return BatchResult(results, time.perf_counter() - start)


def scores_csv_text(result: BatchResult) -> str:
    """CSV with columns ``path,score,error``: failed files have an empty score and their reason."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "score", "error"])
    for r in result.results:
        writer.writerow([r.path, "" if r.score is None else f"{r.score:.6f}", r.error or ""])
    return buffer.getvalue()


def write_scores_csv(result: BatchResult, out_path: PathLike) -> Path:
    """Write :func:`scores_csv_text` to ``out_path`` atomically (a crash never leaves half a CSV)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_path, scores_csv_text(result))
    return out_path
