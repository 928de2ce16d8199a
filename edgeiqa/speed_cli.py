"""``edgeiqa speed``: file-to-score images/s of an artifact against pure decoding and a naive torch pipeline,
at the memory budget the run is given (the same flags as ``edgeiqa predict``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgeiqa.argtypes import positive_int
from edgeiqa.bench.spec import DECODERS, DEFAULT_DECODER
from edgeiqa.errors import EdgeIQAError


def _cmd_speed(args: argparse.Namespace) -> int:
    import json

    from edgeiqa.bench.e2e_speed import make_uhd_jpegs, measure_speed, speed_artifact_info
    from edgeiqa.predict_cli import frame_budget
    from edgeiqa.runtime.batch import expand_paths

    images = [Path(p) for p in expand_paths(args.images)]
    if args.make_4k:
        images = make_uhd_jpegs(images, Path(args.make_4k))
    if not images:
        raise EdgeIQAError(f"no image files under {args.images}")
    if args.decode_paths:
        return _speed_decode_paths(args, images)
    result = measure_speed(
        Path(args.artifact),
        images,
        Path(args.checkpoint) if args.checkpoint else None,
        workers=args.workers,
        batch_size=args.batch,
        repeats=args.repeats,
        decoder=args.decoder,
        budget=frame_budget(args),
    )
    record = {
        **result.to_dict(),
        "decoder": args.decoder,
        "batch": args.batch,
        "memory": frame_budget(args) or "auto",
        "artifact": speed_artifact_info(Path(args.artifact)),
    }
    if args.out:
        from edgeiqa.bench.device_info import collect_device_info
        from edgeiqa.fileio import atomic_write_text

        # Rates differ between CPUs of the same core count (an AVX512 Intel and an EPYC VM differed by 1.4x
        # on the same files): a figure is only comparable with the machine it names.
        record["device"] = collect_device_info()
        atomic_write_text(Path(args.out), json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "device"}, indent=1))
    if result.disturbed:
        print(
            f"edgeiqa: warning: the runtime passes differ by {result.runtime_spread:.0%} "
            "(another process had the cores?): rerun quiet before quoting this figure",
            file=sys.stderr,
        )
    return 0


def _speed_decode_paths(args: argparse.Namespace, images: list[Path]) -> int:
    import json

    from edgeiqa.bench.decode_paths import measure_decode_paths
    from edgeiqa.bench.device_info import collect_device_info, cpu_model
    from edgeiqa.bench.e2e_speed import speed_artifact_info
    from edgeiqa.fileio import atomic_write_text

    record = {
        "what": "Pure full decode, today's decode path and the jpeg_regions path (DCT-scaled whole view + "
        "region-decoded native fragments) on the same files, each setting in its own process: rates "
        "(images/s, median of the passes), per-stage ms (median, one thread), peak RSS (VmHWM) and the "
        "rank agreement of the scores of the two paths",
        "cpu_model": cpu_model(),
        "artifact": speed_artifact_info(Path(args.artifact)),
        **measure_decode_paths(
            Path(args.artifact), images, workers=args.workers, repeats=args.repeats, allow_invalid=args.allow_invalid
        ),
    }
    if args.out:
        record["device"] = collect_device_info()
        atomic_write_text(Path(args.out), json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "device"}, indent=1))
    return 0


def add_speed(sub: argparse._SubParsersAction) -> None:
    from edgeiqa.predict_cli import add_budget_flags

    speed = sub.add_parser("speed", help="end-to-end file->score speed vs pure decode and a naive torch pipeline")
    speed.add_argument("artifact", help="exported artifact (manifest beside it)")
    speed.add_argument("images", nargs="+", help="image files or folders")
    speed.add_argument("--checkpoint", help="calibrated student checkpoint for the naive torch pipeline")
    speed.add_argument("--make-4k", metavar="DIR", help="first upscale the images to 3840x2160 JPEGs (q90) in DIR")
    speed.add_argument("--workers", type=positive_int, default=2)
    add_budget_flags(speed)
    speed.add_argument(
        "--decode-paths",
        action="store_true",
        help="instead: pure full decode, today's decode and the jpeg_regions one side by side, each in its "
        "own process (rates, per-stage ms, peak RSS, score agreement)",
    )
    speed.add_argument(
        "--allow-invalid", action="store_true", help="time an artifact whose manifest says it failed its parity gate"
    )
    speed.add_argument("--batch", type=positive_int, default=8)
    speed.add_argument(
        "--decoder",
        choices=DECODERS,
        default=DEFAULT_DECODER,
        help="JPEG decoder of the runtime and of the decode figure (simplejpeg: the fast-jpeg extra)",
    )
    speed.add_argument("--repeats", type=positive_int, default=3)
    speed.add_argument("--out", metavar="FILE", help="also write the result, with this machine's description, as JSON")
    speed.set_defaults(handler=_cmd_speed)
