"""The parity gate: run an artifact beside the torch model on the same arrays and compare the scores.

Both sides get exactly what deployment gets: the runtime's preprocessing (:func:`iter_feeds`) and
the runtime's runner for the format (:func:`edgeiqa.runtime.runners.runner_for`). The reference is
the torch model (``reference: "torch"``), or, for a TensorRT engine built on a device without torch,
the ONNX file it was built from. A quantization-aware (QAT) source is compared with the float student
it was trained beside (``source.reference``), like post-training INT8 artifacts, not with its own
fake-quantized self (which the ONNX reproduces to ~1e-6 and would pass any INT8 rule). Measured: max and mean
|Δscore| (MOS scale), rank agreement
SRCC(artifact, reference), and, when MOS is known, SRCC/PLCC of both against MOS. The rules depend on
the precision class (:class:`~edgeiqa.export.options.Tolerances`): every class is held to rank
agreement with the reference on the same images (fidelity), FP32 also to max |Δscore|, FP16 and
INT8 also to ΔSRCC = SRCC(reference, MOS) - SRCC(artifact, MOS) when MOS is known, else
1 - SRCC(artifact, reference). The result is a :class:`~edgeiqa.runtime.parity_record.ParityRecord`,
stored in the manifest as JSON.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeiqa.export.artifact import SCORE_OUTPUT
from edgeiqa.export.formats import ExportFormat, precision_class
from edgeiqa.export.images import ImageSet, iter_feeds
from edgeiqa.export.options import ExportOptions, Tolerances
from edgeiqa.export.reuse import on_forget
from edgeiqa.metrics import plcc, srcc
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.manifest import ArtifactManifest
from edgeiqa.runtime.parity_record import FAILED, PASSED, ParityCheck, ParityRecord
from edgeiqa.runtime.runners import runner_for

if TYPE_CHECKING:  # source.py imports torch; a device gating an engine against its ONNX has none
    from edgeiqa.export.source import ExportSource

Scorer = Callable[[dict[str, np.ndarray]], np.ndarray]


def run_parity(
    source: ExportSource,
    artifact: Path,
    manifest: ArtifactManifest,
    fmt: ExportFormat,
    images: ImageSet,
    options: ExportOptions,
) -> ParityRecord:
    """Score ``images`` with the torch model and the artifact; the comparison record (see module doc)."""
    runner = runner_for(manifest, artifact, fmt.backend, **runner_options(fmt, options))
    return gate_runner(
        runner, torch_scorer(source), source.reference_name, images, source.contract, manifest.precision, options
    )


def gate_runner(
    runner: Any,
    reference: Scorer,
    reference_name: str,
    images: ImageSet,
    contract: PreprocessContract,
    precision: str,
    options: ExportOptions,
) -> ParityRecord:
    """Run ``runner`` (inactive) and ``reference`` on the same batches of ``images`` and compare."""
    start = time.perf_counter()
    expected, scores = [], []
    with runner:
        output = score_output(runner)
        for feed in iter_feeds(images.paths, contract, options.batch_size):
            expected.append(np.asarray(reference(feed), dtype=np.float64).reshape(-1))
            scores.append(np.asarray(runner.infer(feed)[output], dtype=np.float64).reshape(-1))
        backend = {k: v for k, v in runner.info().items() if k != "artifact"}
    mos = None if images.mos is None else np.asarray(images.mos, dtype=np.float64)
    record = compare(
        np.concatenate(scores), np.concatenate(expected), mos, precision, options.tolerances, reference_name
    )
    record.images, record.backend = images.describe(), backend
    record.seconds = round(time.perf_counter() - start, 3)
    return record


def score_output(runner: Any) -> str:
    """``score``, or the only output: OpenVINO's CPU plugin may report a fused output under another of
    its tensor names (seen after NNCF INT8: ``/calibration/Div_output_0`` for ``score``)."""
    outputs = runner.output_names
    if SCORE_OUTPUT in outputs or len(outputs) != 1:
        return SCORE_OUTPUT
    return outputs[0]


# Reference scores already computed in this process, by (weights, input batch) digest: an export run gates
# every artifact of one student on the same images, and torch eager was most of each gate's time (the
# quickstart's six gates ran the same forward passes six times). Bounded: about 1,000 batches of 8 floats.
_REFERENCE_LIMIT = 1024
_reference_scores: dict[tuple[str, str], np.ndarray] = {}
on_forget(_reference_scores.clear)


def _feed_digest(feed: dict[str, np.ndarray], names: Any) -> str:
    digest = hashlib.sha256()
    for name in names:
        arr = np.ascontiguousarray(feed[name])
        digest.update(f"{name}{arr.dtype}{arr.shape}".encode())
        digest.update(arr.data)
    return digest.hexdigest()


def torch_scorer(source: ExportSource) -> Scorer:
    """The source's reference torch model (the model itself; a QAT source's float student) as a scorer.

    A batch this process already scored with the same weights is not run again (same inputs, same
    weights, same CPU kernels: the same scores).
    """
    import torch

    from edgeiqa.export.source import weights_digest

    model = source.reference_model
    weights = weights_digest(model)

    def score(feed: dict[str, np.ndarray]) -> np.ndarray:
        key = (weights, _feed_digest(feed, source.input_names))
        if key in _reference_scores:
            return _reference_scores[key].copy()
        with torch.no_grad():
            out = model(*(torch.from_numpy(feed[n]) for n in source.input_names))
        result = out.detach().double().reshape(-1).numpy()
        if len(_reference_scores) >= _REFERENCE_LIMIT:
            _reference_scores.pop(next(iter(_reference_scores)))
        _reference_scores[key] = result.copy()
        return result

    return score


def runner_options(fmt: ExportFormat, options: ExportOptions) -> dict[str, Any]:
    """Backend options the gate runs with: a backend whose record names a precision option gets the
    configured hint, so an "FP32" artifact is not gated in bf16 (OpenVINO on CPUs with bf16)."""
    option = fmt.runtime_backend.precision_option
    return {option: options.openvino_inference_precision} if option is not None else {}


def skipped(reason: str) -> ParityRecord:
    """The parity record of an artifact that cannot run here: usable, but unverified."""
    return ParityRecord.skipped(reason)


def compare(
    scores: np.ndarray,
    reference: np.ndarray,
    mos: np.ndarray | None,
    precision: str,
    tolerances: Tolerances,
    reference_name: str = "reference",
) -> ParityRecord:
    """The parity record of ``scores`` (artifact) against ``reference`` (torch or another artifact).

    Every rule of the precision class that is on is checked (fidelity first: max/mean |Δscore|, rank
    agreement; then ΔSRCC vs MOS); the verdict fails on the first that does not hold.
    """
    klass = precision_class(precision)
    limits = tolerances.limits(klass)
    n = int(scores.size)
    record = ParityRecord(
        verdict=PASSED, reason="", n=n, rule={"precision_class": klass, **limits.to_dict()}, reference=reference_name
    )
    if not np.all(np.isfinite(scores)):
        bad = int(np.count_nonzero(~np.isfinite(scores)))
        record.verdict, record.reason = FAILED, f"{bad} of {n} artifact scores are NaN or inf"
        return record
    diff = np.abs(scores - reference)
    record.max_abs_diff, record.mean_abs_diff = float(diff.max()), float(diff.mean())
    if n >= 2:
        record.srcc_vs_reference = rank_agreement(scores, reference)
        _delta_srcc(record, scores, reference, mos)
    measured = {
        "max_abs_diff": record.max_abs_diff,
        "mean_abs_diff": record.mean_abs_diff,
        "rank_agreement": record.srcc_vs_reference,
        "delta_srcc": record.delta_srcc,
    }
    rules = (
        ("max_abs_diff", limits.max_abs_diff, "<="),
        ("mean_abs_diff", limits.mean_abs_diff, "<="),
        ("rank_agreement", limits.min_rank_agreement, ">="),
        ("delta_srcc", limits.delta_srcc, "<="),
    )
    for name, limit, op in rules:
        if limit is None:
            continue
        value = measured[name]
        held = value is not None and (value >= limit if op == ">=" else value <= limit)
        record.checks.append(ParityCheck(name, value, float(limit), op, bool(held)))
    failed = record.failed_checks
    record.verdict = FAILED if failed else PASSED
    if failed:
        record.reason = failed[0].describe(reference_name, n)
    elif record.checks:
        record.reason = ", ".join(c.short() for c in record.checks) + f" on {n} images"
    else:
        record.reason = f"no {klass} rule is on (every tolerance is null); measured on {n} images"
    return record


def rank_agreement(scores: np.ndarray, reference: np.ndarray) -> float:
    """SRCC(artifact, reference); 1.0 when both are constant (the same, all-tied order), which
    :func:`srcc`'s no-information convention would call 0.0."""
    if np.ptp(scores) == 0 and np.ptp(reference) == 0:
        return 1.0
    return srcc(scores, reference)


def _delta_srcc(record: ParityRecord, scores: np.ndarray, reference: np.ndarray, mos: np.ndarray | None) -> None:
    if mos is None:
        record.delta_srcc = 1.0 - record.srcc_vs_reference
        record.delta_srcc_basis = "1 - SRCC(artifact, reference)"
        return
    record.reference_vs_mos = {"srcc": srcc(reference, mos), "plcc": plcc(reference, mos)}
    record.artifact_vs_mos = {"srcc": srcc(scores, mos), "plcc": plcc(scores, mos)}
    record.delta_srcc = record.reference_vs_mos["srcc"] - record.artifact_vs_mos["srcc"]
    record.delta_srcc_basis = "SRCC(reference, MOS) - SRCC(artifact, MOS)"
