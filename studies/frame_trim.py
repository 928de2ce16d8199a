"""What handing freed 4K frames back to the OS (``malloc_trim``) costs and saves, per frame-budget setting.

    python studies/frame_trim.py ARTIFACT FOLDER_OF_4K_JPEGS --out studies/results/frame_trim.json

Each setting runs in its own process (so its peak RSS is its own): ``Predictor.load(ARTIFACT)`` with the
setting, one warm-up call on 4 files, then 3 timed passes over every file; the rate is the median. A
pure full decode of the same files on two threads (Pillow) is the reference. Run it quiet: nothing else
on the cores.
"""

from __future__ import annotations

import argparse
import glob
import json
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SETTINGS = {  # name -> (Predictor.load keywords, trim)
    "default budget, no trim (the default now)": ({}, False),
    "default budget, trim every frame (the default before)": ({}, True),
    "unbounded": ({"max_decoded_pixels": None}, False),
    "one frame, trim": ({"max_decoded_pixels": 12_000_000}, True),
}


def measure(artifact: str, files: list[str], setting: str) -> dict:
    from edgeiqa.runtime.predictor import Predictor

    kwargs, trim = SETTINGS[setting]
    with Predictor.load(artifact, **kwargs) as predictor:
        predictor.frames.trim = trim
        predictor(files[:4])
        rates = []
        for _ in range(3):
            start = time.perf_counter()
            predictor(files)
            rates.append(len(files) / (time.perf_counter() - start))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"images_per_s": statistics.median(rates), "passes": rates, "peak_rss_mb": round(peak, 1)}


def full_decode(files: list[str]) -> float:
    from PIL import Image

    def one(path: str) -> None:
        with Image.open(path) as img:
            img.load()

    rates = []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            start = time.perf_counter()
            list(pool.map(one, files))
            rates.append(len(files) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact")
    parser.add_argument("folder")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--setting", help=argparse.SUPPRESS)  # the child process: one setting, JSON on stdout
    args = parser.parse_args()
    files = sorted(glob.glob(str(Path(args.folder) / "*.jpg")))
    if args.setting:
        print(json.dumps(measure(args.artifact, files, args.setting)))
        return
    from edgeiqa.bench.device_info import cpu_model
    from edgeiqa.fileio import atomic_write_text

    decode = full_decode(files)
    rows = {"pure full decode (Pillow, 2 threads)": {"images_per_s": decode, "vs_full_decode": 1.0}}
    for setting in SETTINGS:
        command = [sys.executable, __file__, args.artifact, args.folder, "--setting", setting]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.splitlines()[-1])
        rows[setting] = {**row, "vs_full_decode": row["images_per_s"] / decode}
        print(setting, round(row["images_per_s"], 1), "img/s,", row["peak_rss_mb"], "MB", flush=True)
    result = {
        "what": f"4K JPEG scoring rate and peak RSS per frame-budget setting, with and without malloc_trim after "
        f"each frame ({len(files)} files, {args.artifact})",
        "device": {"cpu_model": cpu_model()},
        "rows": rows,
    }
    atomic_write_text(args.out, json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
