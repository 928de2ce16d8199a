"""How faithful and how fast each reduced-precision artifact is, from one ``edgeiqa bench`` result.

    python studies/int8_agreement.py runs/livec/results/vm-cpu.json \
        --out studies/results/livec_s0_int8_agreement.json
    python studies/int8_agreement.py runs/livec --score runs/livec/artifacts/*.onnx  # fidelity only

Every artifact in the bench JSON scored the same test photos (per-image scores are in the file). The
reference is the FP32 ONNX artifact; for each other artifact this prints and writes:

* rank agreement SRCC(artifact, FP32) and max / mean |Δ score| on the MOS scale: fidelity, judged
  against the reference on the same images (issue 12's INT8 target: agreement >= 0.99; FP16 >= 0.999);
* ΔSRCC vs MOS = SRCC(FP32, MOS) - SRCC(artifact, MOS), with its paired-bootstrap 95 % interval, so a
  difference inside the noise is not read as one artifact ranking photos better than another;
* batch-1 p50 latency and its speed-up over the FP32 ONNX artifact (> 1: faster), from the same run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.metrics import srcc
from edgeiqa.report.intervals import paired_srcc_difference


def _p50(result: dict[str, Any], batch: int = 1) -> float | None:
    return next((row["p50_ms"] for row in result.get("latency") or [] if row.get("batch") == batch), None)


def agreement(bench: dict[str, Any]) -> dict[str, Any]:
    mos = np.asarray(bench["dataset"]["mos"], dtype=np.float64)
    results = [r for r in bench["results"] if r.get("scores") and not r.get("error")]
    reference = next((r for r in results if r.get("format") == "onnx" and r.get("precision") == "fp32"), None)
    if reference is None:
        raise SystemExit("the bench result has no FP32 ONNX artifact with scores to compare with")
    ref = np.asarray(reference["scores"], dtype=np.float64)
    ref_p50 = _p50(reference)
    rows = {}
    for r in results:
        scores = np.asarray(r["scores"], dtype=np.float64)
        if scores.shape != ref.shape:
            continue
        delta = np.abs(scores - ref)
        paired = paired_srcc_difference(ref, scores, mos, 0.0)
        p50 = _p50(r)
        rows[r["label"]] = {
            "format": r.get("format"),
            "precision": r.get("precision"),
            "valid": r.get("valid", True),
            "rank_agreement": srcc(scores, ref),
            "max_abs_delta": float(delta.max()),
            "mean_abs_delta": float(delta.mean()),
            "srcc_vs_mos": srcc(scores, mos),
            "delta_srcc_vs_mos": paired.difference.value,
            "delta_srcc_ci95": [paired.difference.low, paired.difference.high],
            "p50_ms_batch1": p50,
            "speedup_vs_fp32_onnx": (ref_p50 / p50) if (p50 and ref_p50) else None,
        }
    return {"reference": reference["label"], "n": int(mos.size), "device": bench.get("device"), "rows": rows}


def scored_here(run: Path, artifacts: list[Path], allow_invalid: bool = False) -> dict[str, Any]:
    """A bench-shaped dict (scores only, no timing) from scoring ``run``'s test photos with each artifact.

    The photos and MOS are the ones the run's summary.json scored its models on, so fidelity is judged
    on the same test split without a (slow, timing-sensitive) bench run.
    """
    from edgeiqa.runtime.manifest import manifest_path_for, read_manifest
    from edgeiqa.runtime.predictor import Predictor

    test = json.loads((run / "summary.json").read_text())["scores"]
    results = []
    for artifact in artifacts:
        manifest = read_manifest(manifest_path_for(artifact))
        with Predictor.load(artifact, allow_invalid=allow_invalid) as predictor:
            scores = predictor(test["paths"], batch_size=8)
        results.append(
            {
                "label": artifact.name,
                "format": manifest.format,
                "precision": manifest.precision,
                "valid": manifest.valid,
                "scores": [float(v) for v in scores],
            }
        )
    return {"dataset": {"mos": test["mos"]}, "results": results, "device": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="an edgeiqa bench result JSON, or with --score a run folder")
    parser.add_argument(
        "--score",
        nargs="+",
        type=Path,
        metavar="ARTIFACT",
        help="score the run's test photos with these artifacts here instead (fidelity only)",
    )
    parser.add_argument(
        "--allow-invalid",
        action="store_true",
        help="with --score, also score artifacts whose parity gate failed (marked valid: false)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    bench = (
        scored_here(args.bench, args.score, args.allow_invalid) if args.score else json.loads(args.bench.read_text())
    )
    result = agreement(bench)
    print(f"reference {result['reference']}, n = {result['n']}")
    for label, r in result["rows"].items():
        speed = f"{r['speedup_vs_fp32_onnx']:.2f}x" if r["speedup_vs_fp32_onnx"] else "-"
        p50 = f"{r['p50_ms_batch1']:.2f} ms" if r["p50_ms_batch1"] else "-"
        lo, hi = r["delta_srcc_ci95"]
        print(
            f"{label:34s} agree {r['rank_agreement']:.4f}  max|d| {r['max_abs_delta']:6.2f}  "
            f"mean|d| {r['mean_abs_delta']:5.2f}  dSRCC {r['delta_srcc_vs_mos']:+.4f} [{lo:+.3f}, {hi:+.3f}]  "
            f"p50 {p50}  {speed}{'' if r['valid'] else '  (parity gate failed)'}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"source": str(args.bench), **result}, indent=1))


if __name__ == "__main__":
    main()
