"""``edgeiqa predict``: score images, lists of images or a list on stdin with an exported artifact.

Inputs stream (:mod:`edgeiqa.runtime.inputs`) and rows are written as they are scored
(:mod:`edgeiqa.runtime.stream`): the first score comes out before a long list is read, a killed run
keeps its rows in ``<out>.partial``, and running the same command again resumes.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from edgeiqa.argtypes import SCORES_CSV, check_output_file, positive_int
from edgeiqa.bench.spec import DECODERS, DEFAULT_DECODER
from edgeiqa.errors import DataError


class NoImagesError(DataError):
    """The input named no image at all: a batch job that scores nothing must not look like a success."""

    exit_code = 1


def frame_budget(args: argparse.Namespace) -> dict:
    """The Predictor's memory options from --max-memory / --one-frame / --unbounded-frames."""
    from edgeiqa.runtime.frames import DEFAULT_BUDGET_PIXELS

    if args.max_memory:
        return {"max_memory": args.max_memory}
    if args.one_frame:
        return {"max_decoded_pixels": DEFAULT_BUDGET_PIXELS}
    return {"max_decoded_pixels": None} if args.unbounded_frames else {}


def add_budget_flags(parser: argparse.ArgumentParser) -> None:
    from edgeiqa.runtime.frames import memory_size

    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--max-memory",
        type=memory_size,
        metavar="SIZE",
        help="bound the process's memory, e.g. 150MB: decode threads get what it does not hold yet "
        "(default: they may hold a quarter of the memory available)",
    )
    group.add_argument("--one-frame", action="store_true", help="one decoded 4K frame in flight (serial 4K decoding)")
    group.add_argument(
        "--unbounded-frames", action="store_true", help="no bound: every decode thread holds a decoded frame"
    )


def add_predict_arguments(predict: argparse.ArgumentParser) -> None:
    predict.usage = "edgeiqa predict [options] [MODEL] IMAGE [IMAGE ...]"
    predict.add_argument(
        "paths",
        nargs="*",
        metavar="IMAGE",
        help="optional model first: an artifact (its manifest <artifact>.json beside it), a checkpoint folder "
        "or a bundled model's name (edgeiqa models); without one, the bundled default scores. Then image "
        "files, folders (searched recursively), globs, or - for a list on stdin",
    )
    predict.add_argument(
        "--list",
        action="append",
        default=[],
        metavar="FILE",
        help="a file listing images, one per line or a CSV with a path column (relative to the list's folder); "
        "- reads stdin; repeatable",
    )
    predict.add_argument("--limit", type=positive_int, help="score at most this many images (stops reading there)")
    predict.add_argument(
        "--out", help="write the path,score,error CSV here (default: stdout); re-running resumes, skipping scored files"
    )
    predict.add_argument(
        "--overwrite", action="store_true", help="replace --out even if it is another kind of file; do not resume"
    )
    predict.add_argument(
        "--batch",
        type=positive_int,
        default=8,
        help="images per inference call (default: 8); mixed shapes are run one by one",
    )
    predict.add_argument(
        "--workers", type=positive_int, default=None, help="decode threads (default: the CPU count, at most 4)"
    )
    predict.add_argument("--backend", default=None, help="override the backend (e.g. openvino for an ONNX file)")
    predict.add_argument(
        "--max-pixels",
        type=positive_int,
        default=None,
        help="decompression-bomb limit in pixels per image for this run (default: the manifest's)",
    )
    add_budget_flags(predict)
    predict.add_argument(
        "--decoder",
        default=DEFAULT_DECODER,
        choices=DECODERS,
        help="JPEG decoder (simplejpeg: libjpeg-turbo, the fast-jpeg extra; auto: the one measured "
        f"faster; default: {DEFAULT_DECODER})",
    )
    predict.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the integrity check: run even if the artifact or its manifest differs from the export",
    )
    predict.add_argument(
        "--allow-invalid", action="store_true", help="run an artifact whose manifest says it failed its parity gate"
    )
    predict.add_argument("--quiet", action="store_true", help="no progress output")


