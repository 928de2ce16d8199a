"""One experiment = one YAML file mapped onto these dataclasses (see configs/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgeiqa.configs import load_yaml


@dataclass
class DataConfig:
    dataset: str = "csv"  # a loader name from edgeiqa.data.loaders
    root: str = "runs/quickstart/data/mos.csv"
    options: dict[str, Any] = field(default_factory=dict)  # passed to the loader, e.g. mos_range: [0, 100]
    # "official" uses the dataset's own train/val/test split when it has one, else a seeded split by group
    # (content) with `fractions`; "random" always re-splits by group.
    split: Literal["official", "random"] = "official"
    split_seed: int = 0
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    # A folder of (possibly unlabelled) images for pre-training; None: the training split, labels unused.
    transfer_dir: str | None = None
    workers: int = 0  # DataLoader worker processes (0: decode in the training process)


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
    max_steps_per_epoch: int | None = None  # caps an epoch on large sets (quick presets)
    # Fine-tuning a pretrained backbone (see edgeiqa.distill.finetune): its lr = lr * backbone_lr_mult;
    # freeze_bn keeps BatchNorm statistics (small CPU batches); the backbone can sit out the first epochs.
    backbone_lr_mult: float = 1.0
    freeze_bn: bool = False
    freeze_backbone_epochs: int = 0


@dataclass
class TeacherConfig:
    model: str = "eiqanet_cpu"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    optim: OptimConfig = field(default_factory=OptimConfig)
    losses: dict[str, float] = field(default_factory=lambda: {"regression": 1.0, "rank": 1.0, "plcc": 0.5})


@dataclass
class StageConfig:
    enabled: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)
    losses: dict[str, float] = field(default_factory=dict)


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


@dataclass
class StudentConfig:
    model: str = "eqcnet_mobilenetv3_small"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    feature_pairs: list[FeaturePair] = field(default_factory=lambda: [FeaturePair("embed", "fuse")])
    pretrain: PretrainStage = field(default_factory=PretrainStage)
    finetune: FinetuneStage = field(default_factory=FinetuneStage)
    calibration_split: Literal["val", "train"] = "val"


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    seed: int = 0
    out: str = "runs/experiment"
    device: str = "auto"  # auto: cuda when available, else cpu
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)

    @classmethod
    def load(cls, path: Path | str) -> "ExperimentConfig":
        return load_yaml(cls, path)
