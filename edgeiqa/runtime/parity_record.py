"""The parity record: what the export layer's gate found for one artifact, with an explicit verdict.

It lives beside the manifest (which stores it as JSON under ``parity``) rather than in the export
layer, because the torch-free runtime must read the verdict too (``Predictor.load`` refuses a failed
artifact) and the runtime imports no other edgeiqa layer. Pure Python: no numpy, no scipy.

Verdicts: ``passed`` (every check of the artifact's precision class held), ``failed`` (one did not;
``reason`` names the first), ``unverified`` (the gate could not run here, e.g. Core ML off macOS, or
an old manifest whose record carries no verdict). Like Polygraphy's comparison results, the record is
a small object that turns into JSON and back, so a run on one machine can be judged on another.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from edgeiqa.errors import ConfigError


class Verdict(StrEnum):
    """The gate's outcome. A ``StrEnum`` so it compares equal to, and serialises as, its string: the
    manifests written before it read and write byte for byte the same."""

    PASSED = "passed"
    FAILED = "failed"
    UNVERIFIED = "unverified"


PASSED, FAILED, UNVERIFIED = Verdict.PASSED, Verdict.FAILED, Verdict.UNVERIFIED
VERDICTS = tuple(Verdict)
ALLOW_INVALID_FLAG = "--allow-invalid"

# How a failed check reads: its key (as in the manifest and the tolerances) and, where the key alone
# is cryptic, what it measures.
_LABELS = {"rank_agreement": "rank_agreement SRCC(artifact, {reference})"}


@dataclass(frozen=True)
class ParityCheck:
    """One rule of the gate: ``value`` ``op`` ``limit`` (``op`` is ``<=`` or ``>=``)."""

    name: str
    value: float | None
    limit: float
    op: str
    passed: bool

    def describe(self, reference: str = "reference", n: int | None = None) -> str:
        """``rank_agreement SRCC(artifact, torch) = 0.972 < 0.99 on 12 images``."""
        label = _LABELS.get(self.name, self.name).format(reference=reference)
        where = f" on {n} images" if n is not None else ""
        if self.value is None:
            return f"{label} could not be measured{where}"
        shown = ">=" if self.op == ">=" else "<="
        if not self.passed:
            shown = "<" if self.op == ">=" else ">"
        return f"{label} = {self.value:.4g} {shown} {self.limit:g}{where}"

    def short(self) -> str:
        """``rank_agreement 0.9983 >= 0.99``: one item of a passed gate's summary."""
        value = "n/a" if self.value is None else f"{self.value:.4g}"
        return f"{self.name} {value} {self.op if self.passed else ('<' if self.op == '>=' else '>')} {self.limit:g}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityCheck:
        return cls(
            name=str(data["name"]),
            value=None if data.get("value") is None else float(data["value"]),
            limit=float(data["limit"]),
            op=str(data.get("op", "<=")),
            passed=bool(data["passed"]),
        )


@dataclass
class ParityRecord:
    """The gate's outcome for one artifact against one reference on one image set.

    ``rule`` holds the thresholds of the artifact's precision class that were applied (so a manifest
    says what it was held to); ``checks`` what each one measured. The measures are kept even when no
    rule uses them (``mean_abs_diff`` for FP16, say). ``extra`` keeps keys this version does not know
    (``previous_sha256`` from a re-verification, fields of newer writers).
    """

    verdict: Verdict
    reason: str
    n: int = 0
    rule: dict[str, Any] = field(default_factory=dict)
    checks: list[ParityCheck] = field(default_factory=list)
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    srcc_vs_reference: float | None = None
    delta_srcc: float | None = None
    delta_srcc_basis: str | None = None
    reference_vs_mos: dict[str, float] | None = None
    artifact_vs_mos: dict[str, float] | None = None
    reference: str | None = None
    images: dict[str, Any] | None = None
    backend: dict[str, Any] | None = None
    seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.verdict = Verdict(self.verdict)
        except ValueError:
            raise ConfigError(f"parity verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}") from None

    # -- the verdict, asked the way callers need it ----------------------------------------------
    @property
    def passed(self) -> bool:
        return self.verdict == PASSED

    @property
    def failed(self) -> bool:
        return self.verdict == FAILED

    @property
    def verified(self) -> bool:
        return self.verdict != UNVERIFIED

    @property
    def valid(self) -> bool:
        """What the manifest's ``valid`` says: not failed (an unverified artifact may still be used)."""
        return self.verdict != FAILED

    @property
    def failed_checks(self) -> list[ParityCheck]:
        return [c for c in self.checks if not c.passed]

    def failure_line(self, artifact: str, precision: str | None = None) -> str:
        """One short line for a refusal: what failed, by how much, and the flag that overrides it."""
        what = f"{precision} parity gate" if precision else "parity gate"
        return f"{artifact}: {what} failed: {self.reason}; pass {ALLOW_INVALID_FLAG} to use it anyway"

    # -- JSON ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        extra = data.pop("extra")
        data = {k: v for k, v in data.items() if v is not None}
        return {**data, **extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityRecord:
        """A record from its JSON, or from a manifest written before verdicts (``passed``/``skipped`` keys)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a parity record must be a JSON object, got {type(data).__name__}")
        if "verdict" not in data:
            return cls._from_legacy(data)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        values["checks"] = [ParityCheck.from_dict(c) for c in data.get("checks") or []]
        values.setdefault("reason", "")
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def skipped(cls, reason: str) -> ParityRecord:
        """The record of an artifact the gate could not run here: usable, but unverified."""
        return cls(verdict=UNVERIFIED, reason=f"not verified: {reason}")

    @classmethod
    def _from_legacy(cls, data: dict[str, Any]) -> ParityRecord:
        # Old records: {"skipped": why, "passed": None} or {"passed": bool, "reason": ..., "value": ...}.
        if data.get("skipped") is not None or data.get("passed") is None:
            verdict = UNVERIFIED
            reason = (
                f"not verified: {data['skipped']}"
                if data.get("skipped")
                else (data.get("reason") or "the record has no verdict")
            )
        else:
            verdict = PASSED if data["passed"] else FAILED
            reason = data.get("reason") or ""
        measures = (
            "n",
            "rule",
            "max_abs_diff",
            "mean_abs_diff",
            "srcc_vs_reference",
            "delta_srcc",
            "delta_srcc_basis",
            "reference_vs_mos",
            "artifact_vs_mos",
            "reference",
            "images",
            "backend",
            "seconds",
        )
        values = {k: data[k] for k in measures if k in data}
        dropped = {"skipped", "passed", "verified", "reason", *measures}
        return cls(
            verdict=verdict, reason=str(reason), **values, extra={k: v for k, v in data.items() if k not in dropped}
        )
