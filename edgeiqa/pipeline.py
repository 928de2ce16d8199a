"""``edgeiqa run --config X.yaml``: one experiment file, from its data to a report.

Steps, in ``cfg.out`` (each resumable: re-running after an interruption reuses what is complete):

1. train the teacher (``teacher/``), distil the student (``student/``), train the student alone
   (``student_only/``), calibrate, evaluate (``summary.json``); a finished stage is skipped on a re-run;
2. export every artifact of ``export:`` from ``student/final`` (``int8-qat``: ``student/qat_final``) into
   ``artifacts/``, each parity-gated;
3. benchmark those that passed (and the torch checkpoint, ``bench.torch_checkpoint``), one process each,
   into ``results/<device>.json``;
4. merge the results into ``report/report.md``, ``report.html`` and ``pareto.png``.

``run.json`` in ``cfg.out`` keeps how long each step took, per invocation, on which CPU (:data:`RUN_RECORD`).

Everything the run does is in the YAML (see ``configs/quickstart.yaml``); :func:`validate_run` checks all
of it, the export section's names against the export layer's tables included, before any work.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeiqa.bench.device_info import cpu_model
from edgeiqa.errors import EdgeIQAError
from edgeiqa.experiment import ExperimentConfig, export_problems, section_problems
from edgeiqa.fileio import atomic_write_text, read_json_file


@dataclass
class ExperimentResult:
    """Where everything went, how long each step took, which artifacts passed, the test-split summary."""

    out: Path
    report: Path
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (paths as strings)."""
        return {
            "out": str(self.out),
            "report": str(self.report),
            "seconds": self.seconds,
            "steps": dict(self.steps),
            "exports": list(self.exports),
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentResult:
        return cls(
            Path(data["out"]),
            Path(data["report"]),
            float(data["seconds"]),
            dict(data.get("steps") or {}),
            list(data.get("exports") or []),
            dict(data.get("summary") or {}),
        )


# One entry per invocation of a run (a resumed run adds one, whose finished stages take seconds): how long
# each step took on which CPU, written after every step, so an interrupted run keeps what it measured.
RUN_RECORD = "run.json"


class Steps:
    """Times each step and says what is happening on stderr (stdout carries the final answer); with a
    :meth:`record` file, adds this invocation to it after each step."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.seconds = quiet, {}
        self.started = time.perf_counter()
        self.began_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.record_file: Path | None = None
        self.earlier: list[Any] = []  # the record's other invocations, read once by record()
        self.cpu: str | None = None

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.started:6.1f} s] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        value = fn()
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        self.save(finished=False)
        return value

    def record(self, path: Path) -> None:
        """Keep this invocation in ``path`` (an object with a list of invocations) from now on, steps so far
        included; the invocations already there are read once, here, and kept."""
        history = read_json_file(path, "run record", EdgeIQAError) if path.is_file() else {"invocations": []}
        if not isinstance(history, dict) or not isinstance(history.get("invocations"), list):
            raise EdgeIQAError(f"{path}: not a run record (an object with an 'invocations' list); move it aside")
        self.record_file, self.earlier, self.cpu = path, history["invocations"], cpu_model()
        self.save(finished=False)

    def save(self, finished: bool) -> None:
        if self.record_file is None:
            return
        entry = {
            "began_at": self.began_at,
            "finished": finished,
            "seconds": round(time.perf_counter() - self.started, 2),
            "steps": dict(self.seconds),
            "cpu": self.cpu,
            "cores": os.cpu_count(),
        }
        self.record_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.record_file, json.dumps({"invocations": [*self.earlier, entry]}, indent=1))


def validate_run(cfg: ExperimentConfig, path: str | os.PathLike | None = None) -> None:
    """The whole experiment, export and bench sections included: one-line :class:`ConfigError` or nothing."""
    from edgeiqa.distill.validate import validate_experiment

    validate_experiment(cfg, path, extra_checks=(section_problems, export_problems))


def export_all(cfg: ExperimentConfig, final: Path, quiet: bool = False) -> list[Path]:
    """Step 2: export every artifact of ``cfg.export`` from ``final`` (``int8-qat``: its ``qat_final``
    sibling) into ``<out>/artifacts``, each parity-gated; the artifacts that passed."""
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
        result = export_artifact(
            sources[folder],
            artifact.format,
            artifact.precision,
            Path(cfg.out) / "artifacts",
            calib=calib,
            val=val,
            options=section.options_for(artifact),
            raise_on_failure=False,
        )
        if not quiet:
            print(f"    {result.summary()}", file=sys.stderr)
        if result.verdict == "passed":
            valid.append(result.artifact)
    return valid


def bench_and_report(cfg: ExperimentConfig, artifacts: list[Path], final: Path) -> Path:
    """Steps 3 and 4: benchmark ``artifacts`` (and ``final``, when ``bench.torch_checkpoint``) into
    ``<out>/results/<device>.json``, then write ``<out>/report/``; the report page."""
    from edgeiqa.bench.ablation import load_ablation
    from edgeiqa.bench.harness import DatasetSpec, bench_artifacts
    from edgeiqa.report.screenshot import find_chromium, screenshot_html
    from edgeiqa.report.writer import write_report

    out, bench, data_cfg = Path(cfg.out), cfg.bench, cfg.data
    device = bench.device_name or f"{platform.node() or 'this-machine'}-cpu"
    data = DatasetSpec(
        str(data_cfg.root),
        name=data_cfg.dataset,
        split=bench.split,
        options=dict(data_cfg.options),
        split_rule=data_cfg.split,
        split_seed=data_cfg.split_seed,
        fractions=tuple(data_cfg.fractions),
    )
    targets = [*map(str, artifacts), *([str(final)] if bench.torch_checkpoint else [])]
    if not targets:
        raise EdgeIQAError(
            f"no artifact passed its parity gate (see {out / 'artifacts'}/*.json) and "
            "bench.torch_checkpoint is false: nothing to benchmark"
        )
    result = bench_artifacts(
        targets, data, bench.options(), device_name=device, ablation=load_ablation(out / "summary.json")
    )
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
    steps.record(Path(cfg.out) / RUN_RECORD)
    progress = not quiet
    steps(f"train the teacher ({cfg.teacher.model})", lambda: run_teacher(cfg, progress=progress))
    # The ablation's evaluation (next step) scores every model; one evaluation is enough.
    steps(
        f"distil the student ({cfg.student.model})", lambda: run_distill(cfg, progress=progress, evaluate_after=False)
    )
    done = steps("train the student alone (ablation)", lambda: run_distill(cfg, student_only=True, progress=progress))
    final = Path(cfg.out) / "student" / "final"
    artifacts = steps("export and parity-gate", lambda: export_all(cfg, final, quiet))
    report = steps("benchmark and report", lambda: bench_and_report(cfg, artifacts, final))
    steps.save(finished=True)
    return ExperimentResult(
        Path(cfg.out),
        report,
        time.perf_counter() - steps.started,
        steps.seconds,
        [str(a) for a in artifacts],
        done.summary,
    )
