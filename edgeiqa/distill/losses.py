"""Named losses combined by a named weighted sum (torchdistill style).

Every loss reads what it needs from one :class:`LossInputs` bundle, so a config turns terms on and off
by name and weight alone; the few settings they share (a pair-probability scale, the smooth-L1 beta)
come from the config's ``loss_options`` (:class:`~edgeiqa.distill.config.LossOptions`), passed to each
loss by :class:`WeightedLoss`. Scores inside training are on a normalised 0..1 MOS scale; the score
calibration maps them to the dataset's MOS scale afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from edgeiqa.distill.config import LossOptions
from edgeiqa.errors import ConfigError


@dataclass
class LossInputs:
    pred: torch.Tensor  # [N] student (or teacher, when training it) scores
    target: torch.Tensor | None = None  # [N] normalised MOS, None on unlabelled transfer data
    teacher_pred: torch.Tensor | None = None  # [N] frozen teacher scores, same scale
    features: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict
    )  # name -> (projected student, teacher)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # already-computed terms, e.g. order losses


LossFn = Callable[[LossInputs, LossOptions], torch.Tensor]
DEFAULT_OPTIONS = LossOptions()  # frozen in use: nothing writes to it
LOSSES: dict[str, LossFn] = {}


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    def wrap(fn: LossFn) -> LossFn:
        LOSSES[name] = fn
        return fn

    return wrap


def _need(value: torch.Tensor | None, loss: str, what: str) -> torch.Tensor:
    if value is None:
        raise ConfigError(f"loss {loss!r} needs {what}, which this stage does not provide; set its weight to 0")
    return value


def pairwise_fidelity(pred: torch.Tensor, target_prob: torch.Tensor, scale: float = 0.1) -> torch.Tensor:
    """Fidelity loss between P(i better than j) = sigmoid((s_i - s_j)/scale) and a target probability.

    Fidelity (1 - sqrt(p q) - sqrt((1-p)(1-q))) stays bounded and has no vanishing gradient at ties,
    which is why UNIQUE and later BIQA work prefer it to cross-entropy for in-batch ranking.
    """
    diff = (pred[:, None] - pred[None, :]) / scale
    prob = torch.sigmoid(diff)
    eps = 1e-8
    loss = 1 - torch.sqrt(prob * target_prob + eps) - torch.sqrt((1 - prob) * (1 - target_prob) + eps)
    off_diagonal = ~torch.eye(len(pred), dtype=torch.bool, device=pred.device)
    return loss[off_diagonal].mean()


def _order_prob(scores: torch.Tensor, soft_scale: float | None = None) -> torch.Tensor:
    diff = scores[:, None] - scores[None, :]
    if soft_scale is None:
        return (torch.sign(diff) + 1) / 2  # 1 if better, 0.5 tie, 0 worse
    return torch.sigmoid(diff / soft_scale)


@register_loss("regression")
def regression_loss(inputs: LossInputs, options: LossOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """Smooth L1 on normalised MOS: robust to the few badly-rated images every IQA set has."""
    target = _need(inputs.target, "regression", "MOS labels")
    return F.smooth_l1_loss(inputs.pred, target, beta=options.smooth_l1_beta)


@register_loss("rank")
def rank_loss(inputs: LossInputs, options: LossOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    target = _need(inputs.target, "rank", "MOS labels")
    return pairwise_fidelity(inputs.pred, _order_prob(target), scale=options.fidelity_scale)


@register_loss("plcc")
def plcc_loss(inputs: LossInputs, options: LossOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """1 - PLCC over the batch: rewards a linear relation regardless of offset and scale."""
    target = _need(inputs.target, "plcc", "MOS labels")
    p = inputs.pred - inputs.pred.mean()
    t = target - target.mean()
    return 1 - (p * t).sum() / (p.norm() * t.norm() + 1e-8)


@register_loss("kd_score")
def kd_score_loss(inputs: LossInputs, options: LossOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """The teacher's score as a soft target (pre-training works on unlabelled transfer data)."""
    teacher = _need(inputs.teacher_pred, "kd_score", "teacher scores")
    return F.smooth_l1_loss(inputs.pred, teacher, beta=options.smooth_l1_beta)


@register_loss("kd_rank")
def kd_rank_loss(inputs: LossInputs, options: LossOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """Pairwise rank agreement with the teacher, using its soft pair probabilities as targets."""
    teacher = _need(inputs.teacher_pred, "kd_rank", "teacher scores")
    return pairwise_fidelity(
        inputs.pred, _order_prob(teacher, soft_scale=options.teacher_pair_scale), scale=options.fidelity_scale
    )


@register_loss("feature")
def feature_alignment_loss(inputs: LossInputs, options: LossOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """Cosine distance between projected student features and the teacher's, averaged over hooks."""
    if not inputs.features:
        raise ConfigError("loss 'feature' needs feature hooks; list them under feature_pairs in the config")
    terms = [1 - F.cosine_similarity(s, t.detach(), dim=1).mean() for s, t in inputs.features.values()]
    return torch.stack(terms).mean()


@register_loss("order")
def order_loss(inputs: LossInputs, options: LossOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """The comparison head's order losses (pivots in order, embeddings near their pivots), summed."""
    terms = [v for k, v in inputs.extra.items() if k.startswith("order/")]
    if not terms:
        raise ConfigError("loss 'order' needs a student with a comparison head (order_losses)")
    return torch.stack(terms).sum()


@register_loss("distortion_rank")
def distortion_rank_loss(inputs: LossInputs, options: LossOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """Order within graded groups (same photo and type, higher level worse), computed by the train module
    on its ranking feed (:mod:`edgeiqa.distill.ranking`) and passed in ``extra``."""
    if "distortion_rank" not in inputs.extra:
        raise ConfigError("loss 'distortion_rank' needs a graded set: set ranking_set (a graded.csv) beside it")
    return inputs.extra["distortion_rank"]


class WeightedLoss:
    """sum(weight * LOSSES[name](inputs, options)) over the non-zero weights, each term kept for logging."""

    def __init__(self, weights: dict[str, float], options: LossOptions | None = None) -> None:
        unknown = sorted(set(weights) - set(LOSSES))
        if unknown:
            raise ConfigError(f"unknown loss name(s) {unknown}; known: {sorted(LOSSES)}")
        self.weights = {name: float(w) for name, w in weights.items() if w}
        self.options = options if options is not None else LossOptions()
        if not self.weights:
            raise ConfigError("every loss weight is zero: nothing to train")

    def __call__(self, inputs: LossInputs) -> tuple[torch.Tensor, dict[str, float]]:
        parts = {name: LOSSES[name](inputs, self.options) for name in self.weights}
        total = sum(self.weights[name] * value for name, value in parts.items())
        return total, {name: float(value.detach()) for name, value in parts.items()}
