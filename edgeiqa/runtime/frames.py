"""A bound on the decoded pixels alive at once, so decode threads cannot stack 4K frames in memory.

A 3840x2160 RGB frame is 33 MB in Pillow (4 bytes per pixel), and every decode thread holds one
until its views are cut. With the runtime itself at ~90 MB (Python, numpy, Pillow, ONNX Runtime and
the session), two 4K frames in flight already pass 150 MB, which a Jetson Nano or a phone cannot
spare. :class:`FrameBudget` lets a frame start decoding only while the pixels already in flight plus
its own stay under a budget (one frame is always admitted, so a huge image still runs, alone).
Small images are unaffected: many of them fit in the budget together and decode in parallel.

Measured with ``edgeiqa predict`` over 24 3840x2160 JPEGs (see the issue-13 report): INT8 ONNX
peak RSS 179 MB with two free-running decode threads, ~140 MB with this budget.
"""

from __future__ import annotations

import ctypes
import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image

# One 4K frame (8.3 MP) fits, two do not; a 12 MP phone photo still runs (alone).
DEFAULT_BUDGET_PIXELS = 12_000_000
# Frames from this size up are handed back to the OS once freed (see release_free_memory).
TRIM_PIXELS = 2_000_000


def _load_malloc_trim() -> Any:
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to do
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    glibc raises its mmap threshold when a big block is freed, so the next frames come from the
    heap of whichever decode thread made them, and each thread's arena then keeps a frame's worth of
    freed pages for good: two decode threads held two 4K frames even when only one was in flight.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class FrameBudget:
    """Admit a decode of ``pixels`` while in-flight pixels stay <= ``limit`` (always admits one)."""

    def __init__(self, limit: int | None = DEFAULT_BUDGET_PIXELS) -> None:
        self.limit = limit
        self.in_flight = 0
        self.peak = 0  # the most pixels ever in flight: what tests and benchmarks check
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        if self.limit is None or pixels <= 0:
            yield
            return
        with self._cond:
            while self.in_flight and self.in_flight + pixels > self.limit:
                self._cond.wait()
            self.in_flight += pixels
            self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:
            if pixels >= TRIM_PIXELS:
                release_free_memory()  # before the next frame is admitted, not after it was decoded
            with self._cond:
                self.in_flight -= pixels
                self._cond.notify_all()


def peek_pixels(item: Any) -> int:
    """Width x height from the file header only (Pillow opens lazily); 0 when unknown or already
    decoded (a Pillow image or an array in memory): such items are not held back."""
    if isinstance(item, bytes):
        source: Any = io.BytesIO(item)
    elif isinstance(item, (str, os.PathLike)):
        source = item
    else:
        return 0
    try:
        with Image.open(source) as img:
            width, height = img.size
    except Exception:  # noqa: BLE001 - the decoder reports the file's problem on its own line
        return 0
    return int(width) * int(height)
