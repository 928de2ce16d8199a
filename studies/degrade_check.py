"""Does a model score a photo lower once it is visibly damaged? A sanity check that needs no labels.

    python studies/degrade_check.py --photos DIR_OR_FILE ... [--count 24] --model NAME=PATH [--model ...] \\
        --out studies/results/X.json

Each of ``--count`` distinct photos (the first in sorted order over ``--photos``) is scored as it is and
three times damaged: re-encoded as JPEG at quality 10, blurred (Gaussian, sigma 3 px) and noised (Gaussian,
sigma 20 on the 0-255 scale, seeded per photo). A model passes a damage type when every damaged copy
scores below its original. ``PATH`` is anything ``Predictor.load`` takes: a bundled model's name, an
exported artifact or a checkpoint folder. The damaged copies go to the model in memory (the JPEG as its
encoded bytes, so the JPEG decode path runs as it does for a file). Results are written after each model;
a model already in ``--out`` is kept (delete its entry to redo it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from edgeiqa.bench.device_info import cpu_model
from edgeiqa.runtime.inputs import InputStream

sys.path.insert(0, str(Path(__file__).parent))  # the other studies, beside this one
from model_results import measure_models  # noqa: E402

JPEG_QUALITY = 10
BLUR_SIGMA = 3.0
NOISE_SIGMA = 20.0


def _jpeg(img: Image.Image, seed: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _blur(img: Image.Image, seed: int) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(BLUR_SIGMA))  # Pillow's radius is the Gaussian's sigma


def _noise(img: Image.Image, seed: int) -> Image.Image:
    pixels = np.asarray(img, dtype=np.float32)
    noisy = pixels + np.random.default_rng(seed).normal(0.0, NOISE_SIGMA, pixels.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


DAMAGE: dict[str, Callable[[Image.Image, int], bytes | Image.Image]] = {
    f"jpeg_q{JPEG_QUALITY}": _jpeg,
    f"blur_sigma{BLUR_SIGMA:g}": _blur,
    f"noise_sigma{NOISE_SIGMA:g}": _noise,
}


def pick_photos(sources: list[str], count: int) -> list[Path]:
    """The first ``count`` photos (sorted) over the sources whose bytes differ: distinct photos, not copies."""
    seen, photos = set(), []
    for path in sorted(Path(p) for p in InputStream(sources)):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            photos.append(path)
        if len(photos) == count:
            return photos
    raise SystemExit(f"degrade_check: {len(photos)} distinct photos under {sources}, {count} asked for")


def check_model(path: str, photos: list[Path]) -> dict:
    """Per damage type: how many damaged copies scored below their original, and the photos that did not."""
    from edgeiqa.runtime.predictor import Predictor

    with Predictor.load(path) as predictor:
        original = np.asarray(predictor([str(p) for p in photos]), dtype=np.float64)
        result = {"original_mean": float(original.mean())}
        for name, damage in DAMAGE.items():
            copies = []
            for k, photo in enumerate(photos):
                with Image.open(photo) as img:
                    copies.append(damage(img.convert("RGB"), k))
            scores = np.asarray(predictor(copies), dtype=np.float64)
            lower = scores < original
            result[name] = {
                "lower": int(lower.sum()),
                "of": len(photos),
                "mean_drop": float((original - scores).mean()),
                "not_lower": [photos[i].name for i in np.flatnonzero(~lower)],
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", required=True, help="photo files or folders")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH (bundle, artifact, checkpoint)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    photos = pick_photos(args.photos, args.count)
    header = {
        "what": f"{len(photos)} photos each damaged three ways (JPEG quality {JPEG_QUALITY}, blur sigma "
        f"{BLUR_SIGMA:g}, noise sigma {NOISE_SIGMA:g}): how many damaged copies score below the original",
        "photos": [str(p) for p in photos],
        "device": {"cpu_model": cpu_model()},
    }

    def counts(entry: dict) -> dict:  # what docs/results.md renders: damaged copies scored lower, of all photos
        return {k: f"{v['lower']}/{v['of']}" for k, v in entry.items() if isinstance(v, dict)}

    measure_models(Path(args.out), header, args.model, lambda path: check_model(path, photos), counts)


if __name__ == "__main__":
    main()
