"""Small file helpers every layer shares (torch-free: the runtime uses them on devices)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edgeiqa.errors import EdgeIQAError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``: a reader never sees half a file.

    The temporary file lives beside the target (same filesystem, so the rename is atomic) and gets the
    permissions a plain ``open(path, "w")`` would give: mkstemp's 0600 would hide manifests and reports
    from the rest of a team or a web server.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json_file(path: Path | str, what: str, error: type[EdgeIQAError], missing_hint: str = "") -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file is one ``error`` line naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(f"{path}: {what} not found{missing_hint}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what} ({exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
