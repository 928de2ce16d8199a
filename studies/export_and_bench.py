"""Export a finished run's student in the given format/precision pairs and benchmark them in one quiet run.

    python studies/export_and_bench.py runs/livec_s0 onnx:fp32 onnx:fp16 onnx:int8 onnx:int8-trt \
        openvino:int8 --batches 1

The run's own ``config.yaml`` gives the data split, the INT8 calibration images (train) and the
parity-gate images (val); each artifact goes through the usual gate, those that pass are benchmarked
(``bench:`` settings of the run, batch sizes from ``--batches``) into ``<run>/results/<device>.json``
with the report beside it. ``studies/int8_agreement.py`` then reads fidelity and speed from that file.
Run it alone on the machine: latency shares the cores with anything else running.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from edgeiqa.experiment import ArtifactConfig, ExperimentConfig
from edgeiqa.pipeline import bench_and_report, export_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("artifacts", nargs="+", help="FORMAT:PRECISION[:KEEP_FP,...]")
    parser.add_argument("--batches", default="1", help="comma-separated batch sizes (default 1)")
    parser.add_argument("--torch", action="store_true", help="benchmark the torch checkpoint too")
    args = parser.parse_args()
    cfg = ExperimentConfig.load(args.run / "config.yaml")
    cfg.out = str(args.run)
    cfg.export.artifacts = []
    for spec in args.artifacts:
        fmt, precision, *keep = spec.split(":", 2)
        cfg.export.artifacts.append(ArtifactConfig(fmt, precision, keep[0].split(",") if keep else None))
    cfg.bench = dataclasses.replace(
        cfg.bench, batches=[int(b) for b in args.batches.split(",")], torch_checkpoint=args.torch
    )
    final = args.run / "student" / "final"
    valid = export_all(cfg, final, quiet=False)
    print(bench_and_report(cfg, valid, final))


if __name__ == "__main__":
    main()
