"""Which artifact to deploy on each device: the fastest one that keeps the FP32 student's accuracy.

Rule, per device: the reference is the device's FP32 student — the ONNX fp32 artifact (on ONNX
Runtime when it was run on several backends), else the torch eager fp32 checkpoint. Candidates are
the exported artifacts with an accuracy and a batch-1 latency, plus the reference itself. The choice is
the candidate with the lowest batch-1 p50 among those whose SRCC is at least ``reference SRCC -
budget``; ties go to the higher SRCC, then the smaller file, then the label. The reference always
qualifies, so when nothing else is within budget the reference itself is recommended. Torch eager
runs are not deployment artifacts: they are candidates only as the reference, and are reported side by
side with the choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

DEFAULT_BUDGET = 0.005
_EPS = 1e-12  # SRCC values printed with 4 decimals and equal on paper must compare equal


@dataclass(frozen=True)
class Candidate:
    """One artifact's numbers on one device, as the rule sees them."""

    label: str
    format: str
    precision: str
    backend: str
    p50_ms: float
    srcc: float
    size_bytes: float | None = None
    kind: str = "artifact"
    torch_device: str | None = None

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> "Candidate | None":
        """None when the entry failed or lacks an accuracy or a batch-1 latency."""
        if entry.get("error") or not entry.get("accuracy"):
            return None
        lat = next((x for x in entry.get("latency", []) if x.get("batch") == 1 and not x.get("error")), None)
        if lat is None:
            return None
        runtime = entry.get("runtime") or {}
        return cls(label=entry["label"], format=entry["format"], precision=entry["precision"],
                   backend=entry["backend"], p50_ms=float(lat["p50_ms"]), srcc=float(entry["accuracy"]["srcc"]),
                   size_bytes=entry.get("size_bytes"), kind=entry.get("kind", "artifact"),
                   torch_device=runtime.get("device") if entry.get("kind") == "torch" else None)


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


def recommend_device(device: str, entries: Sequence[dict[str, Any]], budget: float = DEFAULT_BUDGET) -> Recommendation:
    """Apply the rule (module docstring) to one device's result entries."""
    candidates = [c for c in (Candidate.from_entry(e) for e in entries) if c is not None]
    reference, kind = find_reference(candidates)
    torch_fp32 = [c for c in candidates if c.kind == "torch" and _is_fp32(c)]
    if reference is None:
        return Recommendation(device, budget, None, None, None, torch_fp32=torch_fp32,
                              reason="no FP32 student with an accuracy on this device (bench the fp32 ONNX or the "
                                     "torch checkpoint with --data) so the accuracy budget cannot be applied")
    pool = [c for c in candidates if c.kind != "torch" or c == reference]
    within = sorted((c for c in pool if c.srcc >= reference.srcc - budget - _EPS), key=_rank_key)
    choice = within[0]
    return Recommendation(device, budget, choice, reference, kind, within, torch_fp32,
                          _reason(choice, reference, kind, budget, len(within)))


def _reason(choice: Candidate, reference: Candidate, kind: str, budget: float, n_within: int) -> str:
    ref = f"{kind} reference {reference.label!r} (SRCC {reference.srcc:.4f}, p50 {reference.p50_ms:.3g} ms)"
    if choice == reference:
        if n_within == 1:
            return f"no other artifact is within {budget:g} SRCC of the {ref}: the reference itself"
        return f"the {ref} is the fastest artifact within {budget:g} SRCC"
    speedup = reference.p50_ms / choice.p50_ms if choice.p50_ms > 0 else float("inf")
    return (f"fastest artifact within {budget:g} SRCC of the {ref}: SRCC {choice.srcc:.4f} "
            f"({choice.srcc - reference.srcc:+.4f}), {speedup:.2f}x the reference's speed")


def recommend(by_device: dict[str, Sequence[dict[str, Any]]], budget: float = DEFAULT_BUDGET) -> list[Recommendation]:
    """One :class:`Recommendation` per device, in the order of ``by_device``."""
    return [recommend_device(device, entries, budget) for device, entries in by_device.items()]
