"""Strict reading of metadata tables (CSV, and XLSX through openpyxl when it is installed).

Every problem becomes a one-line :class:`DataError` naming the file and the line as a text editor
shows it (the header is line 1), so a user can open the file and fix it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeiqa.data.records import ImageRecord
from edgeiqa.errors import DataError

# Official spellings (UHD-IQA and KonIQ use training/validation/test) and the short ones.
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


@dataclass(frozen=True)
class Row:
    """One data row: its line number in the file and its cells by column name."""

    line: int
    cells: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.cells.get(column, "").strip()


@dataclass(frozen=True)
class Table:
    """A metadata table read from ``path``, with every required column present and >= 1 data row."""

    path: Path
    columns: tuple[str, ...]
    rows: list[Row]

    def where(self, row: Row) -> str:
        return f"{self.path}, line {row.line}"


def _check_columns(path: Path, found: Sequence[str], required: Sequence[str], optional: Sequence[str]) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        extra = f" (optional: {list(optional)})" if optional else ""
        raise DataError(f"{path}: missing column(s) {missing}; expected {list(required)}{extra}, found {list(found)}")


def _sniff_delimiter(first_line: str) -> str:
    # Spreadsheet exports in some locales use ';' or tabs; the header tells which.
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for every non-blank record, header included."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            delimiter = _sniff_delimiter(stream.readline())
            stream.seek(0)
            reader = csv.reader(stream, delimiter=delimiter)
            try:
                for cells in reader:
                    if any(c.strip() for c in cells):
                        yield reader.line_num, cells
            except csv.Error as exc:
                raise DataError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _build_table(
    path: Path, lines: Iterable[tuple[int, list[str]]], required: Sequence[str], optional: Sequence[str]
) -> Table:
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        raise DataError(f"{path}: empty file (no header row)")
    header = tuple(c.strip() for c in first[1])
    _check_columns(path, header, required, optional)
    rows = []
    for line, cells in iterator:
        # Spreadsheets often pad rows with empty trailing cells; anything else that is short or long is an error.
        while len(cells) > len(header) and not cells[-1].strip():
            cells = cells[:-1]
        if len(cells) != len(header):
            raise DataError(f"{path}, line {line}: {len(cells)} fields but the header has {len(header)}")
        rows.append(Row(line, dict(zip(header, cells))))
    if not rows:
        raise DataError(f"{path}: no data rows (empty dataset)")
    return Table(path, header, rows)


def read_csv(path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> Table:
    """Read a CSV whose header must contain ``required``; blank lines are skipped."""
    if not path.is_file():
        raise DataError(f"{path}: metadata file not found")
    return _build_table(path, _csv_rows(path), required, optional)


def _cell_text(value: object) -> str:
    return "" if value is None else str(value)


def read_xlsx(path: Path, required: Sequence[str], optional: Sequence[str] = (), hint: str = "") -> Table:
    """Read the first sheet of an .xlsx like :func:`read_csv` (rows numbered as the spreadsheet shows)."""
    if not path.is_file():
        raise DataError(f"{path}: metadata file not found")
    try:
        import openpyxl  # optional: only needed for the spreadsheets some datasets ship
    except ImportError:
        raise DataError(
            f"{path}: reading .xlsx needs the 'openpyxl' package; export the sheet to CSV{hint} "
            "or run: pip install openpyxl"
        ) from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            # min_row=1 so that enumerate() numbers rows as the spreadsheet does, even above leading blanks.
            rows = book.worksheets[0].iter_rows(min_row=1, values_only=True)
            lines = [
                (number, [_cell_text(v) for v in values])
                for number, values in enumerate(rows, start=1)
                if any(v is not None and str(v).strip() for v in values)
            ]
        finally:
            getattr(book, "close", lambda: None)()  # read-only workbooks keep the file open
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise DataError(f"{path}: cannot read the workbook ({type(exc).__name__}: {exc})") from exc
    return _build_table(path, lines, required, optional)


def parse_score(table: Table, row: Row, column: str) -> float:
    """A finite number from ``column`` or a DataError naming the file, line and value."""
    text = row[column]
    if not text:
        raise DataError(f"{table.where(row)}: empty '{column}' value")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{table.where(row)}: '{column}' is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{table.where(row)}: '{column}' is {text!r}; a score must be a finite number")
    return value


def parse_optional(table: Table, row: Row, column: str) -> float | None:
    """Like :func:`parse_score` but an absent column or an empty cell gives None."""
    if column not in table.columns or not row[column]:
        return None
    return parse_score(table, row, column)


def parse_split(where: str, column: str, text: str) -> str:
    """Map an official split name (training/validation/test, train/val/test) to train/val/test."""
    split = _SPLIT_NAMES.get(text.strip().lower())
    if split is None:
        raise DataError(f"{where}: '{column}' is {text!r}; expected training/validation/test (or train/val/test)")
    return split


def image_name(table: Table, row: Row, column: str) -> str:
    name = row[column]
    if not name:
        raise DataError(f"{table.where(row)}: empty '{column}' value")
    return name


def find_image(where: str, name: str, folders: Sequence[Path], alternatives: Sequence[str] = ()) -> Path:
    """The first existing ``folder/name`` (or ``folder/alternative``); else a DataError naming the row."""
    for folder in folders:
        for candidate in (name, *alternatives):
            path = folder / candidate
            if path.is_file():
                return path
    looked = ", ".join(str(f) for f in dict.fromkeys(folders))
    raise DataError(f"{where}: image {name!r} does not exist (looked in {looked})")


def find_file(root: Path, override: str | Path | None, names: Sequence[str], what: str) -> Path:
    """``override`` (relative to root) when given, else the first of ``names`` under root that exists."""
    if override is not None:
        path = root / override
        if not path.is_file():
            raise DataError(f"{path}: {what} not found")
        return path
    for name in names:
        if (root / name).is_file():
            return root / name
    raise DataError(f"{root}: {what} not found (expected {' or '.join(names)})")


def find_folder(root: Path, override: str | Path | None, names: Sequence[str], what: str) -> Path:
    """Like :func:`find_file` for the folder that holds a dataset's images."""
    candidates = [override] if override is not None else list(names)
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root}: {what} not found (expected {' or '.join(str(c) + '/' for c in candidates)})")


def require_dir(root: Path, dataset: str) -> Path:
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; the {dataset} loader needs the dataset's root folder")
    return root.resolve()


class RecordList:
    """Records in file order, refusing an image listed twice (a silent duplicate skews every metric)."""

    def __init__(self) -> None:
        self.items: list[ImageRecord] = []
        self._seen: dict[Path, str] = {}

    def add(self, where: str, record: ImageRecord) -> None:
        first = self._seen.get(record.path)
        if first is not None:
            raise DataError(f"{where}: image {record.path.name!r} is listed twice (first at {first})")
        self._seen[record.path] = where.rsplit(", ", 1)[-1]
        self.items.append(record)
