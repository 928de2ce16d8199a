"""A bound on the decoded pixels alive at once, so decode threads cannot stack 4K frames in memory.

A 3840x2160 RGB frame is 33 MB in Pillow (4 bytes per pixel), and every decode thread holds one
until its views are cut. With the runtime itself at ~90 MB (Python, numpy, Pillow, ONNX Runtime and
the session), two 4K frames in flight already pass 150 MB, which a Jetson Nano or a phone cannot
spare. :class:`FrameBudget` lets a frame start decoding only while the pixels already in flight plus
its own stay under a budget (one frame is always admitted, so a huge image still runs, alone).
Small images are unaffected: many of them fit in the budget together and decode in parallel.

The budget is in bytes. By default it follows the machine: a fraction (:data:`DEFAULT_MEMORY_FRACTION`)
of the memory the kernel reports available (``MemAvailable``) when the predictor loads, so a desktop
decodes frames in parallel and a 4 GB board still keeps several in flight; the one-frame bound, which
serialises 4K decoding, is an explicit choice (``--one-frame``). ``max_memory`` (``--max-memory
150MB``) is a bound on the whole process: the frames get what the process does not already hold. The
peak RSS each setting gave is in ``studies/results/uhd_decode_paths.json``.
"""

from __future__ import annotations

import ctypes
import io
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

# One 4K frame (8.3 MP) fits, two do not; a 12 MP phone photo still runs (alone). The explicit one-frame bound.
DEFAULT_BUDGET_PIXELS = 12_000_000
# Pillow holds a decoded RGB frame as 4 bytes a pixel; a jpeg_regions decode holds the DCT coefficients
# (2 bytes a sample, 1.5 samples a pixel at 4:2:0, the camera default; twice that at 4:4:4) while it cuts
# the patches.
FRAME_BYTES_PER_PIXEL = 4
REGIONS_BYTES_PER_PIXEL = 3
# Why a quarter of MemAvailable: the rest stays for the model, the other processes and the page cache, and
# on 2 cores two frames in flight already keep both busy; at least one frame is always admitted.
DEFAULT_MEMORY_FRACTION = 0.25
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1000, "KIB": 1024, "M": 1024**2, "MB": 1000**2, "MIB": 1024**2}
_UNITS.update({"G": 1024**3, "GB": 1000**3, "GIB": 1024**3})
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


def parse_size(text: str | int) -> int:
    """Bytes from ``150MB``, ``1.5GiB``, ``512M`` or a plain number (MB = 10^6, MiB and M = 2^20)."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a memory size: {text!r} (e.g. 150MB, 1.5GiB, 512M)")
    return int(float(match.group(1)) * _UNITS[unit])


def memory_size(text: str) -> str:
    """An argparse type: ``text`` checked as a memory size (ValueError makes argparse say which flag)."""
    parse_size(text)
    return text


def _meminfo_bytes(field: str, path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        text = path.read_text()
    except OSError:  # not Linux: no figure, the caller picks its fallback
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def current_rss_bytes() -> int:
    """This process's resident memory now (0 where /proc is absent)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def default_budget_bytes(fraction: float = DEFAULT_MEMORY_FRACTION) -> int:
    """The default bound on decoded bytes in flight: ``fraction`` of MemAvailable, at least one 4K frame
    (one frame when the kernel does not say)."""
    one_frame = DEFAULT_BUDGET_PIXELS * FRAME_BYTES_PER_PIXEL
    available = _meminfo_bytes("MemAvailable")
    return one_frame if available is None else max(one_frame, int(available * fraction))


def budget_for(max_memory: int | str | None) -> int:
    """Decoded bytes in flight allowed under a whole-process bound: what the process does not hold yet."""
    return max(0, parse_size(max_memory) - current_rss_bytes()) if max_memory is not None else default_budget_bytes()


class FrameBudget:
    """Admit a decode costing ``nbytes`` while in-flight bytes stay <= ``limit`` (always admits one).

    ``trim``: hand a big frame's freed pages back to the OS before the next one is admitted
    (:func:`release_free_memory`). That keeps a tight, explicit bound honest, but ``malloc_trim`` walks
    every arena under its locks, which cost the default 4K path a third of its rate (rate and the peak RSS
    it saved: ``studies/results/frame_trim.json``): under the default, generous budget it is off.
    """

    def __init__(self, limit: int | None, trim: bool = True) -> None:
        self.limit = limit
        self.trim = trim
        self.in_flight = 0
        self.peak = 0  # the most bytes ever in flight: what tests and benchmarks check
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        if self.limit is None or nbytes <= 0:
            yield
            return
        with self._cond:
            while self.in_flight and self.in_flight + nbytes > self.limit:
                self._cond.wait()
            self.in_flight += nbytes
            self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:
            if self.trim and nbytes >= TRIM_PIXELS * FRAME_BYTES_PER_PIXEL:
                release_free_memory()  # before the next frame is admitted, not after it was decoded
            with self._cond:
                self.in_flight -= nbytes
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


def peek_bytes(item: Any, regions: bool = False) -> int:
    """The decoded bytes ``item`` will hold in flight: a full frame, or for a ``jpeg_regions`` decode its
    DCT coefficients; 0 for items already in memory."""
    return peek_pixels(item) * (REGIONS_BYTES_PER_PIXEL if regions else FRAME_BYTES_PER_PIXEL)
