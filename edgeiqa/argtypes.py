"""Argument types and checks shared by the sub-commands, so a bad value is refused before any work.

Each type raises :class:`argparse.ArgumentTypeError`, which :mod:`edgeiqa.cli` prints as one
``edgeiqa: error: ...`` line with exit code 2. :func:`check_output_file` runs before a command scores
or times anything: a CSV that cannot be written must not cost the batch that produced it.
"""

from __future__ import annotations

import argparse
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


# Files a writing command must never replace, whatever --overwrite says: the model and what vouches for it.
ARTIFACT_SUFFIXES = frozenset(
    {".onnx", ".xml", ".bin", ".tflite", ".engine", ".plan", ".mlpackage", ".mlmodel", ".safetensors", ".pt", ".pth"}
)


@dataclass(frozen=True)
class OutputKind:
    """What a command writes: a name for messages and the first bytes every such file starts with."""

    name: str
    starts_with: tuple[bytes, ...] = (b"",)
    contains: bytes = b""

    def matches(self, path: Path) -> bool:
        try:
            with open(path, "rb") as handle:
                head = handle.read(256)
        except OSError:
            return False
        return head == b"" or (any(head.startswith(p) for p in self.starts_with) and self.contains in head)


SCORES_CSV = OutputKind("scores CSV (path,score,error)", (b"path,score,error",))
LABEL_TABLE = OutputKind("label table (path,score,...)", (b"path,score",))
BENCH_JSON = OutputKind("benchmark result JSON", (b"{",), b'"edgeiqa.bench/')


def _same_file(a: Path, b: Path) -> bool:
    # samefile compares device and inode: a symlink, a hard link or another spelling of the path all match.
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _is_artifact_or_manifest(out: Path) -> str | None:
    real = Path(os.path.realpath(out))
    if real.suffix.lower() in ARTIFACT_SUFFIXES:
        return "an artifact"
    if real.suffix.lower() == ".json":
        beside = real.with_name(real.name[: -len(".json")])
        if beside.exists() or (real.name == "state.json" and real.with_name("model.safetensors").exists()):
            return "a manifest"
        try:
            with open(real, "rb") as handle:
                if b'"edgeiqa.manifest/' in handle.read(4096):
                    return "a manifest"
        except OSError:
            pass
    return None


def _refusal(
    out: Path, inputs: Iterable[str | os.PathLike], kind: OutputKind | None, overwrite: bool, artifact: bool
) -> str | None:
    if os.path.isdir(out):
        return f"is a folder; give a file path such as {out / 'scores.csv'}"
    for given in inputs:
        source = Path(given)
        if _is_inside_scanned_folder(out, source) or (os.path.exists(source) and _same_file(out, source)):
            return f"is one of this command's inputs ({source}); write the output elsewhere"
    if os.path.islink(out):  # the atomic rename would replace the link itself (even /dev/stdin's)
        return f"is a symbolic link (to {os.readlink(out)}); give the real path"
    if not os.path.exists(out):
        return None
    if not stat.S_ISREG(os.stat(out).st_mode):
        return "is not a regular file (a device, pipe or socket); leave out --out to write to stdout"
    what = None if artifact else _is_artifact_or_manifest(out)
    if what:
        return f"is {what}; write the output elsewhere (this is never replaced, --overwrite or not)"
    if kind is not None and not overwrite and not kind.matches(out):
        return f"exists and is not a {kind.name}; pass --overwrite to replace it"
    return None


def _is_inside_scanned_folder(out: Path, source: Path) -> bool:
    """An output inside an input folder, named like an image, would be one of the images scanned."""
    if not os.path.isdir(source) or out.suffix.lower() in (".csv", ".json", ".txt", ".md", ".html", ".partial"):
        return False
    return os.path.realpath(out).startswith(os.path.realpath(source) + os.sep) and os.path.exists(out)


def check_output_file(
    path: str | os.PathLike,
    flag: str = "--out",
    *,
    inputs: Iterable[str | os.PathLike] = (),
    kind: OutputKind | None = None,
    overwrite: bool = False,
    artifact: bool = False,
) -> Path:
    """Refuse, before any work and in one line, an output that would destroy data: a folder, one of the
    command's ``inputs`` (the same file under any spelling, link or hard link), an artifact or a manifest,
    or an existing file that is not a ``kind`` file (unless ``overwrite``; ``artifact``: the command writes
    an artifact, so an existing one of the same name is its own earlier output); then make sure it can be
    written, by trying (``os.access`` says yes to root everywhere, /proc included)."""
    out = Path(path)
    reason = _refusal(out, inputs, kind, overwrite, artifact)
    if reason:
        raise ConfigError(f"{flag} {out} {reason}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {out}: cannot write there ({exc.strerror or exc})") from exc
    return out


def check_output_dir(path: str | os.PathLike, flag: str = "--out", *, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """An output folder: refused when it is an existing file or one of the command's ``inputs``."""
    out = Path(path)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"{flag} {out} is an existing file, not a folder; give a folder path")
    for given in inputs:
        if os.path.exists(given) and _same_file(out, Path(given)):
            raise ConfigError(f"{flag} {out} is one of this command's inputs ({given}); write the output elsewhere")
    return out
