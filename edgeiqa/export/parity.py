"""The parity gate: run an artifact beside the torch model on the same arrays and compare the scores.

Both sides get exactly what deployment gets: the runtime's preprocessing (:func:`iter_feeds`) and
the runtime's runner for the format (:func:`edgeiqa.runtime.runners.runner_for`). The reference is
the torch model (``reference: "torch"``), or, for a TensorRT engine built on a device without torch,
the ONNX file it was built from. Measured: max and mean |Δscore| (MOS scale), SRCC(artifact,
reference), and, when MOS is known, SRCC/PLCC of both against MOS. The rule depends on the precision
(:class:`~edgeiqa.export.options.Tolerances`): FP32 is held to max |Δscore|; FP16 and INT8 to
ΔSRCC = SRCC(reference, MOS) - SRCC(artifact, MOS) when MOS is known, else 1 - SRCC(artifact,
reference). The result is plain JSON for the manifest.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from edgeiqa.metrics import plcc, srcc
from edgeiqa.export.artifact import SCORE_OUTPUT
from edgeiqa.export.formats import ExportFormat, precision_class
from edgeiqa.export.images import ImageSet, iter_feeds
from edgeiqa.export.options import ExportOptions, Tolerances
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.manifest import ArtifactManifest
from edgeiqa.runtime.runners import runner_for

if TYPE_CHECKING:  # source.py imports torch; a device gating an engine against its ONNX has none
    from edgeiqa.export.source import ExportSource

Scorer = Callable[[dict[str, np.ndarray]], np.ndarray]


def run_parity(source: "ExportSource", artifact: Path, manifest: ArtifactManifest, fmt: ExportFormat,
               images: ImageSet, options: ExportOptions) -> dict[str, Any]:
    """Score ``images`` with the torch model and the artifact; the comparison record (see module doc)."""
    runner = runner_for(manifest, artifact, fmt.backend, **runner_options(fmt, options))
    return gate_runner(runner, torch_scorer(source), "torch", images, source.contract, manifest.precision,
                       options)


def gate_runner(runner: Any, reference: Scorer, reference_name: str, images: ImageSet,
                contract: PreprocessContract, precision: str, options: ExportOptions) -> dict[str, Any]:
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
    result = compare(np.concatenate(scores), np.concatenate(expected), mos, precision, options.tolerances)
    result.update(reference=reference_name, images=images.describe(), backend=backend,
                  seconds=round(time.perf_counter() - start, 3))
    return result


def score_output(runner: Any) -> str:
    """``score``, or the only output: OpenVINO's CPU plugin may report a fused output under another of
    its tensor names (seen after NNCF INT8: ``/calibration/Div_output_0`` for ``score``)."""
    outputs = runner.output_names
    if SCORE_OUTPUT in outputs or len(outputs) != 1:
        return SCORE_OUTPUT
    return outputs[0]


def torch_scorer(source: "ExportSource") -> Scorer:
    """The torch model as a scorer of one batched feed."""
    import torch

    def score(feed: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            out = source.model(*(torch.from_numpy(feed[n]) for n in source.input_names))
        return out.detach().double().reshape(-1).numpy()

    return score


def runner_options(fmt: ExportFormat, options: ExportOptions) -> dict[str, Any]:
    """Backend options the gate runs with; OpenVINO's precision hint is set so "FP32" is not bf16."""
    if fmt.backend == "openvino":
        return {"inference_precision": options.openvino_inference_precision}
    return {}


def skipped(reason: str) -> dict[str, Any]:
    """The parity record of an artifact that cannot run here: valid, but not verified."""
    return {"skipped": reason, "verified": False, "passed": None}


def compare(scores: np.ndarray, reference: np.ndarray, mos: np.ndarray | None, precision: str,
            tolerances: Tolerances) -> dict[str, Any]:
    """The parity record of ``scores`` (artifact) against ``reference`` (torch or another artifact)."""
    klass = precision_class(precision)
    metric, limit = tolerances.rule(klass)
    n = int(scores.size)
    result: dict[str, Any] = {"n": n, "rule": {"precision_class": klass, "metric": metric, "limit": limit}}
    if not np.all(np.isfinite(scores)):
        bad = int(np.count_nonzero(~np.isfinite(scores)))
        return result | _verdict(False, None, f"{bad} of {n} artifact scores are NaN or inf")
    diff = np.abs(scores - reference)
    result.update(max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()))
    if n >= 2:
        result["srcc_vs_reference"] = srcc(scores, reference)
        result.update(_delta_srcc(scores, reference, mos))
    value = result.get(metric)
    if value is None:
        return result | _verdict(False, None, f"{metric} needs at least 2 images, got {n}")
    passed = bool(value <= limit)
    reason = f"{metric} = {value:.4g} {'<=' if passed else '>'} {limit:g} on {n} images"
    if metric == "delta_srcc":
        reason += f" ({result['delta_srcc_basis']})"
    guard = tolerances.max_rank_loss
    if passed and guard is not None and klass != "fp32":
        result["rule"]["max_rank_loss"] = guard
        loss = 1.0 - result["srcc_vs_reference"]
        if loss > guard:
            passed, reason = False, f"1 - SRCC(artifact, reference) = {loss:.4g} > {guard:g} on {n} images"
    return result | _verdict(passed, value, reason)


def _verdict(passed: bool, value: float | None, reason: str) -> dict[str, Any]:
    return {"passed": passed, "verified": True, "value": value, "reason": reason}


def _delta_srcc(scores: np.ndarray, reference: np.ndarray, mos: np.ndarray | None) -> dict[str, Any]:
    if mos is None:
        return {"delta_srcc": 1.0 - srcc(scores, reference), "delta_srcc_basis": "1 - SRCC(artifact, reference)"}
    reference_side = {"srcc": srcc(reference, mos), "plcc": plcc(reference, mos)}
    artifact_side = {"srcc": srcc(scores, mos), "plcc": plcc(scores, mos)}
    return {
        "reference_vs_mos": reference_side, "artifact_vs_mos": artifact_side,
        "delta_srcc": reference_side["srcc"] - artifact_side["srcc"],
        "delta_srcc_basis": "SRCC(reference, MOS) - SRCC(artifact, MOS)",
    }
