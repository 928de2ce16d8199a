"""One experiment file, whole: what ``edgeiqa run --config X.yaml`` does, as typed dataclasses.

:class:`ExperimentConfig` is the training part (:class:`edgeiqa.distill.config.TrainingConfig`: data,
teacher, student, stages, loss options) plus the two sections that belong to the layers above
training: ``export:`` (what to export, with which INT8 calibration and parity limits) and ``bench:``
(how to benchmark). Those sections load straight into the export and benchmark layers' own option
types, so each default is written once, where that layer defines it:

- ``export.calibration`` *is* an :class:`~edgeiqa.export.options.Int8Settings` (plus the split its
  images come from), ``export.tolerances`` *is* a :class:`~edgeiqa.export.options.Tolerances`;
- ``bench:`` *is* a :class:`~edgeiqa.bench.spec.BenchOptions` (plus what only a run needs: the
  split scored, whether the torch checkpoint is timed too, the device's label).

Values are checked as they load (each dataclass checks its own); what needs the whole file or the
export layer's tables is checked by :func:`section_problems` and :func:`export_problems`, which
``edgeiqa.pipeline.validate_run`` runs with the training checks before any work.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edgeiqa.bench.spec import DEFAULT_SPLIT, BenchOptions, BenchSplit
from edgeiqa.configs import load_yaml
from edgeiqa.distill.config import TrainingConfig
from edgeiqa.distill.validate import validate_experiment
from edgeiqa.errors import ConfigError
from edgeiqa.export.options import DEFAULT_CALIBRATION_SPLIT, ExportOptions, Int8Settings, Tolerances


@dataclass
class ArtifactConfig:
    """One artifact to export: a format and precision of ``edgeiqa.export.formats``.

    ``keep_fp`` names parts kept in float in FP16/INT8 artifacts (see ``ExportOptions.keep_fp``);
    None keeps the exporter's default.
    """

    format: str
    precision: str
    keep_fp: list[str] | None = None


def _default_artifacts() -> list[ArtifactConfig]:
    pairs = [
        ("onnx", "fp32"),
        ("onnx", "fp16"),
        ("onnx", "int8"),
        ("onnx", "int8-trt"),
        ("openvino", "int8"),
        ("coreml", "fp16"),
    ]
    return [ArtifactConfig(fmt, precision) for fmt, precision in pairs]


@dataclass(frozen=True)
class Int8CalibrationConfig(Int8Settings):
    """``export.calibration``: the INT8 calibration (activation ranges, not the score calibration).

    Every field and default of :class:`Int8Settings` (``method``, ``n_images``, ``num_bins``, ...), plus
    the ``split`` of the experiment's data its images come from (train or val, never test).
    """

    split: Literal["train", "val"] = DEFAULT_CALIBRATION_SPLIT  # type: ignore[assignment]

    def settings(self) -> Int8Settings:
        """The exporter's :class:`Int8Settings` (the split chooses the images, it is not a setting)."""
        return Int8Settings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Int8Settings)})


@dataclass
class ExportConfig:
    """What ``edgeiqa run`` exports from ``<out>/student/final`` into ``<out>/artifacts``, each parity-gated
    on ``validation_split`` (images + MOS); artifacts that fail the gate are kept out of the benchmark.

    ``tolerances`` are the gate's limits; set only the ones that differ, e.g. ``{fp32_max_abs: 0.01}``
    (the |score difference| limits are on the MOS scale, which differs between datasets).
    """

    artifacts: list[ArtifactConfig] = field(default_factory=_default_artifacts)
    calibration: Int8CalibrationConfig = field(default_factory=Int8CalibrationConfig)
    validation_split: Literal["train", "val", "test"] = "val"
    tolerances: Tolerances = field(default_factory=Tolerances)

    def options_for(self, artifact: ArtifactConfig) -> ExportOptions:
        """One artifact's :class:`ExportOptions`: this section's INT8 calibration and parity limits, the
        artifact's ``keep_fp``; the exporter's defaults for everything else."""
        keep_fp = {} if artifact.keep_fp is None else {"keep_fp": tuple(artifact.keep_fp)}
        return ExportOptions(int8=self.calibration.settings(), tolerances=self.tolerances, **keep_fp)


@dataclass(frozen=True)
class BenchConfig(BenchOptions):
    """``bench:``: every field and default of :class:`BenchOptions`, plus what only a run needs.

    ``split`` is the part of the experiment's own split accuracy is scored on (``all``: every image);
    ``torch_checkpoint`` also times the torch checkpoint the artifacts came from; ``device_name`` labels
    the run in reports and names its results file (None: ``<host name>-cpu``).
    """

    split: BenchSplit = DEFAULT_SPLIT
    torch_checkpoint: bool = True
    device_name: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        name = self.device_name
        if name is not None and (not name.strip() or any(c in name for c in "/\\:")):
            raise ConfigError(f"device_name names the results file: no '/', '\\' or ':' and not empty, got {name!r}")

    def options(self) -> BenchOptions:
        """The :class:`BenchOptions` part, as the harness and its workers read it."""
        return BenchOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(BenchOptions)})


@dataclass
class ExperimentConfig(TrainingConfig):
    """The whole experiment file: the training sections, ``export:`` and ``bench:``."""

    export: ExportConfig = field(default_factory=ExportConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)

    @classmethod
    def load(cls, path: Path | str) -> ExperimentConfig:
        return load_yaml(cls, path)


def section_problems(cfg: ExperimentConfig) -> list[str]:
    """What the sections' own checks cannot see: an artifact listed twice (the second would overwrite
    the first's file), an empty ``keep_fp`` name, nothing left to benchmark."""
    problems, seen = [], set()
    for i, artifact in enumerate(cfg.export.artifacts):
        key = (artifact.format, artifact.precision)
        if key in seen:
            problems.append(f"export.artifacts[{i}]: {artifact.format} {artifact.precision} is listed twice")
        seen.add(key)
        if artifact.keep_fp is not None and any(not str(part).strip() for part in artifact.keep_fp):
            problems.append(f"export.artifacts[{i}].keep_fp: names must not be empty, got {artifact.keep_fp!r}")
    if not cfg.export.artifacts and not cfg.bench.torch_checkpoint:
        problems.append("bench.torch_checkpoint: false and export.artifacts is empty: nothing to benchmark")
    return problems


def export_problems(cfg: ExperimentConfig) -> list[str]:
    """Each artifact's format and precision against the export layer's tables."""
    from edgeiqa.export.formats import FORMATS, QAT_PRECISION

    problems = []
    for i, artifact in enumerate(cfg.export.artifacts):
        fmt = FORMATS.get(artifact.format)
        if fmt is None:
            problems.append(
                f"export.artifacts[{i}].format: unknown format {artifact.format!r}; known: {', '.join(FORMATS)}"
            )
        elif artifact.precision not in fmt.precisions:
            problems.append(
                f"export.artifacts[{i}].precision: {artifact.format} has no precision "
                f"{artifact.precision!r}; choose one of {', '.join(fmt.precisions)}"
            )
        elif artifact.precision == QAT_PRECISION and not cfg.student.qat.enabled:
            problems.append(
                f"export.artifacts[{i}].precision: {QAT_PRECISION} exports the quantization-aware "
                "student: set student.qat.enabled: true"
            )
    return problems


def validate_training(cfg: ExperimentConfig, path: str | os.PathLike | None = None) -> None:
    """What ``edgeiqa train-teacher``/``distill``/``baseline`` check: the training sections and
    :func:`section_problems` (the export layer's names only matter to ``edgeiqa run``)."""
    validate_experiment(cfg, path, extra_checks=(section_problems,))