def _inputs(args: argparse.Namespace) -> list[str]:
    """What the command reads, so --out can never be one of them."""
    from edgeiqa.runtime.manifest import manifest_path_for

    artifact = Path(args.artifact)
    found = [str(artifact), str(manifest_path_for(artifact))]
    if artifact.suffix == ".json":
        found.append(str(artifact.with_suffix("")))
    if artifact.suffix == ".xml":  # OpenVINO keeps the weights beside the graph
        found.append(str(artifact.with_suffix(".bin")))
    return found + [p for p in (*args.paths, *args.list) if p != "-"]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    from edgeiqa.runtime.predictor import current_source
    from edgeiqa.runtime.stream import one_line

    where = current_source()
    prefix = f"{one_line(where)}: " if where else ""
    print(f"edgeiqa: warning: {prefix}{' '.join(str(message).split())}", file=sys.stderr)


def run_predict(args: argparse.Namespace) -> int:
    """Score, write, summarise; 0 when every file scored, 1 when any failed or none was given."""
    from edgeiqa.runtime.inputs import InputStream
    from edgeiqa.runtime.predictor import Predictor
    from edgeiqa.runtime.zoo import bundled_run_line, split_model_argument

    # A lone model is allowed here: images may come from --list, and the no-images error below says what to add.
    args.artifact, args.paths = split_model_argument(args.paths, listed=True)
    if not args.paths and not args.list:
        raise NoImagesError("predict: give image files, folders, globs, --list FILE or - (a list on stdin)")
    out = None
    if args.out:  # before loading or scoring anything
        out = check_output_file(args.out, inputs=_inputs(args), kind=SCORES_CSV, overwrite=args.overwrite)
    stream = InputStream(args.paths, args.list, limit=args.limit)
    budget = frame_budget(args)
    with (
        Predictor.load(
            args.artifact,
            backend=args.backend,
            decoder=args.decoder,
            verify=not args.no_verify,
            allow_invalid=args.allow_invalid,
            max_pixels=args.max_pixels,
            **budget,
        ) as predictor,
        warnings.catch_warnings(),
    ):
        warnings.showwarning = _show_warning
        ran = bundled_run_line(args.artifact, predictor.info())  # a bundled model: say which ran, and on what
        if ran and not args.quiet:
            print(f"edgeiqa: {ran}", file=sys.stderr)
        return _score(args, predictor, stream, out)


def _score(args: argparse.Namespace, predictor, stream, out: Path | None) -> int:
    from edgeiqa.runtime.stream import ScoresFile, ScoresWriter, one_line, score_stream

    writer = ScoresFile(out, resume=not args.overwrite) if out else ScoresWriter(sys.stdout)
    with writer:
        counts = score_stream(
            predictor, stream, writer, batch_size=args.batch, workers=args.workers, progress=not args.quiet
        )
        for folder, reason in stream.unreadable:
            writer.row(folder, None, reason)
            print(f"edgeiqa: {one_line(folder)}: {reason}", file=sys.stderr)
    failed = counts.failed + len(stream.unreadable)
    if stream.summary():
        print(f"edgeiqa: {stream.summary()}", file=sys.stderr)
    if counts.scored + failed + counts.resumed == 0:
        if isinstance(writer, ScoresFile):
            writer.discard()
        raise NoImagesError(f"no images to score in {' '.join(args.paths + args.list)} ({stream.summary() or 'empty'})")
    if isinstance(writer, ScoresFile):
        writer.finish()
        resumed = f", {counts.resumed} kept from an earlier run" if counts.resumed else ""
        print(f"scored {counts.scored} file(s), {failed} failed{resumed} -> {out}", file=sys.stderr)
    return 0 if failed == 0 else 1
