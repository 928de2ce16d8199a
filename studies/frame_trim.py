"""What handing freed 4K frames back to the OS (``malloc_trim``) costs and saves, per frame-budget setting.

    python studies/frame_trim.py ARTIFACT FOLDER_OF_4K_JPEGS --out studies/results/frame_trim.json

The settings go through :func:`edgeiqa.bench.decode_paths.measure_decode_paths` (each in its own process,
so its peak RSS is its own; a pure full decode of the same files is the reference), with the trim forced
on or off where the question needs it. Run it quiet: nothing else on the cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgeiqa.bench.decode_paths import PathSetting, measure_decode_paths
from edgeiqa.bench.device_info import cpu_model
from edgeiqa.fileio import atomic_write_text

SETTINGS = (
    PathSetting("pure full decode", "full_decode"),
    PathSetting("default budget, no trim (the default now)", "predict", trim=False),
    PathSetting("default budget, trim every frame (the default before)", "predict", trim=True),
    PathSetting("unbounded", "predict", memory="unbounded"),
    PathSetting("one frame, trim", "predict", memory="one_frame"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    files = sorted(args.folder.glob("*.jpg"))
    measured = measure_decode_paths(args.artifact, files, settings=SETTINGS)
    keep = ("ips", "rates", "vs_full_decode", "peak_rss_mb")
    rows = {name: {k: r[k] for k in keep if k in r} for name, r in measured["settings"].items()}
    result = {
        "what": f"4K JPEG scoring rate and peak RSS per frame-budget setting, with and without malloc_trim after "
        f"each frame ({len(files)} files, {args.artifact})",
        "device": {"cpu_model": cpu_model()},
        "rows": rows,
    }
    atomic_write_text(args.out, json.dumps(result, indent=1, sort_keys=True))
    for name, row in rows.items():
        print(name, round(row["ips"], 1), "img/s,", round(row["peak_rss_mb"], 1), "MB")


if __name__ == "__main__":
    main()
