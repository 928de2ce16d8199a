"""Which NNCF settings keep a run's student's ranking: plain ``nncf.quantize`` of its FP32 IR, several ways.

    python studies/nncf_settings.py runs/livec fast full fast+first_conv full+first_conv mixed \
        --out studies/results/nncf_settings_livec.json

Each variant quantizes ``<run>/artifacts/<model>_fp32.xml`` exactly as ``edgeiqa export --format openvino
--precision int8`` does (the run's INT8 calibration images, MINMAX ranges, the head, the variance pooling
and the score calibration in float), changing one setting:

* ``fast`` / ``full``: NNCF's fast bias correction or its full one (``fast_bias_correction=False``);
* ``+first_conv``: the first convolution on each input also kept in float;
* ``+mixed``: ``QuantizationPreset.MIXED`` (asymmetric activations) instead of PERFORMANCE.

For each it reports rank agreement SRCC(int8, FP32 IR) on the run's validation photos (what the parity gate
judges) and on its test photos, and ΔSRCC vs MOS on the test photos with its paired 95 % interval.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.configs import load_yaml
from edgeiqa.distill.runs import load_splits
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.export.images import ImageSet, iter_feeds
from edgeiqa.export.nodes import resolve_nodes
from edgeiqa.export.openvino_export import ImageFeeds, ignored_scope
from edgeiqa.export.options import SCORE_CALIBRATION_GROUP
from edgeiqa.metrics import srcc
from edgeiqa.report.intervals import paired_srcc_difference
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.manifest import manifest_path_for, read_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("variants", nargs="+", help="fast | full, optionally +first_conv and/or +mixed")
    parser.add_argument("--model", default="eqcnet_lite0")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import nncf
    import onnx
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    logging.getLogger("nncf").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")
    cfg = load_yaml(ExperimentConfig, args.run / "config.yaml")
    table = load_splits(cfg.data).table
    calib = list(ImageSet.from_table(table, cfg.export.calibration.split, n=cfg.export.calibration.n_images).paths)
    val = list(ImageSet.validation_from_table(table, cfg.export.validation_split).paths)
    test = json.loads((args.run / "summary.json").read_text())["scores"]
    fp32_xml = args.run / "artifacts" / f"{args.model}_fp32.xml"
    fp32_onnx = onnx.load(str(fp32_xml.with_suffix(".onnx")))
    contract = PreprocessContract.from_dict(read_manifest(manifest_path_for(fp32_xml)).preprocess)
    core = ov.Core()
    fp32 = core.read_model(str(fp32_xml))

    def scores(model: Any, paths: list[str]) -> np.ndarray:
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return np.concatenate(
            [np.asarray(next(iter(compiled(feed).values()))).reshape(-1) for feed in iter_feeds(paths, contract, 8)]
        )

    ref_val, ref_test = scores(fp32, val), scores(fp32, test["paths"])
    mos = np.asarray(test["mos"], dtype=np.float64)
    rows = {}
    for variant in args.variants:
        parts = variant.split("+")
        if parts[0] not in ("fast", "full") or not set(parts[1:]) <= {"first_conv", "mixed"}:
            raise SystemExit(f"unknown variant {variant!r}: fast | full, then +first_conv and/or +mixed")
        keep = ("head", "variance", SCORE_CALIBRATION_GROUP, *(("first_conv",) if "first_conv" in parts else ()))
        scope = ignored_scope(nncf, resolve_nodes(fp32_onnx, keep))
        start = time.perf_counter()
        quantized = nncf.quantize(
            fp32,
            nncf.Dataset(ImageFeeds(calib, contract)),
            subset_size=len(calib),
            ignored_scope=scope,
            fast_bias_correction=parts[0] == "fast",
            preset=nncf.QuantizationPreset.MIXED if "mixed" in parts else None,
            advanced_parameters=AdvancedQuantizationParameters(
                activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX
            ),
        )
        seconds = time.perf_counter() - start
        int8_val, int8_test = scores(quantized, val), scores(quantized, test["paths"])
        paired = paired_srcc_difference(ref_test, int8_test, mos, 0.0).difference
        rows[variant] = {
            "val_rank_agreement": srcc(int8_val, ref_val),
            "test_rank_agreement": srcc(int8_test, ref_test),
            "test_delta_srcc_vs_mos": paired.value,
            "test_delta_srcc_ci95": [paired.low, paired.high],
            "quantize_seconds": round(seconds, 1),
        }
        r = rows[variant]
        print(
            f"{variant:22s} val agree {r['val_rank_agreement']:.4f}  test agree {r['test_rank_agreement']:.4f}  "
            f"dSRCC {paired.value:+.4f} [{paired.low:+.3f}, {paired.high:+.3f}]  {seconds:.0f} s",
            flush=True,
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "run": str(args.run),
                    "nncf": nncf.__version__,
                    "n_calibration": len(calib),
                    "n_val": len(val),
                    "n_test": int(mos.size),
                    "rows": rows,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
