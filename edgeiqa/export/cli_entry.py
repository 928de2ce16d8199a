"""Argument parsers and handlers for ``edgeiqa export`` and ``edgeiqa build-engine``.

Each command is an ``add_*_arguments(parser)`` + ``run_*(args) -> int`` pair for :mod:`edgeiqa.cli`
to wire in. Exit codes: 0 artifact written and valid; 1 artifact written but its parity gate failed
(the manifest says ``valid: false``); user errors raise :class:`~edgeiqa.errors.EdgeIQAError`, which
the CLI turns into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from edgeiqa.argtypes import check_output_dir, check_output_file, nonneg_float, nonneg_int, positive_float, positive_int
from edgeiqa.errors import ConfigError
from edgeiqa.export.formats import FORMATS, PRECISION_CLASS
from edgeiqa.export.options import (
    CALIBRATION_METHODS,
    DEFAULT_CALIBRATION_SPLIT,
    NNCF_BIAS_CORRECTIONS,
    ExportOptions,
    Int8Settings,
    Tolerances,
)
from edgeiqa.export.tensorrt_plan import ENGINE_PRECISIONS, ProfileShapes

if TYPE_CHECKING:
    from edgeiqa.export.images import ImageSet

# Every export default below is ExportOptions' own (its INT8 settings and parity limits included): the
# CLI, the API and an experiment's export: section agree by construction (tests/test_defaults_agree.py).
_DEFAULTS = ExportOptions()
_INT8, _TOL = _DEFAULTS.int8, _DEFAULTS.tolerances


def _percentile(text: str) -> float:
    value = positive_float(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a percentile in (0, 100], got {text!r}")
    return value


def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _add_image_set(
    parser: argparse.ArgumentParser,
    flag: str,
    what: str,
    split_default: str | None,
    splits: list[str],
    n_default: int | None,
) -> None:
    parser.add_argument(
        f"--{flag}", metavar="DATA", help=f"{what}: a CSV (path,mos[,split]), a dataset root or a folder of images"
    )
    parser.add_argument(
        f"--{flag}-dataset", metavar="NAME", help="dataset loader for it (livec, koniq10k, uhdiqa, spaq, kadid10k, csv)"
    )
    parser.add_argument(
        f"--{flag}-split",
        default=split_default,
        choices=splits,
        help=f"split to take (default: {split_default or 'all'})",
    )
    parser.add_argument(
        f"--{flag}-n",
        type=positive_int,
        default=n_default,
        help=f"at most this many images (default: {n_default or 'all'})",
    )


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """``edgeiqa export CKPT --format F --precision P [--calib ...] [--val CSV] --out DIR``."""
    parser.add_argument(
        "checkpoint",
        help="checkpoint folder (state.json + model.safetensors), a stage/run folder, or a bundled model's name "
        "(edgeiqa models; without --calib its INT8 calibration uses the photos the install ships)",
    )
    parser.add_argument("--format", required=True, choices=list(FORMATS))
    parser.add_argument(
        "--precision",
        required=True,
        choices=list(PRECISION_CLASS),
        help="; ".join(f"{f.name}: {', '.join(f.precisions)}" for f in FORMATS.values()),
    )
    parser.add_argument("--out", required=True, help="output folder")
    _add_image_set(
        parser,
        "calib",
        "INT8 calibration images (never the test split)",
        DEFAULT_CALIBRATION_SPLIT,
        ["train", "val"],
        _INT8.n_images,
    )
    parser.add_argument("--calib-method", default=_INT8.method, choices=CALIBRATION_METHODS)
    parser.add_argument(
        "--calib-bins",
        type=positive_int,
        help="histogram bins (default: "
        + ", ".join(f"{m}: {Int8Settings(method=m).bins}" for m in ("entropy", "percentile"))
        + ")",
    )
    parser.add_argument(
        "--calib-percentile",
        type=_percentile,
        default=_INT8.percentile,
        help=f"in (0, 100] (default: {_INT8.percentile})",
    )
    parser.add_argument(
        "--nncf-bias-correction",
        default=_INT8.nncf_bias_correction,
        choices=NNCF_BIAS_CORRECTIONS,
        help="OpenVINO INT8: NNCF's full bias correction (measured more faithful) or its fast one "
        f"(default: {_INT8.nncf_bias_correction})",
    )
    _add_image_set(
        parser, "val", "parity-gate images (+ MOS when the source has it)", None, ["train", "val", "test"], 200
    )
    parser.add_argument(
        "--keep-fp",
        default=",".join(_DEFAULTS.keep_fp),
        help="comma-separated parts kept in float in FP16/INT8 (head, variance, first_conv, a module "
        "path, a node name); '' for none; the score calibration always is. Add auto[:budget] "
        "(e.g. head,variance,auto:0.99) to keep, for INT8, the fewest most sensitive layers in float "
        "until SRCC(int8, fp32) >= budget (default 0.99)",
    )
    parser.add_argument(
        "--tol-fp32", type=nonneg_float, default=_TOL.fp32_max_abs, help="max |score difference| for FP32"
    )
    parser.add_argument("--tol-fp16", type=nonneg_float, default=_TOL.fp16_delta_srcc, help="max SRCC loss for FP16")
    parser.add_argument("--tol-int8", type=nonneg_float, default=_TOL.int8_delta_srcc, help="max SRCC loss for INT8")
    for klass in ("fp32", "fp16", "int8"):
        default = getattr(_TOL, f"{klass}_min_agreement")
        parser.add_argument(
            f"--min-agreement-{klass}",
            type=float,
            default=default,
            help=f"min rank agreement SRCC(artifact, torch) for {klass.upper()} (default: {default})",
        )
    parser.add_argument("--opset", type=positive_int, default=_DEFAULTS.opset)
    parser.add_argument("--no-slim", action="store_true", help="skip onnxslim")
    parser.add_argument(
        "--seed", type=nonneg_int, default=_INT8.seed, help="which images are drawn when a split has more than -n"
    )


def export_options_from_args(args: argparse.Namespace) -> ExportOptions:
    """:class:`ExportOptions` from parsed ``export`` arguments."""
    int8 = Int8Settings(
        method=args.calib_method,
        n_images=args.calib_n,
        num_bins=args.calib_bins,
        percentile=args.calib_percentile,
        seed=args.seed,
        nncf_bias_correction=args.nncf_bias_correction,
    )
    tolerances = Tolerances(
        fp32_max_abs=args.tol_fp32,
        fp16_delta_srcc=args.tol_fp16,
        int8_delta_srcc=args.tol_int8,
        fp32_min_agreement=args.min_agreement_fp32,
        fp16_min_agreement=args.min_agreement_fp16,
        int8_min_agreement=args.min_agreement_int8,
    )
    return ExportOptions(
        opset=args.opset, slim=not args.no_slim, keep_fp=_csv_list(args.keep_fp), int8=int8, tolerances=tolerances
    )


def _image_set(args: argparse.Namespace, flag: str, calibration: bool) -> ImageSet | None:
    from edgeiqa.export.images import load_image_set

    spec = getattr(args, flag)
    if not spec:
        return None
    return load_image_set(
        spec,
        dataset=getattr(args, f"{flag}_dataset"),
        split=getattr(args, f"{flag}_split"),
        n=getattr(args, f"{flag}_n"),
        seed=getattr(args, "seed", 0),
        calibration=calibration,
    )


def run_export(args: argparse.Namespace) -> int:
    """Export, gate, write the manifest; print one summary line."""
    from edgeiqa.export.exporter import export_artifact

    check_output_dir(args.out, inputs=[args.checkpoint])  # before minutes of export, not after
    options = export_options_from_args(args)
    result = export_artifact(
        args.checkpoint,
        args.format,
        args.precision,
        args.out,
        calib=_image_set(args, "calib", True),
        val=_image_set(args, "val", False),
        options=options,
        raise_on_failure=False,
    )
    print(result.summary())
    if result.failed:
        print(
            f"edgeiqa: parity gate failed; {result.manifest_path.name} says valid=false "
            "(--allow-invalid runs it anyway)",
            file=sys.stderr,
        )
        return 1
    return 0


def add_build_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``edgeiqa build-engine ONNX --precision fp16|int8 [--calib DATA] [--cache FILE] [--val DATA]``."""
    parser.add_argument("onnx", help="an ONNX file written by 'edgeiqa export' (its manifest beside it)")
    parser.add_argument("--precision", required=True, choices=ENGINE_PRECISIONS)
    parser.add_argument("--out", help="engine path (default: the ONNX path with .engine)")
    _add_image_set(
        parser,
        "calib",
        "TensorRT 10 implicit INT8 calibration images (FP32 ONNX only)",
        DEFAULT_CALIBRATION_SPLIT,
        ["train", "val"],
        _INT8.n_images,
    )
    parser.add_argument("--cache", help="INT8 calibration cache (read if present, else written)")
    _add_image_set(
        parser, "val", "images to compare the engine against the ONNX file", None, ["train", "val", "test"], 64
    )
    parser.add_argument("--batch", default="1,8,16", help="min,opt,max batch of the optimisation profile")
    parser.add_argument(
        "--max-side-factor",
        type=positive_float,
        default=_DEFAULTS.max_side_factor,
        help=f"largest image side, in working sizes (default: {_DEFAULTS.max_side_factor:g})",
    )
    parser.add_argument("--workspace-mb", type=positive_int, default=1024)
    parser.add_argument("--plan-only", action="store_true", help="print the plan and trtexec line; build nothing")
    parser.add_argument(
        "--trt-major", type=positive_int, help="TensorRT major version to plan for (default: the installed one)"
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="build even if the ONNX file's sha256 differs from its manifest (not recommended)",
    )


