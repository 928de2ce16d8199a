"""The ``edgeiqa`` command line: one sub-command per job, each importing only what it needs.

Every :class:`~edgeiqa.errors.EdgeIQAError` becomes one line on stderr and exit code 2 (no traceback),
because the users are engineers scripting batch jobs on devices: the line must say what to fix.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from edgeiqa.argtypes import check_output_dir, nonneg_int, positive_int, size_wxh
from edgeiqa.bench.spec import DECODERS, DEFAULT_DECODER
from edgeiqa.errors import ConfigError, EdgeIQAError

Handler = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``edgeiqa: error: <command>: <what>`` line and exit code 2:
    the same shape as every other user error, so a script can grep for it (``--help`` shows usage)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog[len("edgeiqa") :].strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"edgeiqa: error: {where}{' '.join(message.split())} (see {self.prog} --help)\n")


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


def _add_data(sub: argparse._SubParsersAction) -> None:
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


def _add_predict(sub: argparse._SubParsersAction) -> None:
    from edgeiqa.predict_cli import add_predict_arguments, run_predict

    _delegate(
        sub,
        "predict",
        "score images with an artifact or a bundled model (torch-free runtime)",
        add_predict_arguments,
        run_predict,
    )


def _load_experiment(args: argparse.Namespace, validate: Callable[..., None] | None = None):
    """The config with ``--out``/``--seed`` applied, validated (``validate``: the whole-run check of
    ``edgeiqa run``; default: what training needs) with the file's name, before any folder or model exists."""
    from edgeiqa.experiment import ExperimentConfig, validate_training

    cfg = ExperimentConfig.load(args.config)
    if args.out:
        cfg.out = args.out
    if args.seed is not None:
        cfg.seed = args.seed
    (validate or validate_training)(cfg, args.config)
    return cfg


def _cmd_train_teacher(args: argparse.Namespace) -> int:
    from edgeiqa.distill.api import run_teacher

    result = run_teacher(_load_experiment(args), resume=not args.restart, progress=not args.quiet)
    best = "none" if result.best_val_srcc is None else f"{result.best_val_srcc:.4f}"
    print(f"teacher: best val SRCC {best} after {result.epochs} epoch(s), {result.seconds:.0f} s")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    from edgeiqa.distill.api import parse_stages, run_distill

    result = run_distill(
        _load_experiment(args),
        parse_stages(args.stages),
        student_only=args.student_only,
        resume=not args.restart,
        progress=not args.quiet,
    )
    name = "student_only" if args.student_only else "student"
    for key, folder in ((name, result.final), ("student_qat", result.qat_final)):
        metrics = result.summary.get(key)
        if metrics and folder:
            print(
                f"{key}: {result.summary['split']} SRCC {metrics['srcc']:.4f} PLCC {metrics['plcc']:.4f} "
                f"(n={metrics['n']}) -> {folder}"
            )
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from edgeiqa.distill.ridge_floor import ridge_floor

    cfg = _load_experiment(args)
    result = ridge_floor(cfg, backbone=args.backbone, progress=not args.quiet)
    low, high = result["srcc_ci95"]
    print(
        f"ridge floor ({args.backbone}): {result['split']} SRCC {result['srcc']:.4f} [{low:.3f}, {high:.3f}] "
        f"PLCC {result['plcc']:.4f} (n={result['n']}) -> {cfg.out}/baseline_ridge.json"
    )
    return 0


