"""Render a report page to PNG with headless Chromium (to check how report.html looks, e.g. in CI).

Chromium is not a dependency: :func:`find_chromium` returns None when it is not installed, and the
flags below keep a headless run offline and quiet (no first-run, sync, component update or
background networking; QUIC off) in a fresh profile. ``--no-sandbox`` is needed when running as root,
as in containers.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from edgeiqa.errors import EdgeIQAError, MissingDependencyError

_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None."""
    for name in _CANDIDATES:
        found = shutil.which(name) if not name.startswith("/") else (name if Path(name).exists() else None)
        if found:
            return found
    return None


def screenshot_html(
    html_path: str | Path,
    png_path: str | Path,
    *,
    window: tuple[int, int] = (1280, 2000),
    chromium: str | None = None,
    timeout: float = 90.0,
) -> Path:
    """Save a PNG of ``html_path`` as headless Chromium renders it at ``window`` (width, height)."""
    binary = chromium or find_chromium()
    if binary is None:
        raise MissingDependencyError("screenshots need Chromium (e.g. apt-get install chromium)")
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgeiqa-chromium-") as profile:
        argv = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={png_path}",
            f"--window-size={window[0]},{window[1]}",
            "--hide-scrollbars",
            html_path.as_uri(),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if not png_path.is_file() or png_path.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise EdgeIQAError(f"{html_path}: Chromium wrote no screenshot ({tail[0]})")
    return png_path
