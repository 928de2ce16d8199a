"""Files an export run would otherwise compute twice, kept for the rest of the process.

One ``edgeiqa run`` exports several artifacts of the same student, and most of them start from the same
intermediate files: the FP32 ONNX graph (every ONNX and OpenVINO artifact traces it anew) and the U8S8
Q/DQ graph (``onnx int8``, then ``openvino int8-qdq`` converts that very graph). Both steps are
deterministic, so a repeat with the same key copies the first result. Keys are content digests of
everything the file depends on; entries live in a private temporary folder removed at exit.
"""

from __future__ import annotations

import atexit
import copy
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_CLEARS: list[Callable[[], None]] = []


def on_forget(clear: Callable[[], None]) -> None:
    """Register ``clear`` with :func:`forget_all` (for an in-memory memo of another module)."""
    _CLEARS.append(clear)


def forget_all() -> None:
    """Drop everything kept for reuse in this process: the next export computes every file anew."""
    for clear in _CLEARS:
        clear()


class FileMemo:
    """At most ``limit`` (file, details) pairs by key; the oldest is dropped first."""

    def __init__(self, prefix: str, limit: int = 4) -> None:
        self.prefix, self.limit = prefix, limit
        self._entries: dict[str, tuple[Path, dict[str, Any]]] = {}
        self._folder: Path | None = None
        on_forget(self.clear)

    def copy_to(self, key: str, dst: Path) -> dict[str, Any] | None:
        """Copy the file kept under ``key`` to ``dst`` and return a copy of its details; None if not kept."""
        entry = self._entries.get(key)
        if entry is None or not entry[0].is_file():
            return None
        shutil.copyfile(entry[0], dst)
        return copy.deepcopy(entry[1])

    def keep(self, key: str, src: Path, details: dict[str, Any]) -> None:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix=f"edgeiqa-{self.prefix}-"))
            atexit.register(shutil.rmtree, self._folder, True)
        while len(self._entries) >= self.limit:
            self._entries.pop(next(iter(self._entries)))[0].unlink(missing_ok=True)
        kept = self._folder / f"{key}{src.suffix}"
        shutil.copyfile(src, kept)
        self._entries[key] = (kept, copy.deepcopy(details))

    def clear(self) -> None:
        for kept, _ in self._entries.values():
            kept.unlink(missing_ok=True)
        self._entries.clear()
