"""Which artifact to deploy on each device: the fastest one that keeps the FP32 student's accuracy.

Rule, per device: the reference is the device's FP32 student — the ONNX fp32 artifact (on ONNX
Runtime when it was run on several backends), else the torch eager fp32 checkpoint. Candidates are
the exported artifacts with an accuracy and a batch-1 latency, plus the reference itself.

"Within ``budget`` SRCC of the reference" is decided by a **paired bootstrap** of
SRCC(candidate, MOS) - SRCC(reference, MOS) on the images both scored (:mod:`.intervals`): a
candidate is ``within`` when the whole 95 % interval of the difference lies above -budget,
``outside`` when it lies wholly below, and ``undecided`` when it straddles -budget — then the data
cannot tell, and the report says so instead of ranking it. Result files without per-image scores
(written before they were kept) fall back to the point estimates, and the recommendation says so.

The choice is the ``within`` candidate with the lowest batch-1 p50; ties go to the higher SRCC, then
the smaller file, then the label. The reference always qualifies, so when nothing else is within
budget the reference itself is recommended. Torch eager runs are not deployment artifacts: they are
candidates only as the reference, and are reported side by side with the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from edgeiqa.report import DEFAULT_BUDGET
from edgeiqa.report.intervals import OUTSIDE, UNDECIDED, WITHIN, PairedBootstrap, PairedDifference

_EPS = 1e-12  # SRCC values printed with 4 decimals and equal on paper must compare equal


@dataclass(frozen=True)
class Candidate:
    """One artifact's numbers on one device, as the rule sees them.

    ``scores``/``mos``/``images`` are the per-image scores of the entry and its run's dataset, when the
    result file has them (None otherwise); they are left out of equality and repr.
    """

    label: str
    format: str
    precision: str
    backend: str
    p50_ms: float
    srcc: float
    size_bytes: float | None = None
    kind: str = "artifact"
    torch_device: str | None = None
    scores: tuple[float | None, ...] | None = field(default=None, compare=False, repr=False)
    mos: tuple[float, ...] | None = field(default=None, compare=False, repr=False)
    images: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_entry(cls, entry: dict[str, Any], dataset: dict[str, Any] | None = None) -> Candidate | None:
        """None when the entry failed or lacks an accuracy or a batch-1 latency."""
        if entry.get("error") or not entry.get("accuracy"):
            return None
        lat = next((x for x in entry.get("latency", []) if x.get("batch") == 1 and not x.get("error")), None)
        if lat is None:
            return None
        runtime = entry.get("runtime") or {}
        scores, mos, images = _per_image(entry, dataset)
        return cls(
            label=entry["label"],
            format=entry["format"],
            precision=entry["precision"],
            backend=entry["backend"],
            p50_ms=float(lat["p50_ms"]),
            srcc=float(entry["accuracy"]["srcc"]),
            size_bytes=entry.get("size_bytes"),
            kind=entry.get("kind", "artifact"),
            torch_device=runtime.get("device") if entry.get("kind") == "torch" else None,
            scores=scores,
            mos=mos,
            images=images,
        )

    @property
    def paired_ready(self) -> bool:
        return self.scores is not None and self.mos is not None


def _per_image(entry: dict[str, Any], dataset: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    scores, mos = entry.get("scores"), (dataset or {}).get("mos")
    if not isinstance(scores, list) or not isinstance(mos, list) or len(scores) != len(mos):
        return None, None, None
    images = (dataset or {}).get("images")
    return tuple(scores), tuple(float(m) for m in mos), tuple(images) if isinstance(images, list) else None


@dataclass(frozen=True)
class Comparison:
    """One candidate against the reference: ``decision`` is ``within``, ``outside`` or ``undecided``;
    ``paired`` is the paired bootstrap (None when it could not be run: ``basis`` says why)."""

    candidate: Candidate
    decision: str
    paired: PairedDifference | None
    basis: str  # "paired bootstrap" or "point estimate: <why no pairing>"


@dataclass(frozen=True)
class Recommendation:
    """The outcome for one device; ``choice`` is None only when no reference could be found."""

    device: str
    budget: float
    choice: Candidate | None
    reference: Candidate | None
    reference_kind: str | None  # "onnx fp32" or "torch fp32"
    within_budget: list[Candidate] = field(default_factory=list)
    torch_fp32: list[Candidate] = field(default_factory=list)
    reason: str = ""
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def undecided(self) -> list[Comparison]:
        """Candidates the data cannot place inside or outside the budget."""
        return [c for c in self.comparisons if c.decision == UNDECIDED]

    def comparison(self, label: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.candidate.label == label), None)


def _is_fp32(c: Candidate) -> bool:
    return c.precision.lower() in ("fp32", "float32", "f32")


def find_reference(candidates: Sequence[Candidate]) -> tuple[Candidate | None, str | None]:
    """The device's FP32 student: ONNX fp32 (ONNX Runtime first), else torch fp32."""
    onnx = [c for c in candidates if c.format == "onnx" and _is_fp32(c)]
    if onnx:
        return sorted(onnx, key=lambda c: c.backend != "onnxruntime")[0], "onnx fp32"
    torch = [c for c in candidates if c.kind == "torch" and _is_fp32(c)]
    return (torch[0], "torch fp32") if torch else (None, None)


