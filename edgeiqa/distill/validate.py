"""Check a whole experiment before any work starts: names, ranges and paths, one line per refusal.

:func:`edgeiqa.configs.from_dict` already checks every key and type. What it cannot see is a loss
name misspelt in ``student.finetune.losses`` (found only after pre-training ran), ``batch_size: 0``
or ``seed: -1`` (tracebacks after the output folder exists), a data root that is not there, or a
feature-pair module the model lacks. :func:`validate_experiment` looks at all of them at once and
raises one :class:`~edgeiqa.errors.ConfigError` naming the file, the dotted key and the bad value
(plus how many other problems there are), before a folder is created or a model is trained.

Optimiser settings are checked by field name (a table of rules), and any other numeric field by
being finite, so fields added to :class:`~edgeiqa.distill.config.OptimConfig` later are still covered.

The ``export:`` and ``bench:`` sections are not this floor's: they belong to the layers above, and
:class:`edgeiqa.experiment.ExperimentConfig` adds them. Their dataclasses check their own values as they
load; what needs the whole file (an artifact listed twice, nothing to benchmark) or the export layer's
tables (format and precision names) is passed in ``extra_checks`` by the application floor
(``edgeiqa.pipeline.validate_run``), and its problems are reported in the same one line.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from edgeiqa.data.records import fold_count
from edgeiqa.distill.config import TrainingConfig
from edgeiqa.errors import ConfigError

Rule = Callable[[Any], bool]
C = TypeVar("C", bound=TrainingConfig)

# Per optimiser field name: (accepts the value, what a good value is). None passes where allowed.
_OPTIM_RULES: dict[str, tuple[Rule, str]] = {
    "epochs": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    "batch_size": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    "lr": (lambda v: v is not None and v > 0, "a number > 0"),
    "weight_decay": (lambda v: v is not None and v >= 0, "a number >= 0"),
    "warmup_epochs": (lambda v: v is not None and v >= 0, "a number >= 0"),
    "min_lr_ratio": (lambda v: v is not None and 0 <= v <= 1, "a number in [0, 1]"),
    "grad_clip": (lambda v: v is None or v > 0, "a number > 0 or null"),
    "early_stop_patience": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    "max_steps_per_epoch": (lambda v: v is None or (isinstance(v, int) and v >= 1), "an integer >= 1 or null"),
}
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_SEED_LIMIT = 2**32  # numpy's seeds must be below this


def validate_experiment(
    cfg: C, path: str | os.PathLike | None = None, extra_checks: Iterable[Callable[[C], list[str]]] = ()
) -> None:
    """Raise :class:`ConfigError` (one line) if anything in ``cfg`` would fail once work has started.

    Each of ``extra_checks`` returns problems as ``dotted.key: what is wrong`` lines."""
    problems = experiment_problems(cfg)
    for check in extra_checks:
        problems += check(cfg)
    if problems:
        source = str(path) if path is not None else "experiment config"
        more = f" (and {len(problems) - 1} more problem(s): fix this one and run again)" if len(problems) > 1 else ""
        raise ConfigError(f"{source}: {problems[0]}{more}")


def experiment_problems(cfg: TrainingConfig) -> list[str]:
    """Every problem this floor can find in ``cfg``, one ``dotted.key: what`` line each, in file order."""
    problems: list[str] = []
    _check_top(cfg, problems)
    _check_data(cfg, problems)
    for where, stage in _stages(cfg):
        if stage is None:
            continue
        _check_optim(getattr(stage, "optim", None), f"{where}.optim", problems)
        _check_losses(getattr(stage, "losses", {}), f"{where}.losses", problems)
    _check_qat(cfg, problems)
    _check_teacher_extras(cfg, problems)
    _check_loss_options(cfg, problems)
    _check_models(cfg, problems)
    return problems


def _stages(cfg: TrainingConfig) -> list[tuple[str, Any]]:
    student = cfg.student
    return [
        ("teacher", cfg.teacher),
        ("student.pretrain", getattr(student, "pretrain", None)),
        ("student.finetune", getattr(student, "finetune", None)),
        ("student.qat", getattr(student, "qat", None)),
    ]


def _check_teacher_extras(cfg: TrainingConfig, problems: list[str]) -> None:
    """The ranking set and its loss go together; ensemble members and test-time views are known names."""
    teacher = cfg.teacher
    for where, section in _stages(cfg):
        if section is not None and hasattr(section, "ranking_set"):
            _check_ranking(section, where, problems)
    from edgeiqa.distill.ensemble import TTA_VIEWS  # imports torch: only when a config is checked

    unknown = sorted(set(teacher.tta) - set(TTA_VIEWS))
    if unknown or not teacher.tta:
        problems.append(f"teacher.tta: views are {', '.join(map(repr, TTA_VIEWS))}, got {teacher.tta}")
    for k, member in enumerate(teacher.members):
        if member.seed_offset < 0:
            problems.append(f"teacher.members[{k}].seed_offset: must be >= 0, got {member.seed_offset}")
    for k, entry in enumerate(cfg.data.pseudo_pool):
        if not glob.has_magic(entry) and not Path(entry).exists():
            problems.append(f"data.pseudo_pool[{k}]: {entry} does not exist")
    for k, table in enumerate(cfg.data.pseudo_labels):
        if not Path(table.path).is_file():
            problems.append(f"data.pseudo_labels[{k}].path: {table.path} does not exist")


def _check_ranking(section: Any, where: str, problems: list[str]) -> None:
    """A section's ranking set and its distortion_rank loss go together, and the set exists."""
    weight = section.losses.get("distortion_rank", 0)
    if weight and not section.ranking_set:
        problems.append(
            f"{where}.losses.distortion_rank: needs {where}.ranking_set (a graded.csv: edgeiqa data graded)"
        )
    if section.ranking_set and not weight:
        problems.append(
            f"{where}.ranking_set: unused while {where}.losses.distortion_rank is 0; set its weight or drop it"
        )
    if section.ranking_set and not Path(section.ranking_set).is_file():
        problems.append(f"{where}.ranking_set: {section.ranking_set} does not exist (make it with edgeiqa data graded)")
    if not isinstance(section.ranking_group, int) or section.ranking_group < 2:
        problems.append(f"{where}.ranking_group: must be an integer >= 2, got {section.ranking_group!r}")


