"""Which transfer stages earn their place: the distilled student without pre-training, without the
feature loss, without the distorted copies in pre-training's transfer set, and in full, against the student
alone, all on one seed's teacher and the same test photos.

    python studies/livec_stage_ablation.py --config configs/livec.yaml --run runs/livec_s0 \
        --out studies/results/livec_stage_ablation.json

``--run`` is a finished preset run (``edgeiqa run`` or train-teacher + distill + distill --student-only):
its teacher, distilled student ("full") and student alone are reused. Each variant is trained by
``edgeiqa distill`` into ``<run>_ablation/<variant>/`` (the teacher folder is linked, not retrained),
so an interrupted ablation resumes where it stopped (a variant folder that already holds a summary.json,
e.g. a link to an earlier run with the very same settings, is not trained again). Every variant is
compared with the full student by a paired bootstrap of the SRCC difference on the same test photos; a
difference whose interval holds 0 is reported as inside the noise, not as a ranking.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from edgeiqa.report.intervals import paired_srcc_difference, srcc_interval


def _no_pretrain(cfg: dict[str, Any]) -> None:
    cfg["student"].setdefault("pretrain", {})["enabled"] = False


def _no_feature(cfg: dict[str, Any]) -> None:
    cfg["student"]["feature_pairs"] = []
    for stage in ("pretrain", "finetune"):
        cfg["student"].get(stage, {}).get("losses", {}).pop("feature", None)


def _no_copies(cfg: dict[str, Any]) -> None:
    cfg.setdefault("data", {})["transfer_copies"] = 0


VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "no_pretrain": _no_pretrain,
    "no_feature": _no_feature,
    "no_copies": _no_copies,
}


def _train_variant(name: str, base: dict[str, Any], run: Path, root: Path, seed: int) -> Path:
    out = root / name
    if (out / "summary.json").exists():
        return out  # finished earlier: resume means not training it again
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "teacher").exists():
        os.symlink((run / "teacher").resolve(), out / "teacher")
    cfg = json.loads(json.dumps(base))
    VARIANTS[name](cfg)
    cfg_path = out / "ablation.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = ["edgeiqa", "distill", "--config", str(cfg_path), "--out", str(out), "--seed", str(seed)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return out


def _scores(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text())["scores"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="finished run folder (teacher, student, student_only)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    base = yaml.safe_load(args.config.read_text())
    # The config's relative data root is relative to where edgeiqa runs (here), not to the variant's folder.
    summary = json.loads((args.run / "summary.json").read_text())
    seed = int(summary["seed"])
    root = args.run.parent / f"{args.run.name}_ablation"
    full = _scores(args.run)
    rows: dict[str, Any] = {}

    def row(name: str, pred: list[float], mos: list[float]) -> None:
        interval = srcc_interval(pred, mos)
        vs_full = paired_srcc_difference(pred, full["student"], mos, 0.0)
        rows[name] = {
            "srcc": interval.value,
            "srcc_ci95": [interval.low, interval.high],
            "minus_full": vs_full.to_dict(),
            "inside_noise": vs_full.indistinguishable,
        }

    row("full", full["student"], full["mos"])
    for name in VARIANTS:
        scores = _scores(_train_variant(name, base, args.run, root, seed))
        if scores["paths"] != full["paths"]:
            sys.exit(f"{root / name}: its test photos differ from {args.run}'s; the comparison would not be paired")
        row(name, scores["student"], scores["mos"])
    row("student_alone", full["student_only"], full["mos"])
    row("teacher", full["teacher"], full["mos"])
    result = {"config": str(args.config), "run": str(args.run), "seed": seed, "n": len(full["mos"]), "rows": rows}
    for name, r in rows.items():
        d = r["minus_full"]["difference"]
        print(
            f"{name:14s} SRCC {r['srcc']:.4f} [{r['srcc_ci95'][0]:.3f}, {r['srcc_ci95'][1]:.3f}]  "
            f"minus full {d['value']:+.4f} [{d['low']:+.3f}, {d['high']:+.3f}]"
            + ("  (inside the noise)" if r["inside_noise"] and name != "full" else "")
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
