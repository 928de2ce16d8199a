"""``edgeiqa run --config X.yaml``: one experiment file, from its data to a report.

Steps, in ``cfg.out`` (each resumable: re-running after an interruption reuses what is complete):

1. train the teacher (``teacher/``), distil the student (``student/``), train the student alone
   (``student_only/``), calibrate, evaluate (``summary.json``); a finished stage is skipped on a re-run;
2. export every artifact of ``export:`` from ``student/final`` (``int8-qat``: ``student/qat_final``) into
   ``artifacts/``, each parity-gated;
3. benchmark those that passed (and the torch checkpoint, ``bench.torch_checkpoint``), one process each,
   into ``results/<device>.json``;
4. merge the results into ``report/report.md``, ``report.html`` and ``pareto.png``.

Everything the run does is in the YAML (see ``configs/quickstart.yaml``); :func:`validate_run` checks all
of it, the export section's names against the export layer's tables included, before any work.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from edgeiqa.distill.config import ArtifactConfig, BenchConfig, ExperimentConfig, ExportConfig
from edgeiqa.errors import ConfigError, EdgeIQAError

if TYPE_CHECKING:
    from edgeiqa.benchmarks.spec import BenchOptions
    from edgeiqa.export.options import ExportOptions


@dataclass
class ExperimentResult:
    """Where everything went, how long each step took, which artifacts passed, the test-split summary."""

    out: Path
    report: Path
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


class Steps:
    """Times each step and says what is happening on stderr (stdout carries the final answer)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.seconds = quiet, {}
        self.started = time.perf_counter()

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.started:6.1f} s] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        value = fn()
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        return value


def export_problems(cfg: ExperimentConfig) -> list[str]:
    """The ``export:`` names the distill floor cannot check: formats, precisions, the INT8 method."""
    from edgeiqa.export.formats import FORMATS, QAT_PRECISION
    from edgeiqa.export.options import CALIBRATION_METHODS, NNCF_BIAS_CORRECTIONS, Tolerances

    problems = []
    for i, artifact in enumerate(cfg.export.artifacts):
        fmt = FORMATS.get(artifact.format)
        if fmt is None:
            problems.append(f"export.artifacts[{i}].format: unknown format {artifact.format!r}; "
                            f"known: {', '.join(FORMATS)}")
        elif artifact.precision not in fmt.precisions:
            problems.append(f"export.artifacts[{i}].precision: {artifact.format} has no precision "
                            f"{artifact.precision!r}; choose one of {', '.join(fmt.precisions)}")
        elif artifact.precision == QAT_PRECISION and not cfg.student.qat.enabled:
            problems.append(f"export.artifacts[{i}].precision: {QAT_PRECISION} exports the quantization-aware "
                            "student: set student.qat.enabled: true")
    method = cfg.export.calibration.method
    if method not in CALIBRATION_METHODS:
        problems.append(f"export.calibration.method: {method!r} is not one of {', '.join(CALIBRATION_METHODS)}")
    bias = cfg.export.calibration.nncf_bias_correction
    if bias not in NNCF_BIAS_CORRECTIONS:
        problems.append(f"export.calibration.nncf_bias_correction: {bias!r} is not one of "
                        f"{', '.join(NNCF_BIAS_CORRECTIONS)}")
    known = {f.name for f in dataclasses.fields(Tolerances)}
    unknown = sorted(set(cfg.export.tolerances) - known)
    if unknown:
        problems.append(f"export.tolerances: unknown limit(s) {unknown}; known: {', '.join(sorted(known))}")
    else:
        try:
            Tolerances(**cfg.export.tolerances)
        except ConfigError as exc:
            problems.append(f"export.tolerances: {exc}")
    return problems


def validate_run(cfg: ExperimentConfig, path: str | os.PathLike | None = None) -> None:
    """The whole experiment, export and bench sections included: one-line :class:`ConfigError` or nothing."""
    from edgeiqa.distill.validate import validate_experiment

    validate_experiment(cfg, path, extra_checks=(export_problems,))


def export_options(artifact: ArtifactConfig, section: ExportConfig) -> "ExportOptions":
    """One artifact's :class:`~edgeiqa.export.options.ExportOptions`: the section's INT8 calibration and
    parity limits, the artifact's ``keep_fp``; the exporter's defaults for everything else."""
    from edgeiqa.export.options import ExportOptions, Int8Settings, Tolerances

    calibration = section.calibration
    chosen: dict[str, Any] = {"int8": Int8Settings(method=calibration.method, n_images=calibration.n_images,
                                                   nncf_bias_correction=calibration.nncf_bias_correction),
                              "tolerances": Tolerances(**section.tolerances)}
    if artifact.keep_fp is not None:
        chosen["keep_fp"] = tuple(artifact.keep_fp)
    return ExportOptions(**chosen)


