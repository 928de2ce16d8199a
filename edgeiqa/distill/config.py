"""The training sections of an experiment YAML (see configs/*.yaml) as typed dataclasses.

An experiment file describes the whole job that ``edgeiqa run --config X.yaml`` does; this module holds
what training reads (the data, the teacher, the student and its stages, the loss settings), gathered
in :class:`TrainingConfig`. The ``export:`` and ``bench:`` sections belong to the layers above and are
added by :class:`edgeiqa.experiment.ExperimentConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# The capture-side degradations of in-the-wild photos (focus, shake, sensor noise, exposure, colour,
# compression); the synthetic codec and palette artefacts are left out by default.
TRANSFER_DISTORTIONS = (
    "gaussian_blur",
    "motion_blur",
    "gaussian_noise",
    "jpeg",
    "brightness_change",
    "contrast_change",
    "saturation_change",
)


@dataclass
class PseudoLabelTable:
    """A ``path,score`` table; ``range`` maps its scores to 0..1 (None: its sidecar's MOS range, else its
    own min and max)."""

    path: str
    range: list[float] | None = None


@dataclass
class DataConfig:
    dataset: str = "csv"  # a loader name from edgeiqa.data.loaders
    root: str | None = None  # the dataset's file or folder; required (validation names it when missing)
    options: dict[str, Any] = field(default_factory=dict)  # passed to the loader, e.g. mos_range: [0, 100]
    # "official" uses the dataset's own train/val/test split when it has one, else a seeded split by group
    # (content) with `fractions`; "random" always re-splits by group; "folds" tests fold `split_seed` of a
    # k-fold partition by group (k = 1 / the test fraction), for cross-validating a recipe.
    split: Literal["official", "random", "folds"] = "official"
    split_seed: int = 0
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    # Pre-training's transfer set (labels unused): the training photos, plus every image under transfer_dir,
    # plus transfer_copies distorted copies of each of those, made on the fly: each copy draws one of
    # transfer_distortions (edgeiqa.data.distortions) at a level in transfer_levels [low, high], anew every
    # epoch (reproducible from seed, epoch and item). The teacher scores what the student sees, so the
    # copies teach the student how the teacher reacts to degradations the labelled photos never show.
    transfer_dir: str | None = None
    transfer_copies: int = 0
    transfer_distortions: list[str] = field(default_factory=lambda: list(TRANSFER_DISTORTIONS))
    transfer_levels: list[int] = field(default_factory=lambda: [1, 3])
    workers: int = 0  # DataLoader worker processes (0: decode in the training process)
    # Teacher labels (edgeiqa.distill.labels): with pseudo_pool (folders, globs or graded.csv files), the
    # run's teacher labels those images and the training photos once, into <out>/labels/teacher.csv;
    # pseudo_labels adds tables written by anyone (path,score). Then the student pre-trains on every
    # labelled image and takes its kd terms from the tables: the teacher never runs inside an epoch.
    pseudo_pool: list[str] = field(default_factory=list)
    pseudo_labels: list[PseudoLabelTable] = field(default_factory=list)


@dataclass
class OptimConfig:
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.02
    grad_clip: float | None = 2.0
    # Mixed precision where the device has it (CUDA); CPU autocast slows small convnets down here.
    amp: Literal["auto", "off"] = "auto"
    early_stop_patience: int = 0  # epochs without a better val SRCC before stopping; 0 = never stop early
    # Which checkpoint the stage hands on (best.json): "best" val SRCC, or the "last" epoch. On small
    # validation splits (LIVE-C: 63 photos) "best" can pick an under-trained epoch by chance
    # (studies/livec_epoch_selection.py measured a 0.06 test-SRCC swing); "last" trusts the schedule.
    select: Literal["best", "last"] = "best"
    max_steps_per_epoch: int | None = None  # caps an epoch on large sets (quick presets)
    # Fine-tuning a pretrained backbone (see edgeiqa.distill.finetune): its lr = lr * backbone_lr_mult;
    # freeze_bn keeps BatchNorm statistics (small CPU batches); the backbone can sit out the first epochs.
    backbone_lr_mult: float = 1.0
    freeze_bn: bool = False
    freeze_backbone_epochs: int = 0


@dataclass
class TeacherMember:
    """One member of an ensemble teacher: the teacher section's model, optim and losses, with its own
    backbone/views (``model``/``model_kwargs`` replace the section's) and its own seed offset."""

    model: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    seed_offset: int = 0


@dataclass
class TeacherConfig:
    model: str = "eiqanet_cpu"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    optim: OptimConfig = field(default_factory=OptimConfig)
    losses: dict[str, float] = field(default_factory=lambda: {"regression": 1.0, "rank": 1.0, "plcc": 0.5})
    # A graded set (edgeiqa.data.graded: photos at native resolution x distortion levels, graded.csv) for
    # the distortion_rank loss: each step also orders ranking_group levels of one photo and type.
    ranking_set: str | None = None
    ranking_group: int = 3
    # An ensemble teacher (empty: one model). Its score is the members' mean on the normalised MOS scale
    # over the test-time views in ``tta`` ("identity", "flip"); the spread across them is kept per image.
    members: list[TeacherMember] = field(default_factory=list)
    tta: list[str] = field(default_factory=lambda: ["identity"])


@dataclass
class StageConfig:
    enabled: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)
    losses: dict[str, float] = field(default_factory=dict)
    # As the teacher's: a graded set for the distortion_rank loss, so a student stage also orders
    # ranking_group levels of one photo and type each step (fine-tuning on small MOS photos alone lets a
    # student lose the UHD ordering its teacher's labels gave it: studies/results/finetune_ranking.json).
    ranking_set: str | None = None
    ranking_group: int = 3


