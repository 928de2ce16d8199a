"""Does an artifact rank real 4K JPEGs? Distinct scores, and a quality-10 re-encode always scores lower.

    python studies/uhd_ranking_check.py ARTIFACT PHOTO_DIR [PHOTO_DIR ...] --n 24 --out results/x.json

Makes ``n`` 3840x2160 JPEGs (q90, Lanczos upscale of a 16:9 centre crop, as ``edgeiqa speed --make-4k``)
from the photos it finds, re-encodes each at quality 10, scores both sets through ``Predictor`` and
reports how many distinct scores the q90 set got and for how many photos the q10 copy scored lower.
This is the check behind the score-calibration fix: a saturating map gave 20 of 24 4K photos one score.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from edgeiqa.bench.e2e_speed import make_uhd_jpegs
from edgeiqa.runtime.batch import expand_paths
from edgeiqa.runtime.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact")
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--out")
    args = parser.parse_args()
    sources = sorted(Path(p) for p in expand_paths(args.photos))[: args.n]
    with tempfile.TemporaryDirectory() as tmp:
        good = make_uhd_jpegs(sources, Path(tmp) / "q90")
        bad_dir = Path(tmp) / "q10"
        bad_dir.mkdir()
        bad = []
        for path in good:
            with Image.open(path) as img:
                img.save(bad_dir / path.name, quality=10)
            bad.append(bad_dir / path.name)
        with Predictor.load(args.artifact) as predictor:
            q90, q10 = predictor(good), predictor(bad)
    result = {
        "artifact": str(args.artifact),
        "n": len(good),
        "distinct_q90_scores": int(len(np.unique(q90))),
        "q10_scores_lower": int(np.sum(q10 < q90)),
        "q90": {p.name: float(s) for p, s in zip(good, q90)},
        "q10": {p.name: float(s) for p, s in zip(bad, q10)},
    }
    print(json.dumps({k: v for k, v in result.items() if k not in ("q90", "q10")}))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
