"""Resident memory of this process, now and at its peak, in MiB (None where the platform cannot say).

The peak is the kernel's high-water mark: it misses no short-lived spike, unlike sampling. On Linux it
is ``VmHWM`` of /proc/self/status, the mark of this process's own address space: ``ru_maxrss`` would
not do, because Linux carries it across fork and exec, so a worker started by a parent holding torch
(1.4 GB) reported that parent's peak instead of its own. It covers the whole life of the process, which is why each
artifact is benchmarked in a fresh worker process: there the peak is the interpreter, the imports, the
runtime's session and its scoring, and nothing left over from another runtime.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process since it started (exec'd)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    try:
        import resource
    except ImportError:  # Windows
        return _psutil_peak()
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return value / 2**20 if sys.platform == "darwin" else value / 1024


def _psutil_peak() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)
    return (peak if peak is not None else info.rss) / 2**20


def current_rss_mb() -> float | None:
    """Resident set size right now (/proc on Linux, psutil elsewhere)."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        pages = int(statm.read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20
