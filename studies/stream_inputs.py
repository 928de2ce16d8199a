"""Does ``edgeiqa predict`` stream a 1,000,000-line image list? Time to the first score and peak memory.

Issue 24's done-when: the first score within 2 s and under 300 MB resident whatever the list's length.
The list names 1,000,000 distinct paths (1,000 linked folders x 1,000 linked files, all leading to a
few real photos), the model is the tests' tiny ONNX (so what is measured is the input path, not the
network), and the run is stopped after ``--seconds``. Writes ``studies/results/stream_inputs.json``::

    python studies/stream_inputs.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tiny ONNX fixture the runtime tests build

from runtime.runtime_helpers import build_tiny_onnx, smooth_image, tiny_contract, write_tiny_manifest  # noqa: E402

from edgeiqa.bench.device_info import cpu_model  # noqa: E402

KODAK = ROOT.parent / "shared" / "data" / "kodak"


def make_list(work: Path, lines: int = 1_000_000, side: int = 1000) -> Path:
    """``side`` linked folders x ``side`` linked files -> ``lines`` distinct paths to a few photos."""
    photos = work / "photos"
    photos.mkdir()
    sources = sorted(KODAK.glob("*.png"))[:4] if KODAK.is_dir() else []
    if not sources:
        for i in range(4):
            smooth_image(768, 512, seed=i).save(work / f"src{i}.jpg", quality=90)
        sources = sorted(work.glob("src*.jpg"))
    for j in range(side):
        (photos / f"p{j:03d}{sources[j % len(sources)].suffix}").symlink_to(sources[j % len(sources)])
    for i in range(side):
        (work / f"d{i:03d}").symlink_to(photos)
    names = sorted(p.name for p in photos.iterdir())
    listing = work / "list.txt"
    with listing.open("w") as handle:
        for i in range(lines // side):
            handle.writelines(f"d{i:03d}/{name}\n" for name in names)
    return listing


def run(artifact: Path, listing: Path, seconds: float) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "edgeiqa.cli", "predict", str(artifact)]
    cmd += ["--list", str(listing), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first, rows = None, 0
    proc.stdout.readline()  # the header
    deadline = start + seconds
    for _line in proc.stdout:
        if first is None:
            first = time.perf_counter() - start
        rows += 1
        if time.perf_counter() > deadline:
            break
    # GNU time ignores SIGINT rather than passing it on: interrupt predict itself, as a user's Ctrl-C would.
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGINT)
    for _ in proc.stdout:
        rows += 1
    err = proc.stderr.read()
    proc.wait()
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    return {
        "seconds_run": round(time.perf_counter() - start, 1),
        "time_to_first_score_s": round(first, 3) if first is not None else None,
        "rows_scored": rows,
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=ROOT / "studies" / "results" / "stream_inputs.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        artifact = build_tiny_onnx(work / "tiny.onnx")
        write_tiny_manifest(artifact, tiny_contract(max_pixels=89_478_485))
        listing = make_list(work)
        result = run(artifact, listing, args.seconds)
    record = {
        "what": "edgeiqa predict over a 1,000,000-line image list (distinct paths, linked to 4 Kodak photos, "
        "tiny ONNX model, stdout CSV): seconds from process start to the first score row, and the peak resident "
        f"memory of the process (/usr/bin/time -v) over a {args.seconds:.0f} s run stopped with Ctrl-C.",
        "list_lines": 1_000_000,
        **result,
        "device": {"cpu_model": cpu_model(), "cores_usable": len(os.sched_getaffinity(0))},
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
