"""``edgeiqa data``: make datasets offline (the embedded KADIS-style set, graded sets at native resolution)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeiqa.argtypes import nonneg_int, positive_int
from edgeiqa.errors import ConfigError


def _csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from edgeiqa.data.synth import synthesize

    summary = synthesize(
        Path(args.out),
        seed=args.seed,
        pristine_dir=Path(args.pristine) if args.pristine else None,
        max_side=args.max_side,
        types=_csv_list(args.types) if args.types else None,
        max_sources=args.max_sources,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(
        f"wrote {summary.n_images} images from {summary.n_sources} sources x {len(summary.types)} distortion "
        f"types to {summary.csv_path} in {summary.seconds:.1f} s"
    )
    return 0


def _cmd_data_graded(args: argparse.Namespace) -> int:
    from edgeiqa.data.graded import check_items, jittered_levels, make_graded_set, split_sources
    from edgeiqa.runtime.batch import expand_paths

    photos = [Path(p) for p in expand_paths(args.pristine)] if args.pristine else []
    if args.train_half:
        photos += split_sources([Path(p) for p in expand_paths([args.train_half])])[0]
    if args.check_half:
        photos += split_sources([Path(p) for p in expand_paths([args.check_half])])[1]
    if not photos:
        raise ConfigError("data graded: no photos given (PRISTINE..., --train-half or --check-half)")
    items = check_items if args.ladder == "check" else (lambda source: jittered_levels(source, args.seed))
    csv_path = make_graded_set(photos, Path(args.out), items, seed=args.seed, progress=not args.quiet)
    print(f"wrote the graded set of {len(photos)} photos to {csv_path}")
    return 0


def add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="datasets: generate the embedded default set")
    data_sub = data.add_subparsers(dest="data_command", metavar="synth|graded", required=True)
    synth = data_sub.add_parser("synth", help="generate the KADIS-style embedded dataset (offline, seeded)")
    synth.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    synth.add_argument("--seed", type=nonneg_int, default=0)
    synth.add_argument("--pristine", help="folder of pristine photos (default: photos shipped in scikit-image/learn)")
    synth.add_argument("--max-side", type=positive_int, default=384, help="long side of each pristine source in px")
    synth.add_argument("--types", help="comma-separated distortion types (default: all)")
    synth.add_argument("--max-sources", type=positive_int, default=None, help="at most this many sources (>= 3)")
    synth.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(handler=_cmd_data_synth)
    graded = data_sub.add_parser("graded", help="graded distortions at native resolution (UHD check, ranking set)")
    graded.add_argument("pristine", nargs="*", help="photos or folders of pristine photos, all of them used")
    graded.add_argument("--out", required=True, help="output folder (resumed when it holds part of the set)")
    graded.add_argument(
        "--ladder",
        choices=("check", "train"),
        default="check",
        help="check: fixed severities; train: jittered severities plus more types",
    )
    graded.add_argument("--train-half", metavar="DIR", help="also the training half of DIR's sorted photos")
    graded.add_argument(
        "--check-half",
        metavar="DIR",
        help="also the other half of DIR's photos (a check set never shares a photo with training)",
    )
    graded.add_argument("--seed", type=nonneg_int, default=0)
    graded.add_argument("--quiet", action="store_true", help="no progress bar")
    graded.set_defaults(handler=_cmd_data_graded)
