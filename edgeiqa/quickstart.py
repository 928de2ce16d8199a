"""``edgeiqa quickstart``: the toolkit's main job on the embedded data, from nothing to a report.

Steps (each resumable: re-running after an interruption reuses what is complete):

1. generate the embedded dataset (``data/``);
2. train the CPU teacher, distil the student, train the student-alone baseline, calibrate (``run/``);
3. export ONNX FP32/FP16/INT8, OpenVINO INT8 and Core ML, each parity-gated (``artifacts/``);
4. benchmark everything that runs here, torch eager FP32 included, one process each (``results/``);
5. merge the results into ``report/report.md``, ``report.html`` and ``pareto.png``.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from edgeiqa.errors import EdgeIQAError

PRESET = "quickstart.yaml"
# (format, precision) pairs exported by the quickstart, in report order.
EXPORTS: tuple[tuple[str, str], ...] = (
    ("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"), ("onnx", "int8-trt"),
    ("openvino", "int8"), ("coreml", "fp16"),
)


def preset_path(name: str) -> Path:
    """A packaged experiment preset (``edgeiqa/presets/NAME``; the repo's ``configs/`` links there)."""
    path = Path(str(resources.files("edgeiqa") / "presets" / name))
    if not path.exists():
        raise EdgeIQAError(f"no preset {name!r} in {path.parent}")
    return path


@dataclass
class QuickstartResult:
    out: Path
    report: Path
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


class _Steps:
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


def _dataset(out: Path, seed: int, quiet: bool) -> Path:
    from edgeiqa.data.synth import synthesize

    csv_path = out / "data" / "mos.csv"
    if csv_path.exists():
        return csv_path  # generation is atomic: a present mos.csv means a complete dataset
    return synthesize(out / "data", seed=seed, max_side=256, progress=not quiet).csv_path


def _export_all(final: Path, out: Path, splits, quiet: bool) -> list[Path]:
    from edgeiqa.export.exporter import export_artifact
    from edgeiqa.export.images import ImageSet

    calib = ImageSet.from_table(splits.table, "train", n=200)
    val = ImageSet.validation_from_table(splits.table, "val")
    valid = []
    for fmt, precision in EXPORTS:
        result = export_artifact(final, fmt, precision, out / "artifacts", calib=calib, val=val,
                                 raise_on_failure=False)
        if not quiet:
            print(f"    {result.summary()}", file=sys.stderr)
        if result.verdict == "passed":
            valid.append(result.artifact)
    return valid


def _bench_and_report(out: Path, artifacts: list[Path], final: Path, quiet: bool) -> Path:
    from edgeiqa.benchmarks.ablation import load_ablation
    from edgeiqa.benchmarks.bench import BenchOptions, DatasetSpec, bench_artifacts
    from edgeiqa.benchmarks.report import write_report

    device = f"{platform.node() or 'this-machine'}-cpu"
    data = DatasetSpec(str(out / "data"), split="test", options={"mos_range": (0, 100)})
    result = bench_artifacts([*map(str, artifacts), str(final)], data, BenchOptions(batches=(1, 8), min_seconds=1.0, warmup=3),
                             device_name=device, ablation=load_ablation(out / "run" / "summary.json"))
    results_file = out / "results" / f"{device}.json"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    result.write(results_file)
    report = write_report([results_file], out / "report")
    from edgeiqa.benchmarks.screenshot import find_chromium, screenshot_html

    if find_chromium():  # a rendered check of the page, where a browser is installed
        screenshot_html(report.html, out / "report" / "report.png")
    return report.html


def run_quickstart(out: Path | str = "runs/quickstart", seed: int = 0, quiet: bool = False) -> QuickstartResult:
    from edgeiqa.distill.api import run_distill, run_teacher
    from edgeiqa.distill.config import ExperimentConfig
    from edgeiqa.distill.runs import load_splits

    out = Path(out)
    steps = _Steps(quiet)
    csv_path = steps("generate the embedded dataset", lambda: _dataset(out, seed, quiet))
    cfg = ExperimentConfig.load(preset_path(PRESET))
    cfg.out, cfg.seed, cfg.data.root = str(out / "run"), seed, str(csv_path)
    steps("train the teacher (EIQANet)", lambda: run_teacher(cfg, progress=not quiet))
    steps("distil the student (EQCNet)", lambda: run_distill(cfg, progress=not quiet))
    done = steps("train the student alone (ablation)", lambda: run_distill(cfg, student_only=True, progress=not quiet))
    final = out / "run" / "student" / "final"
    artifacts = steps("export and parity-gate", lambda: _export_all(final, out, load_splits(cfg.data), quiet))
    report = steps("benchmark and report", lambda: _bench_and_report(out, artifacts, final, quiet))
    return QuickstartResult(out, report, time.perf_counter() - steps.started, steps.seconds,
                            [str(a) for a in artifacts], done["summary"])
