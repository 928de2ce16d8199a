"""The method's stages: teacher training, then student pre-training, fine-tuning and score calibration
(plus the optional quantization-aware stage ``qat``, :mod:`edgeiqa.distill.qat`).

Each stage reads the previous stage's best checkpoint from the run folder and writes its own, so any
stage can be run, skipped or resumed alone::

    <out>/teacher/                 EIQANet (teacher training)
    <out>/student/pretrain/        EQCNet imitating the frozen teacher
    <out>/student/finetune/        EQCNet on MOS labels + a smaller distillation term
    <out>/student/final/           fine-tuned EQCNet + folded score calibration (what export reads)
    <out>/student/qat/             optional: the fine-tuned EQCNet fake-quantized and fine-tuned (INT8 QAT)
    <out>/student/qat_final/       optional: the QAT student + its own folded score calibration (onnx int8-qat)
    <out>/student_only/...         the ablation: the same student on labels alone
    <out>/summary.json             test-split metrics of every model trained in this folder
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from edgeiqa.configs import to_dict
from edgeiqa.data.records import ImageRecord
from edgeiqa.distill.calibration import CalibratedModel, ScoreCalibration, fit_score_map
from edgeiqa.distill.checkpoint import latest_checkpoint, save_checkpoint
from edgeiqa.distill.config import StageConfig, TrainingConfig
from edgeiqa.distill.distributed import DistContext
from edgeiqa.distill.ensemble import ENSEMBLE_FILE, MEMBERS_FOLDER, is_ensemble, load_ensemble, write_ensemble
from edgeiqa.distill.labels import label_images, pool_paths, read_table
from edgeiqa.distill.loop import StageResult, run_stage
from edgeiqa.distill.losses import WeightedLoss
from edgeiqa.distill.modules import StudentTrainModule, TeacherTrainModule, student_forward, teacher_forward
from edgeiqa.distill.ranking import DISTORTION_RANK, RankingGroups, ranking_feed, ranking_views
from edgeiqa.distill.runs import Splits, make_loader, predict
from edgeiqa.distill.saved_model import load_model
from edgeiqa.distill.views_data import DistortedCopies, ViewsDataset, collate_views, unlabelled_records
from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.metrics import srcc
from edgeiqa.models import create_model
from edgeiqa.progress import progress_write

# "qat" runs after the others and only when student.qat.enabled (edgeiqa.distill.api orders it).
STUDENT_STAGES = ("pretrain", "finetune", "calibrate", "qat")
QAT_FOLDER, QAT_FINAL_FOLDER = "qat", "qat_final"
_TEACHER_TERMS = ("kd_score", "kd_rank", "feature")


class Run:
    """One experiment's config, splits, device and output folder, shared by its stages."""

    def __init__(self, cfg: TrainingConfig, splits: Splits, dist: DistContext, progress: bool = True) -> None:
        self.cfg, self.splits, self.dist, self.progress = cfg, splits, dist, progress
        self.out = Path(cfg.out)

    def dataset(
        self,
        records,
        student=None,
        teacher=None,
        train: bool = False,
        copies: DistortedCopies | None = None,
        labels: dict[str, float] | None = None,
    ) -> ViewsDataset:
        contract = student.contract if student is not None else None
        spec = teacher.view_spec if teacher is not None else None
        return ViewsDataset(
            records,
            contract,
            spec,
            self.splits.mos_range,
            train=train,
            seed=self.cfg.seed,
            copies=copies,
            soft_targets=labels,
        )

    def transfer_set(self) -> tuple[list, DistortedCopies | None]:
        """Pre-training's images (training photos + data.transfer_dir) and their distorted copies."""
        data = self.cfg.data
        records = list(self.splits.train)
        if data.transfer_dir:
            records += unlabelled_records(Path(data.transfer_dir))
        copies = None
        if data.transfer_copies > 0:
            copies = DistortedCopies(
                data.transfer_copies,
                tuple(data.transfer_distortions),
                (int(data.transfer_levels[0]), int(data.transfer_levels[1])),
            )
        return records, copies

    def eval_loader(self, dataset: ViewsDataset, batch_size: int):
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, collate_fn=collate_views, num_workers=self.cfg.data.workers
        )

    def train(
        self,
        name: str,
        module,
        train_set: ViewsDataset,
        val_fn,
        optim,
        stage_dir: Path,
        metadata: dict[str, Any],
        resume: bool,
    ) -> StageResult:
        loader, batches = make_loader(
            train_set, optim.batch_size, self.dist, self.cfg.data.workers, True, self.cfg.seed
        )
        steps = min(len(loader), optim.max_steps_per_epoch or len(loader))
        return run_stage(
            name,
            module,
            batches,
            steps,
            val_fn,
            optim,
            stage_dir,
            self.dist,
            metadata,
            resume=resume,
            progress=self.progress,
        )


