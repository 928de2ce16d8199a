"""report.html rendered by headless Chromium (skipped where Chromium is not installed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bench.bench_helpers import entry, result_dict
from PIL import Image

from edgeiqa.report.screenshot import screenshot_html
from edgeiqa.report.writer import write_report

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (/usr/bin/chromium)")


def test_report_page_renders_with_its_embedded_plot(tmp_path: Path) -> None:
    entries = [
        entry("student_fp32.onnx", 4.0, 0.90),
        entry("student_int8.onnx", 1.5, 0.897, precision="int8"),
        entry("torch fp32 cpu", 30.0, 0.90, fmt="torch", backend="torch", kind="torch"),
    ]
    for device in ("xeon", "jetson-orin"):
        (tmp_path / f"{device}.json").write_text(json.dumps(result_dict(device, entries)))
    report = write_report(sorted(tmp_path.glob("*.json")), tmp_path / "report")
    png = screenshot_html(report.html, tmp_path / "shot.png", window=(1280, 1400), chromium=str(CHROMIUM))
    with Image.open(png) as img:
        assert img.size == (1280, 1400)
        pixels = np.asarray(img.convert("RGB"))
    # Not a blank page: text, tables and the plot leave many non-white pixels, and the plot's blue markers
    # (#1f77b4) show that the data-URI image was decoded.
    assert (pixels.min(axis=2) < 200).mean() > 0.01
    blue = (np.abs(pixels.astype(int) - [31, 119, 180]).sum(axis=2) < 30).sum()
    assert blue > 50
