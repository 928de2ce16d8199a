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

from edgeiqa.argtypes import check_output_dir, nonneg_int, size_wxh
from edgeiqa.errors import EdgeIQAError

Handler = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``edgeiqa: error: <command>: <what>`` line and exit code 2:
    the same shape as every other user error, so a script can grep for it (``--help`` shows usage)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog[len("edgeiqa") :].strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"edgeiqa: error: {where}{' '.join(message.split())} (see {self.prog} --help)\n")


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
    from edgeiqa.data.cli_entry import add_data
    from edgeiqa.speed_cli import add_speed

    add_data(sub)
    _add_info(sub)
    _add_training(sub)
    _add_export(sub)
    _add_predict(sub)
    _add_models(sub)
    _add_benchmarks(sub)
    add_speed(sub)
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