def _model_meta(model: torch.nn.Module, kind: str, mos_range: tuple[float, float]) -> dict[str, Any]:
    # mos_range lets load_model put an uncalibrated teacher's or student's 0..1 output back on the MOS scale.
    return {
        "kind": kind,
        "model": model.model_name,
        "model_kwargs": to_dict(model.model_kwargs),
        "contract": model.contract.to_dict(),
        "mos_range": list(mos_range),
    }


def _seeded_model(seed: int, name: str, kwargs: dict[str, Any], pretrained: bool) -> torch.nn.Module:
    torch.manual_seed(seed)  # same init for the distilled student and its label-only twin (RNG scoped by api)
    return create_model(name, pretrained=pretrained, **kwargs)


def train_teacher(run: Run, resume: bool = True) -> StageResult:
    """The teacher of ``teacher:`` into ``<out>/teacher``; with ``members``, each member into
    ``<out>/teacher/members/<k>-<model>`` and the ensemble record beside them (the last member's result)."""
    cfg = run.cfg.teacher
    if not cfg.members:
        (run.out / "teacher" / ENSEMBLE_FILE).unlink(missing_ok=True)  # an earlier ensemble's record would win
        return _train_one_teacher(run, cfg.model, cfg.model_kwargs, run.cfg.seed, run.out / "teacher", resume)
    folders, result = [], None
    for k, member in enumerate(cfg.members):
        name = member.model or cfg.model
        folder = run.out / "teacher" / MEMBERS_FOLDER / f"{k}-{name}"
        kwargs = member.model_kwargs if member.model else {**cfg.model_kwargs, **member.model_kwargs}
        result = _train_one_teacher(run, name, kwargs, run.cfg.seed + member.seed_offset, folder, resume)
        folders.append(folder)
    if run.dist.is_main:
        write_ensemble(run.out / "teacher", folders, cfg.tta, run.splits.mos_range)
    return result


def _ranking(
    run: Run, section: Any, losses: dict[str, float], seed: int, **views: Any
) -> Iterator[dict[str, Any]] | None:
    """The graded groups a stage orders each step (``section.ranking_set``, while ``losses`` weigh
    ``distortion_rank``), as the teacher's ``teacher_spec`` or the student's ``student_contract`` sees them.

    Each DDP rank draws its own groups. The draw count is not checkpointed: a resumed stage draws groups
    from its first draw again, so it is not bit-identical to an uninterrupted one."""
    if not (section.ranking_set and losses.get(DISTORTION_RANK)):
        return None
    groups = RankingGroups(section.ranking_set, section.ranking_group, seed=seed + 7919 * run.dist.rank, **views)
    return ranking_feed(groups, run.cfg.data.workers)


def _train_one_teacher(
    run: Run, name: str, kwargs: dict[str, Any], seed: int, folder: Path, resume: bool
) -> StageResult:
    cfg = run.cfg.teacher
    teacher = _seeded_model(seed, name, kwargs, cfg.pretrained)
    val_loader = run.eval_loader(run.dataset(run.splits.val, teacher=teacher), cfg.optim.batch_size)

    def validate() -> dict[str, float]:
        pred, mos = predict(lambda b: teacher_forward(teacher, b["teacher"]), val_loader, run.dist.device)
        return {"srcc": srcc(pred, mos)}

    ranking = _ranking(run, cfg, cfg.losses, seed, teacher_spec=ranking_views(teacher.view_spec))
    module = TeacherTrainModule(teacher, WeightedLoss(cfg.losses, run.cfg.loss_options), ranking)
    train_set = run.dataset(run.splits.train, teacher=teacher, train=True)
    return run.train(
        "teacher",
        module,
        train_set,
        validate,
        cfg.optim,
        folder,
        _model_meta(teacher, "teacher", run.splits.mos_range),
        resume,
    )