def _check_qat(cfg: TrainingConfig, problems: list[str]) -> None:
    """The QAT stage's own rules (checked even while it is disabled: enabling it must not surprise)."""
    qat = getattr(cfg.student, "qat", None)
    if qat is None:
        return
    if not qat.optim.freeze_bn:
        problems.append(
            "student.qat.optim.freeze_bn: must be true: TensorRT folds BatchNorm with its running "
            "statistics, so QAT must train with them (edgeiqa.models.fake_quant)"
        )
    if qat.optim.amp != "off":
        problems.append(
            f"student.qat.optim.amp: must be 'off', got {qat.optim.amp!r}: fake quantization rounds on "
            "the FP32 grid, half precision moves values across its rounding boundaries"
        )
    if not isinstance(qat.calibration_images, int) or qat.calibration_images < 1:
        problems.append(f"student.qat.calibration_images: must be an integer >= 1, got {qat.calibration_images!r}")
    if not (math.isfinite(qat.percentile) and 50.0 < qat.percentile <= 100.0):
        problems.append(f"student.qat.percentile: must be in (50, 100], got {qat.percentile!r}")
    if any(not str(part).strip() for part in qat.keep_fp):
        problems.append(f"student.qat.keep_fp: names must not be empty, got {qat.keep_fp!r}")


def _check_top(cfg: TrainingConfig, problems: list[str]) -> None:
    if not isinstance(cfg.seed, int) or not 0 <= cfg.seed < _SEED_LIMIT:
        problems.append(f"seed: must be an integer in [0, 2**32), got {cfg.seed!r}")
    if cfg.threads is not None and cfg.threads < 1:
        problems.append(f"threads: must be >= 1 or null, got {cfg.threads!r}")
    if not _DEVICE.match(str(cfg.device)):
        problems.append(f"device: must be auto, cpu, cuda, cuda:N or mps, got {cfg.device!r}")
    if not str(cfg.out).strip():
        problems.append("out: must name an output folder")
    elif Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        problems.append(f"out: {cfg.out} exists and is not a folder")


def _check_data(cfg: TrainingConfig, problems: list[str]) -> None:
    from edgeiqa.data.distortions import DISTORTIONS, LEVELS
    from edgeiqa.data.loaders import list_loaders

    data = cfg.data
    if data.dataset not in list_loaders():
        problems.append(f"data.dataset: unknown loader {data.dataset!r}; known: {', '.join(list_loaders())}")
    if data.root is None or not str(data.root).strip():
        problems.append("data.root: missing; name the dataset's file or folder (e.g. data/mos.csv)")
    elif not Path(data.root).exists():
        problems.append(f"data.root: {data.root} does not exist")
    if data.transfer_dir is not None and not Path(data.transfer_dir).is_dir():
        problems.append(f"data.transfer_dir: {data.transfer_dir} is not a folder")
    if data.transfer_copies < 0:
        problems.append(f"data.transfer_copies: must be >= 0, got {data.transfer_copies}")
    unknown = [name for name in data.transfer_distortions if name not in DISTORTIONS]
    if unknown:
        problems.append(
            f"data.transfer_distortions: unknown {', '.join(map(repr, unknown))}; known: {', '.join(DISTORTIONS)}"
        )
    elif data.transfer_copies and not data.transfer_distortions:
        problems.append("data.transfer_distortions: empty, but data.transfer_copies asks for distorted copies")
    levels = list(data.transfer_levels)
    if len(levels) != 2 or not all(isinstance(v, int) and 1 <= v <= LEVELS for v in levels) or levels[0] > levels[1]:
        problems.append(f"data.transfer_levels: need [low, high] with 1 <= low <= high <= {LEVELS}, got {levels}")
    fractions = list(data.fractions)
    if (
        len(fractions) != 3
        or any(not math.isfinite(f) or not 0 <= f <= 1 for f in fractions)
        or abs(sum(fractions) - 1.0) > 1e-6
        or min(fractions[:2], default=0) <= 0
    ):
        problems.append(
            f"data.fractions: need three numbers in [0, 1] (train, val, test) summing to 1 "
            f"with train and val > 0, got {fractions}"
        )
    if data.split_seed < 0:
        problems.append(f"data.split_seed: must be >= 0, got {data.split_seed}")
    elif data.split == "folds" and len(fractions) == 3:
        try:
            folds = fold_count(fractions[2])
        except ConfigError as exc:
            problems.append(f"data.fractions: {exc}")
        else:
            if data.split_seed >= folds:
                problems.append(f"data.split_seed: the fold, must be in 0..{folds - 1} under split 'folds'")
    if data.workers < 0:
        problems.append(f"data.workers: must be >= 0, got {data.workers}")


