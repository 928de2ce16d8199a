"""Argument types and checks shared by the sub-commands, so a bad value is refused before any work.

Each type raises :class:`argparse.ArgumentTypeError`, which :mod:`edgeiqa.cli` prints as one
``edgeiqa: error: ...`` line with exit code 2. :func:`check_output_file` runs before a command scores
or times anything: a CSV that cannot be written must not cost the batch that produced it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from edgeiqa.errors import ConfigError


def _number(kind: type, low: float | None, strict: bool, what: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value != value or (low is not None and (value <= low if strict else value < low)):  # NaN too
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, 0, True, "an integer >= 1")
nonneg_int = _number(int, 0, False, "an integer >= 0")
positive_float = _number(float, 0.0, True, "a number > 0")
nonneg_float = _number(float, 0.0, False, "a number >= 0")


def size_wxh(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` with both sides >= 1."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT (e.g. 3840x2160), got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT with both sides >= 1, got {text!r}")
    return width, height


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Refuse an output path that is a folder or cannot be written, by trying (``os.access`` says yes to
    root everywhere, /proc included); creates missing parent folders as the writer would."""
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"{flag} {out} is a folder; give a file path such as {out / 'scores.csv'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {out}: cannot write there ({exc.strerror or exc})") from exc
    return out