def load_teacher(run: Run) -> torch.nn.Module:
    if is_ensemble(run.out / "teacher"):
        raise EdgeIQAError(
            f"{run.out / 'teacher'}: an ensemble teacher teaches through its labels: set "
            "data.pseudo_pool (or data.pseudo_labels) instead of running it inside every epoch"
        )
    if latest_checkpoint(run.out / "teacher", "best", verify=False) is None:  # load_model verifies
        raise EdgeIQAError(f"{run.out / 'teacher'}: no trained teacher; run `edgeiqa train-teacher` first")
    return load_model(run.out / "teacher").model.to(run.dist.device)


def train_student_stage(
    run: Run,
    student,
    stage: StageConfig,
    name: str,
    folder: Path,
    teacher,
    use_labels: bool,
    records,
    resume: bool,
    extra_meta: dict[str, Any] | None = None,
    copies: DistortedCopies | None = None,
    labels: dict[str, float] | None = None,
) -> StageResult:
    """Train ``student`` (+ the frozen ``teacher``, if any) with ``stage``'s losses into ``folder``, on
    ``records`` (+ their distorted ``copies``); ``extra_meta`` joins every checkpoint's state (the QAT
    stage records its quantization there). ``labels`` (path -> normalised teacher score, from label
    tables) stand in for a live teacher's scores; features are not in a table, so ``feature`` drops out."""
    dropped = () if teacher is not None else ("feature",) if labels is not None else _TEACHER_TERMS
    losses = {k: v for k, v in stage.losses.items() if k not in dropped}
    val_loader = run.eval_loader(run.dataset(run.splits.val, student=student), stage.optim.batch_size)

    def validate() -> dict[str, float]:
        pred, mos = predict(lambda b: student_forward(student, b["student"]), val_loader, run.dist.device)
        return {"srcc": srcc(pred, mos)}

    train_set = run.dataset(records, student=student, teacher=teacher, train=True, copies=copies, labels=labels)
    probe = collate_views([train_set[i] for i in range(min(2, len(train_set)))]) if teacher is not None else None
    loss = WeightedLoss(losses, run.cfg.loss_options)
    ranking = _ranking(run, stage, losses, run.cfg.seed, student_contract=student.contract)
    module = StudentTrainModule(
        student,
        loss,
        teacher,
        run.cfg.student.feature_pairs,
        use_labels=use_labels,
        probe_batch=probe,
        ranking=ranking,
    )
    meta = dict(_model_meta(student, "student", run.splits.mos_range), **(extra_meta or {}))
    try:
        return run.train(name, module, train_set, validate, stage.optim, folder, meta, resume)
    finally:
        module.remove_hooks()  # the teacher outlives this stage: leave no hook of ours on it


def teacher_labels(run: Run) -> dict[str, float] | None:
    """path -> normalised teacher score from ``data.pseudo_labels`` and, with ``data.pseudo_pool``, the
    run's own table (labelled here once, resumably); None when the config names neither."""
    data = run.cfg.data
    tables = [(Path(t.path), t.range) for t in data.pseudo_labels]
    if data.pseudo_pool:
        tables.insert(0, (label_pool(run), None))
    if not tables:
        return None
    merged: dict[str, float] = {}
    for table, score_range in tables:
        merged.update(read_table(table, score_range))
    unlabelled = [r.path for r in run.splits.train if os.path.abspath(r.path) not in merged]
    if unlabelled:  # before any training, not after pre-training ran
        raise ConfigError(
            f"{len(unlabelled)} training image(s) have no teacher label, e.g. {unlabelled[0]}: label "
            "them (edgeiqa label) or add them to data.pseudo_pool"
        )
    held_out = {os.path.abspath(r.path) for r in (*run.splits.val, *run.splits.test)}
    return {path: score for path, score in merged.items() if path not in held_out}  # a table over the whole set


