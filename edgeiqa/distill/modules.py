"""What each stage trains, as :class:`TrainModule` s: ``forward(batch) -> (loss, named parts)``.

Intermediate features are pulled with forward hooks on named submodules (torchdistill style), so the
models stay untouched. A hook name ``"embed"`` captures that module's output; ``"head:input"`` its
first input. Feature maps are mean-pooled to vectors before the learned projector aligns the
student's width with the teacher's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from edgeiqa.distill.config import FeaturePair
from edgeiqa.distill.loop import TrainModule
from edgeiqa.distill.losses import LossInputs, WeightedLoss
from edgeiqa.distill.ranking import DISTORTION_RANK, distortion_rank_term
from edgeiqa.errors import ConfigError


class FeatureHooks:
    """Captures the latest output (or input) of named submodules during a forward pass."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        self.features: dict[str, torch.Tensor] = {}
        self._handles = []
        modules = dict(model.named_modules())
        for spec in names:
            module_name, _, part = spec.partition(":")
            if module_name not in modules:
                raise ConfigError(
                    f"no submodule {module_name!r} to hook in {type(model).__name__}; "
                    f"top-level ones: {[n for n, _ in model.named_children()]}"
                )
            if part not in ("", "input"):
                raise ConfigError(f"hook {spec!r}: the part after ':' must be 'input'")
            self._handles.append(modules[module_name].register_forward_hook(self._capture(spec, part == "input")))

    def _capture(self, spec: str, want_input: bool):
        def hook(_module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            value = inputs[0] if want_input else output
            self.features[spec] = value.mean(dim=(2, 3)) if value.dim() == 4 else value

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def teacher_forward(teacher: nn.Module, views: dict[str, torch.Tensor]) -> torch.Tensor:
    return teacher(views["global_view"], views["patches"], views["patch_mask"])


def student_forward(student: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return student(*(inputs[name] for name in student.contract.input_names))


def to_device(batch: Any, device: torch.device) -> Any:
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def ranking_extra(
    ranking: Iterator[dict[str, Any]] | None,
    loss: WeightedLoss,
    device: torch.device,
    forward: Callable[[dict[str, Any]], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The ``distortion_rank`` term on the feed's next graded group, when there is a feed and ``loss``
    weighs the term (the teacher's and the student's modules alike)."""
    if ranking is None or DISTORTION_RANK not in loss.weights:
        return {}
    group = to_device(next(ranking), device)
    return {DISTORTION_RANK: distortion_rank_term(forward, group, loss.options.fidelity_scale)}


class TeacherTrainModule(TrainModule):
    """The teacher on MOS batches; with a ``ranking`` feed, each step also orders one graded group."""

    def __init__(self, teacher: nn.Module, loss: WeightedLoss, ranking: Iterator[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.teacher = teacher
        self.loss = loss
        self.ranking = ranking

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        device = next(self.parameters()).device
        batch = to_device(batch, device)
        pred = teacher_forward(self.teacher, batch["teacher"])
        extra = ranking_extra(self.ranking, self.loss, device, lambda g: teacher_forward(self.teacher, g["teacher"]))
        return self.loss(LossInputs(pred=pred, target=batch["mos"], extra=extra))


class StudentTrainModule(TrainModule):
    """The student (+ projectors) learning from labels, a frozen teacher, or both.

    The teacher is kept out of the module tree (``self._frozen``) so it is neither trained, wrapped by
    DDP nor written into the student's checkpoints.
    """

    def __init__(
        self,
        student: nn.Module,
        loss: WeightedLoss,
        teacher: nn.Module | None = None,
        feature_pairs: list[FeaturePair] | None = None,
        use_labels: bool = True,
        probe_batch: dict[str, Any] | None = None,
        ranking: Iterator[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.student = student
        self.loss = loss
        self.use_labels = use_labels
        self.ranking = ranking  # graded groups for distortion_rank, as the teacher's module takes them
        self._frozen = [teacher] if teacher is not None else []
        pairs = feature_pairs if (teacher is not None and "feature" in loss.weights) else []
        self.pairs = list(pairs)
        wants_order = "order" in loss.weights
        self.student_hooks = FeatureHooks(student, [p.student for p in pairs] + (["embed"] if wants_order else []))
        self.teacher_hooks = FeatureHooks(teacher, [p.teacher for p in pairs]) if teacher is not None else None
        self.projectors = nn.ModuleDict()
        if pairs:
            if probe_batch is None:
                raise ValueError("feature alignment needs a probe batch to size its projectors")
            self._build_projectors(probe_batch)
        if teacher is not None:
            teacher.eval().requires_grad_(False)

    def remove_hooks(self) -> None:
        """Detach the feature hooks from the student and the (shared, frozen) teacher."""
        self.student_hooks.remove()
        if self.teacher_hooks is not None:
            self.teacher_hooks.remove()

    @property
    def teacher(self) -> nn.Module | None:
        return self._frozen[0] if self._frozen else None

    def _build_projectors(self, probe: dict[str, Any]) -> None:
        with torch.no_grad():
            teacher_forward(self.teacher, probe["teacher"])
            was_training = self.student.training
            student_forward(self.student.eval(), probe["student"])
            self.student.train(was_training)
        for i, pair in enumerate(self.pairs):
            s_dim = self.student_hooks.features[pair.student].shape[1]
            t_dim = self.teacher_hooks.features[pair.teacher].shape[1]
            self.projectors[str(i)] = nn.Linear(s_dim, t_dim)

    def train(self, mode: bool = True) -> StudentTrainModule:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # frozen: dropout and norm statistics stay in inference mode
        return self

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        device = next(self.student.parameters()).device
        batch = to_device(batch, device)
        teacher_pred = batch.get("teacher_score")  # a label table's score stands in for a live teacher
        if self.teacher is not None:
            self.teacher.to(device)
            with torch.no_grad():
                teacher_pred = teacher_forward(self.teacher, batch["teacher"])
        pred = student_forward(self.student, batch["student"])
        target = batch["mos"] if self.use_labels else None
        features = {
            pair.student: (
                self.projectors[str(i)](self.student_hooks.features[pair.student]),
                self.teacher_hooks.features[pair.teacher],
            )
            for i, pair in enumerate(self.pairs)
        }
        extra: dict[str, torch.Tensor] = {}
        if "order" in self.loss.weights:
            order_target = target if target is not None else teacher_pred
            extra = {
                f"order/{k}": v
                for k, v in self.student.order_losses(self.student_hooks.features["embed"], order_target).items()
            }
        # After the order losses: the group's forward pass overwrites the hooked features they read.
        extra |= ranking_extra(self.ranking, self.loss, device, lambda g: student_forward(self.student, g["student"]))
        return self.loss(
            LossInputs(pred=pred, target=target, teacher_pred=teacher_pred, features=features, extra=extra)
        )
