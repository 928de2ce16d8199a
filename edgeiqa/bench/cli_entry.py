"""Argument parser and handler of ``edgeiqa bench`` (wired in :mod:`edgeiqa.cli`).

    edgeiqa bench exports/student_fp32.onnx exports/student_int8.onnx runs/exp/student/final \\
        --data runs/quickstart/data --split test --batch 1,8 --device-name xeon-2c --out results/xeon-2c.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edgeiqa.argtypes import (
    BENCH_JSON,
    check_output_file,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    size_wxh,
)
from edgeiqa.bench.harness import DatasetSpec
from edgeiqa.bench.spec import BENCH_SPLITS, DECODERS, BenchOptions
from edgeiqa.configs import field_default
from edgeiqa.runtime.frames import memory_size

# Every default below is BenchOptions' or DatasetSpec's own: the CLI, the API and an experiment's
# bench: section (which is a BenchOptions) agree by construction (tests/test_defaults_agree.py).
_DEFAULTS = BenchOptions()


def _csv(values: tuple) -> str:
    return ",".join(str(v) for v in values)


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _floats2(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}") from None
    if not low < high:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH with LOW < HIGH, got {text!r}")
    return low, high


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``edgeiqa bench``."""
    p.add_argument(
        "artifacts",
        nargs="+",
        metavar="ARTIFACT",
        help="artifact files (manifest beside each), PATH@BACKEND to pick the backend "
        "(e.g. model.onnx@openvino), or a calibrated student checkpoint folder (torch eager)",
    )
    p.add_argument("--out", required=True, help="result JSON to write (one per device run)")
    p.add_argument("--overwrite", action="store_true", help="replace --out even if it is not a benchmark result")
    p.add_argument("--data", help="dataset root or CSV for accuracy and end-to-end img/s (default: none)")
    dataset, split = field_default(DatasetSpec, "name"), field_default(DatasetSpec, "split")
    p.add_argument("--dataset", default=dataset, help=f"dataset loader name (default: {dataset})")
    p.add_argument("--split", default=split, choices=BENCH_SPLITS, help=f"split to score (default: {split})")
    p.add_argument("--mos-range", type=_floats2, metavar="LOW,HIGH", help="nominal MOS scale of a csv dataset")
    p.add_argument("--limit", type=positive_int, help="score at most this many images of the split")
    p.add_argument(
        "--batch",
        type=_ints,
        default=list(_DEFAULTS.batches),
        metavar="B1,B2",
        help=f"batch sizes (default: {_csv(_DEFAULTS.batches)})",
    )
    p.add_argument("--device-name", help="label of this device in reports (default: the host name)")
    p.add_argument("--threads", type=positive_int, help="threads for every runtime (ORT intra-op, OpenVINO, torch)")
    p.add_argument(
        "--min-seconds",
        type=nonneg_float,
        default=_DEFAULTS.min_seconds,
        help=f"minimum timed seconds per batch size (default: {_DEFAULTS.min_seconds:g})",
    )
    p.add_argument(
        "--warmup",
        type=nonneg_int,
        default=_DEFAULTS.warmup,
        help=f"untimed warm-up calls per batch size (default: {_DEFAULTS.warmup})",
    )
    p.add_argument(
        "--torch-device",
        type=_names,
        default=list(_DEFAULTS.torch_devices),
        metavar="DEV[,DEV]",
        help="devices for checkpoint folders: cpu (fp32), cuda (fp32 and fp16); e.g. cpu,cuda "
        f"(default: {_csv(_DEFAULTS.torch_devices)})",
    )
    p.add_argument("--providers", type=_names, help="ONNX Runtime execution providers, e.g. cuda,cpu")
    p.add_argument("--decoder", default=_DEFAULTS.decoder, choices=DECODERS)
    p.add_argument(
        "--max-memory",
        type=memory_size,
        metavar="SIZE",
        help="bound each worker's memory while it scores files, e.g. 150MB (default: decode threads may "
        "hold a quarter of the memory available); its peak RSS is in the result",
    )
    width, height = _DEFAULTS.input_size
    p.add_argument(
        "--input-size",
        type=size_wxh,
        default=_DEFAULTS.input_size,
        metavar="WxH",
        help=f"synthetic timing image when no dataset is given (default: {width}x{height})",
    )
    p.add_argument("--ablation", help="a training run's summary.json: copy its distilled-vs-alone metrics in")
    p.add_argument("--timeout", type=positive_float, help="seconds allowed per artifact worker (default: no limit)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="debugging: run every artifact in this process (peak RSS and threads then interfere)",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="time artifacts even if their sha256 differs from the one their manifest recorded",
    )
    p.add_argument(
        "--allow-invalid", action="store_true", help="time artifacts whose manifest says they failed their parity gate"
    )
    p.add_argument("--quiet", action="store_true", help="no per-artifact progress lines")