def _check_optim(optim: Any, where: str, problems: list[str]) -> None:
    if optim is None or not dataclasses.is_dataclass(optim):
        return
    for f in dataclasses.fields(optim):
        value = getattr(optim, f.name)
        rule = _OPTIM_RULES.get(f.name)
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float))):
            continue  # strings and literals are type-checked by the YAML reader
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where}.{f.name}: must be finite, got {value!r}")
        elif rule is not None and not rule[0](value):
            problems.append(f"{where}.{f.name}: must be {rule[1]}, got {value!r}")


def _check_losses(losses: dict[str, float], where: str, problems: list[str]) -> None:
    from edgeiqa.distill.losses import LOSSES

    unknown = sorted(set(losses) - set(LOSSES))
    if unknown:
        problems.append(f"{where}: unknown loss name(s) {unknown}; known: {sorted(LOSSES)}")
    for name, weight in losses.items():
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            problems.append(f"{where}.{name}: weight must be a finite number >= 0, got {weight!r}")
    if losses and not any(w > 0 for w in losses.values() if isinstance(w, (int, float))):
        problems.append(f"{where}: every weight is 0; nothing would be trained")


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _check_loss_options(cfg: TrainingConfig, problems: list[str]) -> None:
    for f in dataclasses.fields(cfg.loss_options):
        value = getattr(cfg.loss_options, f.name)
        if not _positive(value):
            problems.append(f"loss_options.{f.name}: must be a finite number > 0, got {value!r}")


def _check_models(cfg: TrainingConfig, problems: list[str]) -> None:
    from edgeiqa.models import list_models

    known = set(list_models())
    for where, model in (("teacher.model", cfg.teacher.model), ("student.model", cfg.student.model)):
        if model not in known:
            problems.append(f"{where}: unknown model {model!r}; see 'edgeiqa info list'")
    if problems:
        return  # feature pairs are only worth checking on models that exist
    for i, pair in enumerate(cfg.student.feature_pairs):
        for side, spec in (("student", pair.student), ("teacher", pair.teacher)):
            _, _, part = spec.partition(":")
            if part not in ("", "input"):
                problems.append(f"student.feature_pairs[{i}].{side}: {spec!r}: the part after ':' must be 'input'")
    _check_hook_names(cfg, problems)


def _check_hook_names(cfg: TrainingConfig, problems: list[str]) -> None:
    """Feature-pair modules must exist; the models are built on torch's meta device (no memory, no init
    cost worth the name), and a model that cannot be built that way is left for training to report."""
    pairs = cfg.student.feature_pairs
    if not pairs:
        return
    names = {
        "student": _module_names(cfg.student.model, cfg.student.model_kwargs, "student", problems),
        "teacher": _module_names(cfg.teacher.model, cfg.teacher.model_kwargs, "teacher", problems),
    }
    for i, pair in enumerate(pairs):
        for side, spec in (("student", pair.student), ("teacher", pair.teacher)):
            module = spec.partition(":")[0]
            if names[side] is not None and module not in names[side]:
                problems.append(
                    f"student.feature_pairs[{i}].{side}: "
                    f"{cfg.student.model if side == 'student' else cfg.teacher.model} "
                    f"has no submodule {module!r}"
                )


def _module_names(model: str, kwargs: dict[str, Any], side: str, problems: list[str]) -> set[str] | None:
    try:
        import torch

        from edgeiqa.models import create_model

        with torch.device("meta"):
            built = create_model(model, **kwargs)
        return {name for name, _ in built.named_modules()}
    except ConfigError as exc:  # e.g. a bad model_kwargs value
        problems.append(f"{side}.model_kwargs: {exc}")
        return None
    except Exception:  # noqa: BLE001 - some builders cannot run on meta tensors: skip the check, not the run
        return None
