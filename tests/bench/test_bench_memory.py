"""Peak memory is the worker's own, not inherited from the process that started it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def test_a_child_reports_its_own_peak_not_its_parents() -> None:
    ballast = np.ones(400 * 2**20 // 8)  # 400 MiB resident in this (parent) process
    code = "from edgeiqa.bench.memory import peak_rss_mb; print(peak_rss_mb())"
    child_peak = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert ballast.sum() > 0
    # A bare interpreter plus numpy is tens of MiB; getrusage's ru_maxrss would have said >= 400 here.
    assert 1 < child_peak < 200