def _progress_line(entry: dict[str, Any]) -> str:
    if entry.get("error"):
        return f"edgeiqa: {entry['label']}: FAILED: {entry['error']}"
    parts = []
    for lat in entry.get("latency", []):
        parts.append(
            f"b{lat['batch']} "
            + (f"p50 {lat['p50_ms']:.3g} ms {lat['throughput_ips']:.4g} img/s" if not lat.get("error") else "failed")
        )
    acc = entry.get("accuracy")
    if acc:
        parts.append(f"SRCC {acc['srcc']:.4f}")
    e2e = entry.get("end_to_end") or {}
    if e2e.get("failed"):  # left out of the accuracy: the console must say so, not only the JSON
        parts.append(
            f"{e2e['failed']} image(s) failed to decode and are left out of the accuracy "
            f"(first: {' '.join(str(e2e.get('first_error')).split())})"
        )
    elif entry.get("accuracy_note") and not acc:
        parts.append(f"no accuracy: {entry['accuracy_note']}")
    return f"edgeiqa: {entry['label']} [{entry.get('backend')} {entry.get('precision_used')}]: " + ", ".join(parts)


def bench_options_from_args(args: argparse.Namespace) -> BenchOptions:
    """:class:`BenchOptions` from parsed ``bench`` arguments."""
    return BenchOptions(
        batches=tuple(args.batch),
        min_seconds=args.min_seconds,
        warmup=args.warmup,
        isolate=not args.in_process,
        threads=args.threads,
        torch_devices=tuple(args.torch_device),
        providers=args.providers,
        decoder=args.decoder,
        max_memory=args.max_memory,
        input_size=tuple(args.input_size),
        timeout=args.timeout,
        verify=not args.no_verify,
        allow_invalid=args.allow_invalid,
    )


def _bench_inputs(args: argparse.Namespace) -> list[str]:
    """Every artifact, its manifest and the dataset: --out may be none of them."""
    from edgeiqa.runtime.manifest import manifest_path_for

    artifacts = [a.rsplit("@", 1)[0] if "@" in a and not Path(a).exists() else a for a in args.artifacts]
    return artifacts + [str(manifest_path_for(a)) for a in artifacts] + ([args.data] if args.data else [])


def run_bench(args: argparse.Namespace) -> int:
    """Benchmark, write the result file; 0 when every artifact ran, 1 when some failed."""
    from edgeiqa.bench.ablation import load_ablation
    from edgeiqa.bench.harness import bench_artifacts

    check_output_file(args.out, inputs=_bench_inputs(args), kind=BENCH_JSON, overwrite=args.overwrite)  # before timing
    data = None
    if args.data:
        options = {"mos_range": args.mos_range} if args.mos_range else {}
        data = DatasetSpec(args.data, args.dataset, args.split, options, args.limit)
    ablation = load_ablation(args.ablation) if args.ablation else None
    report = None if args.quiet else (lambda entry: print(_progress_line(entry), file=sys.stderr, flush=True))
    result = bench_artifacts(
        args.artifacts,
        data,
        bench_options_from_args(args),
        device_name=args.device_name,
        ablation=ablation,
        on_result=report,
    )
    path = result.write(args.out)
    failed = len(result.failures)
    print(
        f"wrote {path}: {len(result.results) - failed} artifact(s) benchmarked on {result.device_name}"
        + (f", {failed} failed" if failed else "")
    )
    return 1 if failed else 0
