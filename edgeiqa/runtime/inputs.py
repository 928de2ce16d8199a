"""The files a scoring run reads, streamed: image paths, folders, globs, list files and ``-`` (a list on stdin).

Everything is read lazily, one path at a time, so the first score does not wait for a million-line list
to be parsed and memory stays flat: only an 8-byte digest per path is kept, to drop duplicates in the
same pass. A list is one path per line, or a CSV whose header names a ``path`` (or ``image``,
``image_name``, ``img_name``) column; relative paths in a list file are relative to the list's folder,
those on stdin to the current folder. Folder scans keep the files the installed Pillow can open (its own
registry of formats, so AVIF/HEIC count where a plugin reads them) and count what they skip, and why.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TextIO

from PIL import Image

from edgeiqa.errors import ConfigError

PathLike = str | os.PathLike
LIST_COLUMNS = ("path", "image", "image_name", "img_name")
# Formats Pillow registers but which are documents, need an outside interpreter (Ghostscript for EPS) or
# are stubs that open only with a handler installed (scientific grids, Windows metafiles, MPEG headers).
_NOT_PHOTOS = frozenset(
    {".eps", ".ps", ".epsf", ".epsi", ".pdf", ".bufr", ".grib", ".h5", ".hdf", ".wmf", ".emf", ".mpeg", ".mpg"}
)
_GLOB_CHARS = frozenset("*?[")


@lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Suffixes the installed Pillow can open, read from its registry (plugins such as pillow-heif count)."""
    for plugin, opener in (("pillow_heif", "register_heif_opener"), ("pillow_avif", None)):
        try:  # optional plugins register themselves with Pillow when imported
            module = __import__(plugin)
            if opener:
                getattr(module, opener)()
        except ImportError:
            continue
    Image.init()
    readable = set(Image.OPEN)
    return frozenset(
        ext.lower()
        for ext, fmt in Image.registered_extensions().items()
        if fmt in readable and ext.lower() not in _NOT_PHOTOS
    )


def path_key(path: str) -> int:
    """An 8-byte digest of a path string: a set of these finds duplicates in 1/10 of the strings' memory."""
    return int.from_bytes(hashlib.blake2b(os.fsencode(path), digest_size=8).digest(), "little")


class InputStream:
    """Iterate the unique files to score, lazily, in the order given; counts what it skipped and why.

    ``sources``: image files, folders (scanned recursively), glob patterns, ``-`` (paths on stdin).
    ``lists``: list files (``-`` for stdin). ``limit`` stops reading after that many files.
    After iterating, ``skipped`` counts files a folder scan passed over by reason, ``duplicates`` the
    paths given twice, ``unreadable`` lists ``(folder, reason)`` for folders that could not be listed.
    """

    def __init__(
        self,
        sources: Iterable[PathLike] = (),
        lists: Iterable[PathLike] = (),
        *,
        limit: int | None = None,
        stdin: TextIO | None = None,
    ) -> None:
        self.sources = [os.fspath(s) for s in sources]
        self.lists = [os.fspath(s) for s in lists]
        self.limit = limit
        self._stdin = stdin
        self.skipped: Counter[str] = Counter()
        self.duplicates = 0
        self.unreadable: list[tuple[str, str]] = []
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        seen: set[int] = set()
        for path in self._raw():
            key = path_key(path)
            if key in seen:
                self.duplicates += 1
                continue
            seen.add(key)
            if self.limit is not None and self.count >= self.limit:
                return
            self.count += 1
            yield path

    def _raw(self) -> Iterator[str]:
        for source in self.sources:
            if source == "-":
                yield from self._read_list(self._stdin or sys.stdin, None, "<stdin>")
            elif _is_dir(source):
                yield from self._scan(source)
            elif not os.path.lexists(source) and _GLOB_CHARS & set(source):
                yield from self._glob(source)
            else:
                yield source
        for listed in self.lists:
            if listed == "-":
                yield from self._read_list(self._stdin or sys.stdin, None, "<stdin>")
            else:
                yield from self._open_list(listed)

    def _open_list(self, listed: str) -> Iterator[str]:
        try:
            handle = open(listed, encoding="utf-8", newline="")
        except OSError as exc:
            raise ConfigError(f"{listed}: cannot read the image list ({exc.strerror or exc})") from exc
        with handle:
            yield from self._read_list(handle, os.path.dirname(listed), listed)

    def _read_list(self, handle: TextIO, base: str | None, name: str) -> Iterator[str]:
        try:
            first = handle.readline()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{name}: cannot read the image list ({exc})") from exc
        column = _csv_column(first)
        if column is None:
            for line in _lines(_chain_first(first, handle), name):
                yield _joined(base, line)
            return
        for row in _csv_rows(handle, name):
            if column < len(row) and row[column].strip():
                yield _joined(base, row[column].strip())

    def _scan(self, folder: str) -> Iterator[str]:
        extensions = image_extensions()
        stack = [folder]
        while stack:
            current = stack.pop()
            try:
                with os.scandir(current) as found:
                    entries = sorted(found, key=lambda e: e.name)
            except OSError as exc:
                self.unreadable.append((current, f"cannot read folder ({exc.strerror or exc})"))
                continue
            subfolders = []
            for entry in entries:
                if entry.name.startswith("."):
                    self.skipped["hidden"] += 1
                elif _entry_is_dir(entry):
                    subfolders.append(entry.path)
                elif entry.is_symlink() and _is_dir(entry.path):  # as os.walk: a link could loop back
                    self.skipped["linked folder (not followed)"] += 1
                elif os.path.splitext(entry.name)[1].lower() in extensions:
                    yield entry.path
                else:
                    self.skipped[f"not an image format this Pillow reads ({_suffix(entry.name)})"] += 1
            stack.extend(reversed(subfolders))  # depth first, in sorted order

    def _glob(self, pattern: str) -> Iterator[str]:
        for path in sorted(glob.iglob(pattern, recursive=True)):
            if _is_dir(path):
                yield from self._scan(path)
            else:
                yield path

    def summary(self) -> str:
        """One line on what was left out (empty when nothing was)."""
        parts = [f"{n} {reason}" for reason, n in sorted(self.skipped.items())]
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate path(s)")
        return "skipped " + ", ".join(parts) if parts else ""


def _chain_first(first: str, rest: Iterable[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _lines(lines: Iterable[str], name: str) -> Iterator[str]:
    try:
        for line in lines:
            text = line.rstrip("\r\n")
            if text.strip() and not text.lstrip().startswith("#"):
                yield text
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read the image list ({exc})") from exc


def _csv_column(first: str) -> int | None:
    """The path column's index when ``first`` is a CSV header naming one, else None (a plain list)."""
    if "," not in first:
        return None
    header = [h.strip().lower() for h in next(csv.reader(io.StringIO(first)))]
    for name in LIST_COLUMNS:
        if name in header:
            return header.index(name)
    return None


def _csv_rows(handle: TextIO, name: str) -> Iterator[list[str]]:
    try:
        yield from csv.reader(handle)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{name}: cannot read the image list ({exc})") from exc


def _joined(base: str | None, path: str) -> str:
    return path if base is None or not base or os.path.isabs(path) else os.path.join(base, path)


def _suffix(name: str) -> str:
    return os.path.splitext(name)[1].lower() or "no suffix"


def _entry_is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_dir(path: str) -> bool:
    # ENAMETOOLONG and EACCES raise in is_dir: such a path is scored as a file and fails on its own line.
    try:
        return Path(path).is_dir()
    except OSError:
        return False