def _rank_key(c: Candidate) -> tuple:
    size = c.size_bytes if c.size_bytes is not None else float("inf")
    return (c.p50_ms, -c.srcc, size, c.label)


def compare_with_reference(
    candidate: Candidate, reference: Candidate, budget: float, bootstrap: PairedBootstrap | None
) -> Comparison:
    """The paired decision where both have per-image scores on the same images, else the point estimate."""
    why = _unpaired_reason(candidate, reference, bootstrap)
    if why is None:
        paired = bootstrap.compare(candidate.scores, budget)  # type: ignore[union-attr, arg-type]
        if paired is not None:
            return Comparison(candidate, paired.decision, paired, "paired bootstrap")
        why = "fewer than 4 images scored by both"
    point = WITHIN if candidate.srcc >= reference.srcc - budget - _EPS else OUTSIDE
    return Comparison(candidate, point, None, f"point estimate: {why}")


def _unpaired_reason(candidate: Candidate, reference: Candidate, bootstrap: PairedBootstrap | None) -> str | None:
    if bootstrap is None or not candidate.paired_ready:
        return "no per-image scores in the result file"
    if candidate.mos != reference.mos or (
        candidate.images and reference.images and candidate.images != reference.images
    ):
        return "scored on other images than the reference"
    return None


def recommend_device(
    device: str,
    entries: Sequence[dict[str, Any]],
    budget: float = DEFAULT_BUDGET,
    datasets: Sequence[dict[str, Any] | None] | None = None,
) -> Recommendation:
    """Apply the rule (module docstring) to one device's result entries; ``datasets[i]`` is the
    dataset block of the run ``entries[i]`` came from (its MOS pairs the per-image scores)."""
    blocks = list(datasets) if datasets is not None else [None] * len(entries)
    candidates = [c for c in (Candidate.from_entry(e, d) for e, d in zip(entries, blocks)) if c is not None]
    reference, kind = find_reference(candidates)
    torch_fp32 = [c for c in candidates if c.kind == "torch" and _is_fp32(c)]
    if reference is None:
        return Recommendation(
            device,
            budget,
            None,
            None,
            None,
            torch_fp32=torch_fp32,
            reason="no FP32 student with an accuracy on this device (bench the fp32 ONNX or the "
            "torch checkpoint with --data) so the accuracy budget cannot be applied",
        )
    bootstrap = PairedBootstrap(reference.scores, reference.mos) if reference.paired_ready else None
    pool = [c for c in candidates if c.kind != "torch" or c == reference]
    comparisons = [compare_with_reference(c, reference, budget, bootstrap) for c in pool if c != reference]
    within = sorted([reference] + [c.candidate for c in comparisons if c.decision == WITHIN], key=_rank_key)
    choice = within[0]
    rec = Recommendation(device, budget, choice, reference, kind, within, torch_fp32, "", comparisons)
    return replace(rec, reason=_reason(rec))


def _reason(rec: Recommendation) -> str:
    choice, reference, budget = rec.choice, rec.reference, rec.budget
    ref = (
        f"{rec.reference_kind} reference {reference.label!r} (SRCC {reference.srcc:.4f}, p50 {reference.p50_ms:.3g} ms)"
    )
    if choice == reference:
        shown = "is shown to be" if rec.undecided else "is"
        text = (
            f"no other artifact {shown} within {budget:g} SRCC of the {ref}: the reference itself"
            if len(rec.within_budget) == 1
            else f"the {ref} is the fastest artifact within {budget:g} SRCC"
        )
    else:
        speedup = reference.p50_ms / choice.p50_ms if choice.p50_ms > 0 else float("inf")
        comp = rec.comparison(choice.label)
        how = f"{comp.paired.text()}, paired" if comp and comp.paired else f"{choice.srcc - reference.srcc:+.4f}"
        text = (
            f"fastest artifact within {budget:g} SRCC of the {ref}: SRCC {choice.srcc:.4f} "
            f"({how}), {speedup:.2f}x the reference's speed"
        )
    faster = [c for c in rec.undecided if c.candidate.p50_ms < choice.p50_ms]
    if faster:
        names = ", ".join(f"{c.candidate.label} ({c.paired.text()})" for c in faster if c.paired)
        text += (
            f"; the data cannot tell whether the faster {names} "
            f"{'is' if len(faster) == 1 else 'are'} within {budget:g}: measure on more images"
        )
    if any(c.paired is None for c in rec.comparisons):
        text += "; some decisions rest on point estimates only (no per-image scores: re-run edgeiqa bench)"
    return text


def recommend(
    by_device: dict[str, Sequence[dict[str, Any]]],
    budget: float = DEFAULT_BUDGET,
    datasets: dict[str, Sequence[dict[str, Any] | None]] | None = None,
) -> list[Recommendation]:
    """One :class:`Recommendation` per device, in the order of ``by_device``."""
    return [
        recommend_device(device, entries, budget, (datasets or {}).get(device)) for device, entries in by_device.items()
    ]