def bench_options(bench: BenchConfig) -> "BenchOptions":
    """The ``bench:`` section as :class:`~edgeiqa.benchmarks.spec.BenchOptions` (its defaults elsewhere)."""
    from edgeiqa.benchmarks.spec import BenchOptions

    return BenchOptions(batches=tuple(bench.batches), min_seconds=bench.min_seconds, warmup=bench.warmup,
                        threads=bench.threads, torch_devices=tuple(bench.torch_devices))


def _export_all(cfg: ExperimentConfig, final: Path, quiet: bool) -> list[Path]:
    from edgeiqa.distill.runs import load_splits
    from edgeiqa.distill.stages import QAT_FINAL_FOLDER
    from edgeiqa.export.exporter import export_artifact
    from edgeiqa.export.formats import QAT_PRECISION
    from edgeiqa.export.images import ImageSet
    from edgeiqa.export.source import ExportSource, load_export_source

    table, section = load_splits(cfg.data).table, cfg.export
    calib = ImageSet.from_table(table, section.calibration.split, n=section.calibration.n_images)
    val = ImageSet.validation_from_table(table, section.validation_split)
    valid = []
    sources: dict[Path, ExportSource] = {}  # each checkpoint is loaded (and its sha256 checked) once
    for artifact in section.artifacts:
        # int8-qat is the QAT student's own Q/DQ graph: it exports from student/qat_final.
        folder = final.parent / QAT_FINAL_FOLDER if artifact.precision == QAT_PRECISION else final
        if folder not in sources:
            sources[folder] = load_export_source(folder)
        result = export_artifact(sources[folder], artifact.format, artifact.precision, Path(cfg.out) / "artifacts",
                                 calib=calib, val=val, options=export_options(artifact, section),
                                 raise_on_failure=False)
        if not quiet:
            print(f"    {result.summary()}", file=sys.stderr)
        if result.verdict == "passed":
            valid.append(result.artifact)
    return valid


def _bench_and_report(cfg: ExperimentConfig, artifacts: list[Path], final: Path) -> Path:
    from edgeiqa.benchmarks.ablation import load_ablation
    from edgeiqa.benchmarks.bench import DatasetSpec, bench_artifacts
    from edgeiqa.benchmarks.report import write_report
    from edgeiqa.benchmarks.screenshot import find_chromium, screenshot_html

    out, bench, data_cfg = Path(cfg.out), cfg.bench, cfg.data
    device = bench.device_name or f"{platform.node() or 'this-machine'}-cpu"
    data = DatasetSpec(str(data_cfg.root), name=data_cfg.dataset, split=bench.split, options=dict(data_cfg.options),
                       split_rule=data_cfg.split, split_seed=data_cfg.split_seed, fractions=tuple(data_cfg.fractions))
    targets = [*map(str, artifacts), *([str(final)] if bench.torch_checkpoint else [])]
    if not targets:
        raise EdgeIQAError(f"no artifact passed its parity gate (see {out / 'artifacts'}/*.json) and "
                           "bench.torch_checkpoint is false: nothing to benchmark")
    result = bench_artifacts(targets, data, bench_options(bench), device_name=device,
                             ablation=load_ablation(out / "summary.json"))
    results_file = out / "results" / f"{device}.json"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    result.write(results_file)
    report = write_report([results_file], out / "report")
    if find_chromium():  # a rendered check of the page, where a browser is installed
        screenshot_html(report.html, out / "report" / "report.png")
    return report.html


def run_experiment(cfg: ExperimentConfig, quiet: bool = False, *, steps: Steps | None = None) -> ExperimentResult:
    """Train, distil, export, benchmark and report ``cfg`` end to end (see the module docstring).

    ``steps`` continues a caller's clock (the quickstart times its dataset step on the same one).
    """
    from edgeiqa.distill.api import run_distill, run_teacher

    validate_run(cfg)
    steps = steps or Steps(quiet)
    progress = not quiet
    steps(f"train the teacher ({cfg.teacher.model})", lambda: run_teacher(cfg, progress=progress))
    # The ablation's evaluation (next step) scores every model; one evaluation is enough.
    steps(f"distil the student ({cfg.student.model})", lambda: run_distill(cfg, progress=progress, evaluate_after=False))
    done = steps("train the student alone (ablation)", lambda: run_distill(cfg, student_only=True, progress=progress))
    final = Path(cfg.out) / "student" / "final"
    artifacts = steps("export and parity-gate", lambda: _export_all(cfg, final, quiet))
    report = steps("benchmark and report", lambda: _bench_and_report(cfg, artifacts, final))
    return ExperimentResult(Path(cfg.out), report, time.perf_counter() - steps.started, steps.seconds,
                            [str(a) for a in artifacts], done["summary"])