def _add_training(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", required=True, help="experiment YAML (see configs/)")
    common.add_argument("--out", help="override the config's output folder")
    common.add_argument("--seed", type=nonneg_int, help="override the config's seed")
    common.add_argument("--restart", action="store_true", help="start the stage(s) over instead of resuming")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    teacher = sub.add_parser("train-teacher", parents=[common], help="train the EIQANet teacher")
    teacher.set_defaults(handler=_cmd_train_teacher)
    distill = sub.add_parser("distill", parents=[common], help="pre-train, fine-tune and calibrate the student")
    distill.add_argument(
        "--stages",
        help="comma-separated subset of pretrain,finetune,calibrate,qat (default: every "
        "enabled stage; qat, quantization-aware INT8 training, needs student.qat.enabled: true)",
    )
    distill.add_argument(
        "--student-only", action="store_true", help="train the same student on labels alone (the ablation baseline)"
    )
    distill.set_defaults(handler=_cmd_distill)
    baseline = sub.add_parser(
        "baseline", parents=[common], help="the frozen-ImageNet-feature + ridge floor on the experiment's own split"
    )
    baseline.add_argument("--backbone", default="tf_efficientnet_lite0", help="timm backbone (frozen, pretrained)")
    baseline.set_defaults(handler=_cmd_baseline)


def _delegate(
    sub: argparse._SubParsersAction,
    name: str,
    help_text: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    handler: Handler,
) -> None:
    """A sub-command whose arguments and handler live in the subpackage that owns the job."""
    parser = sub.add_parser(name, help=help_text)
    add_arguments(parser)
    parser.set_defaults(handler=handler)


def _add_benchmarks(sub: argparse._SubParsersAction) -> None:
    from edgeiqa.bench.cli_entry import add_bench_arguments, run_bench
    from edgeiqa.report.cli_entry import add_report_arguments, run_report

    _delegate(
        sub, "bench", "time, size and score artifacts on this device (one process each)", add_bench_arguments, run_bench
    )
    _delegate(
        sub, "report", "merge benchmark results into report.md/.html and pareto.png", add_report_arguments, run_report
    )


def _add_export(sub: argparse._SubParsersAction) -> None:
    from edgeiqa.export.cli_entry import add_build_engine_arguments, add_export_arguments, run_build_engine, run_export

    _delegate(
        sub,
        "export",
        "checkpoint -> ONNX/OpenVINO/Core ML/TensorRT artifact, parity-gated",
        add_export_arguments,
        run_export,
    )
    _delegate(
        sub,
        "build-engine",
        "build a TensorRT engine from an exported ONNX (on the target)",
        add_build_engine_arguments,
        run_build_engine,
    )


def _print_result(what: str, result) -> None:
    steps = ", ".join(f"{name} {sec:.0f} s" for name, sec in result.steps.items())
    print(f"{what} finished in {result.seconds:.0f} s ({steps})")
    split = result.summary.get("split", "test")
    for name in ("teacher", "student", "student_only"):
        metrics = result.summary.get(name)
        if metrics:
            print(f"  {name:12s} {split} SRCC {metrics['srcc']:.4f}  PLCC {metrics['plcc']:.4f}")
    print(f"report: {result.report}")


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from edgeiqa.quickstart import run_quickstart

    _print_result("quickstart", run_quickstart(Path(args.out), seed=args.seed, quiet=args.quiet))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from edgeiqa.pipeline import run_experiment, validate_run

    cfg = _load_experiment(args, validate_run)
    check_output_dir(cfg.out, inputs=[args.config])
    _print_result(cfg.name, run_experiment(cfg, quiet=args.quiet))
    return 0


def _add_run(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="one experiment YAML end to end: teacher, student, exports, benchmarks, report")
    run.add_argument("--config", required=True, help="experiment YAML with export: and bench: sections (see configs/)")
    run.add_argument("--out", help="override the config's output folder (re-running resumes)")
    run.add_argument("--seed", type=nonneg_int, help="override the config's seed")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.set_defaults(handler=_cmd_run)


def _add_quickstart(sub: argparse._SubParsersAction) -> None:
    quick = sub.add_parser("quickstart", help="the main job: data, teacher, student, exports, benchmarks, report")
    quick.add_argument("--out", default="runs/quickstart", help="output folder (re-running resumes)")
    quick.add_argument("--seed", type=nonneg_int, default=0)
    quick.add_argument("--quiet", action="store_true", help="no progress output")
    quick.set_defaults(handler=_cmd_quickstart)


def _cmd_info(args: argparse.Namespace) -> int:
    from edgeiqa.models import list_models
    from edgeiqa.models.info import format_info, model_info

    if args.model == "list":
        print("\n".join(list_models()))
        return 0
    width, height = args.input
    print(format_info(model_info(args.model, (height, width))))
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser("info", help="params, GMACs and views of a registered model ('list' lists them)")
    info.add_argument("model", help="a registered model name, or 'list'")
    info.add_argument(
        "--input",
        type=size_wxh,
        default="3840x2160",
        help="image size WIDTHxHEIGHT the cost is counted for (default: 3840x2160)",
    )
    info.set_defaults(handler=_cmd_info)


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


def _add_speed(sub: argparse._SubParsersAction) -> None:
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


def _add_label(sub: argparse._SubParsersAction) -> None:
    from edgeiqa.distill.label_cli import add_label

    add_label(sub)


def _add_models(sub: argparse._SubParsersAction) -> None:
    from edgeiqa.runtime.zoo_cli import add_models_arguments, run_models

    _delegate(
        sub, "models", "the models bundled with this install (NAME: its whole card)", add_models_arguments, run_models
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="edgeiqa", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    _add_quickstart(sub)
    _add_run(sub)
    _add_data(sub)
    _add_info(sub)
    _add_training(sub)
    _add_export(sub)
    _add_predict(sub)
    _add_models(sub)
    _add_benchmarks(sub)
    _add_speed(sub)
    _add_label(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, its one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    if extras:  # argparse would report these from the top-level parser, without the sub-command's name
        command = " ".join(c for c in (getattr(args, "command", None), getattr(args, "data_command", None)) if c)
        print(
            f"edgeiqa: error: {command + ': ' if command else ''}unrecognized arguments: {' '.join(extras)} "
            f"(see edgeiqa {command + ' ' if command else ''}--help)",
            file=sys.stderr,
        )
        return 2
    if args.version:
        from edgeiqa import __version__

        print(__version__)
        return 0
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except EdgeIQAError as exc:
        print(f"edgeiqa: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path the user gave cannot be read or written: theirs to fix, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"edgeiqa: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeiqa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