@dataclass
class FeaturePair:
    """A student module's output aligned (through a learned projector) with a teacher module's output."""

    student: str
    teacher: str


@dataclass
class PretrainStage(StageConfig):
    """Imitate the frozen teacher: its score, its pair order and its features (labels unused)."""

    losses: dict[str, float] = field(default_factory=lambda: {"kd_score": 1.0, "kd_rank": 1.0, "feature": 0.5})


@dataclass
class FinetuneStage(StageConfig):
    """MOS labels with the composite loss, a smaller distillation term and the head's order losses."""

    losses: dict[str, float] = field(
        default_factory=lambda: {"regression": 1.0, "rank": 1.0, "plcc": 0.5, "kd_score": 0.3, "order": 0.1}
    )


def _qat_losses() -> dict[str, float]:
    return dict(FinetuneStage().losses)


@dataclass
class QatOptimConfig(OptimConfig):
    """The QAT stage's optimiser: a short, small-lr fine-tune from the fine-tuned student.

    ``freeze_bn`` must stay true (BatchNorm is folded by TensorRT with its running statistics, see
    :mod:`edgeiqa.models.fake_quant`) and ``amp`` off (fake quantization rounds on the FP32 grid; half
    precision would move values across rounding boundaries): validation refuses other values.
    """

    epochs: int = 2
    lr: float = 1e-4
    warmup_epochs: float = 0.0
    freeze_bn: bool = True
    amp: Literal["auto", "off"] = "off"


@dataclass
class QatStage(StageConfig):
    """Optional fourth stage, quantization-aware transfer: fake-quantized INT8 fine-tuning of the fine-tuned
    student against the labels and the teacher's scores (the fine-tune losses), exported as ``onnx
    int8-qat`` (TensorRT Q/DQ). Off by default; enable it in YAML with ``student: {qat: {enabled: true}}``.

    Activation ranges are measured on ``calibration_images`` training images (``max`` of |x|, or its
    ``percentile``) before training and then fixed; ``keep_fp`` names module groups left in float.
    Writes ``<out>/student/qat/`` (checkpoints) and ``<out>/student/qat_final/`` (score calibration folded).
    """

    enabled: bool = False
    optim: QatOptimConfig = field(default_factory=QatOptimConfig)
    losses: dict[str, float] = field(default_factory=_qat_losses)
    activation_calibration: Literal["max", "percentile"] = "percentile"
    percentile: float = 99.99
    calibration_images: int = 128
    keep_fp: list[str] = field(default_factory=lambda: ["head"])


@dataclass
class StudentConfig:
    model: str = "eqcnet_mobilenetv3_small"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    feature_pairs: list[FeaturePair] = field(default_factory=lambda: [FeaturePair("embed", "fuse")])
    pretrain: PretrainStage = field(default_factory=PretrainStage)
    finetune: FinetuneStage = field(default_factory=FinetuneStage)
    qat: QatStage = field(default_factory=QatStage)
    calibration_split: Literal["val", "train"] = "val"


@dataclass
class LossOptions:
    """Settings the named losses share (scores inside training are on the normalised 0..1 MOS scale)."""

    fidelity_scale: float = 0.1  # P(i better than j) = sigmoid((s_i - s_j) / scale) in rank and kd_rank
    teacher_pair_scale: float = 0.05  # the same for the teacher's soft pair targets in kd_rank
    smooth_l1_beta: float = 0.1  # where regression and kd_score turn from quadratic to linear


@dataclass
class TrainingConfig:
    """The training part of an experiment: its name, seed, folder, device, data, models and stages.

    The whole experiment file (these keys plus ``export:`` and ``bench:``) is
    :class:`edgeiqa.experiment.ExperimentConfig`, a subclass on the application floor: training reads
    only what is here, so this floor knows nothing of the export and benchmark layers above it.
    """

    name: str = "experiment"
    seed: int = 0
    out: str = "runs/experiment"
    device: str = "auto"  # auto: cuda when available, else cpu
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    loss_options: LossOptions = field(default_factory=LossOptions)