def label_pool(run: Run) -> Path:
    """``<out>/labels/teacher.csv``: the run's teacher on the training photos and every pool image."""
    table = run.out / "labels" / "teacher.csv"
    if run.dist.is_main:
        paths = [r.path for r in run.splits.train] + pool_paths(run.cfg.data.pseudo_pool)
        result = label_images(
            load_ensemble(run.out / "teacher"),
            paths,
            table,
            device=str(run.dist.device),
            progress=run.progress,
            restart_if_stale=True,
        )
        if result.failed:
            progress_write(f"edgeiqa: {len(result.failed)} pool image(s) could not be labelled and are left out")
    run.dist.barrier()
    return table


def _load_student_stage(folder: Path, run: Run) -> torch.nn.Module | None:
    if latest_checkpoint(folder, "best", verify=False) is None:  # existence only: load_model verifies
        return None
    return load_model(folder).model.to(run.dist.device)


def train_student(run: Run, stages: tuple[str, ...], student_only: bool, resume: bool = True) -> Path:
    """Run the requested student stages (``qat`` excepted) into ``<out>/student`` (or ``student_only``);
    returns final/."""
    cfg = run.cfg.student
    root = run.out / ("student_only" if student_only else "student")
    if not set(stages) & {"pretrain", "finetune", "calibrate"}:
        return root / "final"  # only qat asked for (edgeiqa.distill.qat): no teacher or model to build here
    labels = None if student_only else teacher_labels(run)
    teacher = None if student_only or labels is not None else load_teacher(run)
    student = _seeded_model(run.cfg.seed, cfg.model, cfg.model_kwargs, cfg.pretrained)
    if "pretrain" in stages and not student_only and cfg.pretrain.enabled:
        if labels is not None:  # every labelled image: the pool, its graded copies, the training photos
            transfer, copies = [ImageRecord(path=Path(p), mos=0.0, split="train") for p in labels], None
        else:
            transfer, copies = run.transfer_set()
        train_student_stage(
            run,
            student,
            cfg.pretrain,
            "pretrain",
            root / "pretrain",
            teacher,
            False,
            transfer,
            resume,
            copies=copies,
            labels=labels,
        )
    if "finetune" in stages and cfg.finetune.enabled:
        student = _load_student_stage(root / "pretrain", run) or student
        train_student_stage(
            run,
            student,
            cfg.finetune,
            "finetune",
            root / "finetune",
            teacher,
            True,
            run.splits.train,
            resume,
            labels=labels,
        )
    if "calibrate" in stages:
        calibrate(run, root)
    return root / "final"


def calibrate(run: Run, root: Path) -> Path:
    """Fit the 4PL from raw student output to MOS on the calibration split and fold it into the model."""
    student = _load_student_stage(root / "finetune", run) or _load_student_stage(root / "pretrain", run)
    if student is None:
        raise EdgeIQAError(f"{root}: nothing to calibrate; run the finetune stage first")
    return fold_score_calibration(run, student, root / "final", {})


def fold_score_calibration(run: Run, student: torch.nn.Module, folder: Path, extra_state: dict[str, Any]) -> Path:
    """Fit the score map of ``student`` on the calibration split and save ``CalibratedModel`` to ``folder``."""
    records = run.splits.val if run.cfg.student.calibration_split == "val" else run.splits.train
    loader = run.eval_loader(run.dataset(records, student=student), 32)
    raw, target = predict(lambda b: student_forward(student, b["student"]), loader, run.dist.device)
    low, high = run.splits.mos_range
    fit = fit_score_map(raw, target * (high - low) + low)  # refuses (one line) a model that ranks backwards
    calibrated = CalibratedModel(student.cpu(), ScoreCalibration(fit))
    state = dict(
        _model_meta(student, "student", run.splits.mos_range),
        stage="final",
        score_mapping={**fit.to_dict(), "folded": True, "mos_range": [low, high]},
        calibration_split=run.cfg.student.calibration_split,
        **extra_state,
    )
    if run.dist.is_main:
        save_checkpoint(folder, 0, calibrated, state, is_best=True)
    run.dist.barrier()
    return folder
