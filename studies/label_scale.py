"""Does ``edgeiqa label`` hold up on a large pool? Flat memory, resume after a kill, shards that merge.

    python studies/label_scale.py --teacher RUN/teacher --photos DIR [--files 10000] [--kill-at 0.3] \\
        --work /tmp/label_scale --out studies/results/label_scale.json

``--files`` links (named 00000.jpg, ...) cycle over the photos in ``--photos``: each link is its own image
to the label table, as in a pool of links. Three measurements, each through the real command line:

1. **kill and resume**: ``edgeiqa label`` runs over every link and is killed (SIGKILL) once ``--kill-at`` of
   the rows are in the table; the same command then runs to the end. Reported: rows before the kill,
   rows the second run wrote (its own count), whether the table ends with one row per link and whether the
   rows written before the kill are still there, byte for byte.
2. **flat memory**: the resident set size (VmRSS) of the second run, sampled with the table's row count;
   reported at each tenth of the rows, with the peak (VmHWM).
3. **shards**: ``--shard-files`` links labelled unsharded, and as shards 0/2 and 1/2 merged with
   ``--merge``: the two tables must hold the same paths; the largest score difference is reported.

What the teacher costs is not what this measures: a small teacher keeps it short.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edgeiqa.bench.device_info import cpu_model
from edgeiqa.fileio import atomic_write_text

LABEL = [sys.executable, "-m", "edgeiqa.cli", "label"]


def make_links(photos: list[Path], folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for i in range(count):
        link = folder / f"{i:05d}{photos[i % len(photos)].suffix.lower()}"
        if not link.is_symlink():
            link.symlink_to(photos[i % len(photos)].resolve())
        links.append(link)
    return links


def rows_in(table: Path) -> int:
    """Complete data rows (a partial last line does not count)."""
    if not table.exists():
        return 0
    data = table.read_bytes()
    return max(0, data.count(b"\n") - 1)


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) // 1024  # kB -> MB
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def run_label(args: list[str], table: Path, kill_at_rows: int | None = None) -> dict:
    """One ``edgeiqa label`` process; samples its memory with the table's rows, kills it at ``kill_at_rows``."""
    proc = subprocess.Popen([*LABEL, *args, "--out", str(table), "--quiet"], stdout=subprocess.PIPE, text=True)
    samples, peak = [], 0
    start = time.perf_counter()
    while proc.poll() is None:
        status = _status(proc.pid)
        peak = max(peak, status.get("VmHWM", 0))
        rows = rows_in(table)
        if status.get("VmRSS"):
            samples.append((rows, status["VmRSS"]))
        if kill_at_rows is not None and rows >= kill_at_rows:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.2)
    stdout = proc.stdout.read() if proc.stdout else ""
    return {
        "returncode": proc.returncode,
        "stdout": stdout.strip(),
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mb": peak,
        "samples": samples,
    }


def rss_by_tenth(samples: list[tuple[int, int]], total: int) -> list[dict[str, int]]:
    """The RSS sampled when the table first reached each tenth of ``total`` rows, counting only samples
    after this run wrote its first rows (before that the process is still importing and loading)."""
    start = samples[0][0] if samples else 0
    samples = [(rows, rss) for rows, rss in samples if rows > start]
    out = []
    for tenth in range(1, 11):
        at = next(((rows, rss) for rows, rss in samples if rows >= total * tenth // 10), None)
        if at:
            out.append({"rows": at[0], "rss_mb": at[1]})
    return out


def table_rows(table: Path) -> dict[str, str]:
    with open(table, newline="") as handle:
        return {row["path"]: row["score"] for row in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--photos", required=True, help="a folder of photos the links point at")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--kill-at", type=float, default=0.3, help="share of the rows written before the kill")
    parser.add_argument("--shard-files", type=int, default=400)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    photos = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    links = make_links(photos, args.work / "links", args.files)
    result = {
        "what": f"edgeiqa label over {args.files} links to {len(photos)} photos: killed at {args.kill_at:.0%} "
        "of the rows and resumed (memory sampled), and two shards merged against one unsharded run",
        "teacher": args.teacher,
        "device": {"cpu_model": cpu_model(), "cores": os.cpu_count()},
    }

    def save() -> None:
        atomic_write_text(args.out, json.dumps(result, indent=1, sort_keys=True))

    full = args.work / "full.csv"
    for stale in (full, Path(f"{full}.json")):
        stale.unlink(missing_ok=True)
    common = ["--teacher", args.teacher, str(args.work / "links")]
    first = run_label(common, full, kill_at_rows=int(args.files * args.kill_at))
    before = full.read_bytes()
    before = before[: before.rfind(b"\n") + 1]  # complete lines: what the resume keeps
    second = run_label(common, full)
    after = full.read_bytes()
    final = table_rows(full)
    result["resume"] = {
        "rows_before_kill": before.count(b"\n") - 1,
        "killed_returncode": first["returncode"],
        "second_run": second["stdout"],
        "second_run_seconds": second["seconds"],
        "rows_at_end": rows_in(full),
        "one_row_per_link": sorted(final) == sorted(os.path.abspath(p) for p in links),
        "rows_before_kill_kept": after.startswith(before),
    }
    result["memory"] = {"peak_rss_mb": second["peak_rss_mb"], "by_tenth": rss_by_tenth(second["samples"], args.files)}
    save()

    subset = args.work / "subset"
    subset.mkdir(exist_ok=True)
    for link in links[: args.shard_files]:
        target = subset / link.name
        if not target.is_symlink():
            target.symlink_to(os.readlink(link))
    tables = {name: args.work / f"{name}.csv" for name in ("whole", "shard0", "shard1", "merged")}
    for table in tables.values():
        table.unlink(missing_ok=True)
        Path(f"{table}.json").unlink(missing_ok=True)
    run_label(["--teacher", args.teacher, str(subset)], tables["whole"])
    for i in (0, 1):
        run_label(["--teacher", args.teacher, str(subset), "--shard", f"{i}/2"], tables[f"shard{i}"])
    subprocess.run([*LABEL, "--merge", str(tables["shard0"]), str(tables["shard1"]), "--out", str(tables["merged"])])
    whole, merged = table_rows(tables["whole"]), table_rows(tables["merged"])
    result["shards"] = {
        "files": args.shard_files,
        "shard_rows": [rows_in(tables["shard0"]), rows_in(tables["shard1"])],
        "same_paths": sorted(whole) == sorted(merged),
        "max_abs_score_difference": max(abs(float(whole[p]) - float(merged[p])) for p in whole if p in merged),
    }
    save()
    print(json.dumps({k: v for k, v in result.items() if k in ("resume", "shards")}, indent=1))


if __name__ == "__main__":
    main()
