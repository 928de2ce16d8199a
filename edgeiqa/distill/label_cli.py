"""``edgeiqa label``: a teacher's scores for a pool of images, as a resumable, shardable table.

    edgeiqa label --teacher RUN/teacher IMAGES... --out labels.csv [--shard i/n]
    edgeiqa label --merge shard0.csv shard1.csv ... --out labels.csv

IMAGES are files, folders, globs or graded sets (``graded.csv``). Re-running the same command resumes;
each of ``n`` processes (or machines, or torchrun ranks started with ``--shard $RANK/$WORLD_SIZE``)
labels its shard into its own table, and ``--merge`` joins them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeiqa.argtypes import LABEL_TABLE, check_output_file, positive_int


def add_label(sub: argparse._SubParsersAction) -> None:
    label = sub.add_parser("label", help="score an image pool with a teacher into a reusable label table")
    label.add_argument("images", nargs="*", help="images, folders, globs or graded.csv sets to label")
    label.add_argument("--teacher", help="a teacher folder (an ensemble or one checkpoint)")
    label.add_argument("--out", required=True, help="the label table (CSV: path,score,spread); resumed if present")
    label.add_argument("--shard", help="label only shard i of n (i/n, e.g. 0/4); merge the tables with --merge")
    label.add_argument("--merge", nargs="+", metavar="TABLE", help="join shard tables into --out instead")
    label.add_argument("--batch", type=positive_int, default=8, help="images per teacher forward pass")
    label.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    label.add_argument("--no-verify", action="store_true", help="skip the teacher weights' sha256 check")
    label.add_argument("--quiet", action="store_true", help="no progress bar")
    label.set_defaults(handler=_cmd_label)


def _cmd_label(args: argparse.Namespace) -> int:
    from edgeiqa.errors import ConfigError

    out = check_output_file(args.out, inputs=[*args.images, *(args.merge or ())], kind=LABEL_TABLE)
    if args.merge:
        from edgeiqa.distill.labels import merge_tables

        if args.images or args.teacher:
            raise ConfigError("label --merge takes tables only: drop the images and --teacher")
        print(f"merged {merge_tables([Path(t) for t in args.merge], out)} rows into {out}")
        return 0
    if not args.teacher or not args.images:
        raise ConfigError("label needs --teacher and at least one image, folder or graded.csv")
    return _label(args, out)


def _label(args: argparse.Namespace, out: Path) -> int:
    from edgeiqa.distill.ensemble import load_ensemble
    from edgeiqa.distill.labels import label_images, parse_shard, pool_paths
    from edgeiqa.errors import ConfigError

    shard = parse_shard(args.shard)
    paths = pool_paths(args.images)
    if not paths:
        raise ConfigError(f"no images found in {' '.join(args.images)}")
    teacher = load_ensemble(Path(args.teacher), verify=not args.no_verify)
    run = label_images(teacher, paths, out, shard, args.device, args.batch, progress=not args.quiet)
    print(
        f"labelled {run.written} image(s) into {run.table} ({run.skipped_done} already there, "
        f"{len(run.failed)} could not be read)"
    )
    return 1 if run.failed else 0