def _profile(args: argparse.Namespace, onnx: Path) -> ProfileShapes:
    from edgeiqa.export.tensorrt import contract_for
    from edgeiqa.export.tensorrt_plan import default_profile

    try:
        batch = tuple(int(b) for b in _csv_list(args.batch))
    except ValueError:
        batch = ()
    if len(batch) != 3:
        raise ConfigError(f"--batch needs min,opt,max (three numbers), got {args.batch!r}")
    return default_profile(contract_for(onnx, None), batch, args.max_side_factor)


def run_build_engine(args: argparse.Namespace) -> int:
    """Plan (and unless ``--plan-only``, build) an engine; write its manifest; gate it against the ONNX."""
    from edgeiqa.export import tensorrt as trt_export
    from edgeiqa.runtime.manifest import manifest_path_for, read_manifest, verify_artifact_sha256

    onnx = Path(args.onnx)
    out = Path(args.out) if args.out else onnx.with_suffix(".engine")
    if args.out:  # the default is the engine's own name; a user's --out may not be the ONNX or its manifest
        check_output_file(out, inputs=[onnx, manifest_path_for(onnx)], artifact=True)
    profile = _profile(args, onnx)  # reads the manifest: a missing one is reported here
    if not args.no_verify:  # an engine built from a tampered ONNX would inherit the manifest's good name
        verify_artifact_sha256(read_manifest(manifest_path_for(onnx)), onnx, manifest_path_for(onnx))
    if args.plan_only:
        major = args.trt_major or trt_export.trt_major_version(trt_export.import_tensorrt())
        plan = trt_export.plan_for_onnx(
            onnx,
            args.precision,
            out,
            trt_major=major,
            profile=profile,
            cache=args.cache,
            workspace_mb=args.workspace_mb,
        )
        print(json.dumps(plan.to_dict(), indent=2))
        return 0
    calib = _image_set(args, "calib", True)
    plan = trt_export.build_engine(
        onnx,
        args.precision,
        out,
        calib=None if calib is None else list(calib.paths),
        cache=args.cache,
        profile=profile,
        workspace_mb=args.workspace_mb,
    )
    manifest_path = trt_export.write_engine_manifest(plan, _image_set(args, "val", False))
    manifest = read_manifest(manifest_path)
    print(f"manifest: {manifest_path} (parity: {manifest.parity_record.reason})")
    return 0 if manifest.valid else 1
