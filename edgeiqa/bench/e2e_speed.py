"""End-to-end speed (file -> score) of the runtime against pure decoding and a naive torch pipeline.

Three figures on the same image files, each the best of ``repeats`` passes (images/s); every pass is
kept too, so a figure taken while another process held the cores shows as a wide spread:

* ``decode``: the JPEG decode alone, as the contract asks for it (full size when fragments need native
  pixels, DCT-scaled with ``jpeg_draft``), on the same thread pool the runtime uses, each frame freed
  once decoded (as the runtime frees it once its views are cut);
* ``runtime``: :class:`~edgeiqa.runtime.Predictor` on the artifact (decode in threads, batched inference);
* ``naive``: full Pillow decode, float32 antialiased torch resize, torch eager model, one image at a time.

``make_uhd_jpegs`` writes realistic 4K test JPEGs by upscaling photos (e.g. the Kodak set) with
Lanczos and saving at quality 90, since no 4K photos ship with the project.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from edgeiqa.bench.memory import peak_rss_mb
from edgeiqa.runtime.decode import DecoderName, get_decoder
from edgeiqa.runtime.preprocess import fragment_origins

UHD = (3840, 2160)
# Runtime passes further apart than this (1 - slowest / fastest) are flagged as disturbed.
DISTURBED_SPREAD = 0.10


def make_uhd_jpegs(sources: Sequence[Path], out_dir: Path, quality: int = 90) -> list[Path]:
    """Upscale each source (centre-cropped to 16:9) to 3840x2160 and save it as a JPEG."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources:
        try:
            with Image.open(src) as img:
                img = img.convert("RGB")
        except OSError as exc:  # a batch job goes on past a bad file and says so
            print(f"edgeiqa: skipped {src}: {exc}", file=sys.stderr)
            continue
        w, h = img.size
        crop_h = min(h, round(w * 9 / 16))
        crop_w = round(crop_h * 16 / 9)
        box = ((w - crop_w) // 2, (h - crop_h) // 2, (w + crop_w) // 2, (h + crop_h) // 2)
        big = img.crop(box).resize(UHD, Image.Resampling.LANCZOS)
        path = out_dir / f"{Path(src).stem}_4k.jpg"
        big.save(path, quality=quality)
        written.append(path)
    return written


@dataclass
class SpeedResult:
    """The three rates (images/s) and two ratios that point the same way: the runtime's rate divided
    by the other pipeline's, so > 1 means the runtime is that many times faster and < 1 slower."""

    n_images: int
    workers: int
    decode_ips: float
    runtime_ips: float
    naive_ips: float | None
    # Every timed pass (images/s); the figures above are their best.
    decode_runs: tuple[float, ...] = field(default=())
    runtime_runs: tuple[float, ...] = field(default=())
    # VmHWM of this process after the runtime passes (the decode figure's frames included).
    peak_rss_mb: float | None = None

    @property
    def runtime_spread(self) -> float:
        """1 - slowest / fastest runtime pass: 0 for passes alike, 0.2 when one ran 20 % slower."""
        return 1.0 - min(self.runtime_runs) / max(self.runtime_runs) if len(self.runtime_runs) > 1 else 0.0

    @property
    def disturbed(self) -> bool:
        """Passes over the same files that differ by more than :data:`DISTURBED_SPREAD`: on 2 shared cores
        that is another process taking them (the same 4K figure read 39.2, 40.2 and 32.9 within 20 min)."""
        return self.runtime_spread > DISTURBED_SPREAD

    @property
    def runtime_speed_vs_naive(self) -> float | None:
        """How many times faster the runtime is than the naive torch pipeline (None: not measured)."""
        return self.runtime_ips / self.naive_ips if self.naive_ips else None

    @property
    def runtime_speed_vs_decode(self) -> float:
        """The runtime's rate as a multiple of decoding alone: 1.0 means inference and preprocessing
        cost nothing on top of the decode, 0.5 that the whole pipeline runs at half the decode rate."""
        return self.runtime_ips / self.decode_ips

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "runtime_speed_vs_naive": self.runtime_speed_vs_naive,
            "runtime_speed_vs_decode": self.runtime_speed_vs_decode,
            "runtime_spread": self.runtime_spread,
            "disturbed": self.disturbed,
        }


def speed_artifact_info(artifact: Path) -> dict:
    """What a speed record says of the artifact it timed: path, and from its manifest model, format,
    precision and sha256 (so two records name the same file or visibly not)."""
    from edgeiqa.runtime.manifest import manifest_path_for, read_manifest

    manifest = read_manifest(manifest_path_for(artifact))
    return {
        "path": str(artifact),
        "model": manifest.model,
        "format": manifest.format,
        "precision": manifest.precision,
        "sha256": manifest.sha256.get("artifact"),
    }


def _rates(n: int, fn: Callable[[], object], repeats: int) -> tuple[float, ...]:
    """Images/s of each of ``repeats`` passes of ``fn`` over ``n`` images."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
    return tuple(rates)


def _naive_scorer(checkpoint: Path) -> Callable[[Path], float]:
    """The pipeline a first prototype would have: everything in float32 torch, no care for decode cost."""
    import torch
    import torch.nn.functional as F

    from edgeiqa.distill.saved_model import load_model

    model = load_model(checkpoint).model
    contract = model.contract
    mean = torch.tensor(contract.mean).view(1, 3, 1, 1)
    std = torch.tensor(contract.std).view(1, 3, 1, 1)

    @torch.no_grad()
    def score(path: Path) -> float:
        pixels = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        x = (pixels - mean) / std
        size = contract.working_size
        inputs = [F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)]
        if contract.fragments is not None:
            spec = contract.fragments
            ys = fragment_origins(x.shape[2], spec, None)
            xs = fragment_origins(x.shape[3], spec, None)
            rows = [torch.cat([x[..., y : y + spec.patch, c : c + spec.patch] for c in xs], dim=3) for y in ys]
            inputs.append(torch.cat(rows, dim=2))
        return float(model(*inputs))

    return score


def measure_speed(
    artifact: Path,
    images: Sequence[Path],
    checkpoint: Path | None = None,
    workers: int = 2,
    batch_size: int = 8,
    repeats: int = 3,
    decoder: DecoderName = "auto",
    budget: dict | None = None,
) -> SpeedResult:
    """The three figures of the module docstring on ``images`` (one warm-up pass each); ``budget`` holds the
    Predictor's memory options (``max_memory`` / ``max_decoded_pixels``; none: its default, a share of the
    memory available); ``decoder`` is the runtime's JPEG decoder, used for the ``decode`` figure too."""
    from edgeiqa.runtime.predictor import Predictor

    paths = [Path(p) for p in images]
    decode = get_decoder(decoder)
    with Predictor.load(artifact, workers=workers, decoder=decoder, **(budget or {})) as predictor:
        contract = predictor.contract
        with ThreadPoolExecutor(workers) as pool:
            # Each frame is dropped once decoded, as the runtime drops it once its views are cut. Keeping
            # them all (a list of 24 4K frames, 800 MB) made every decode fault in fresh pages and halved
            # this figure: 38 instead of 80 images/s on the 2-core machine.
            decode_all = lambda: list(pool.map(lambda p: decode(p, contract).size, paths))  # noqa: E731
            decode_all()
            decode_runs = _rates(len(paths), decode_all, repeats)
        run_all = lambda: predictor(paths, batch_size=batch_size)  # noqa: E731
        run_all()
        runtime_runs = _rates(len(paths), run_all, repeats)
    peak_rss = peak_rss_mb()  # before the naive torch pipeline loads torch
    naive_ips = None
    if checkpoint is not None:
        score = _naive_scorer(checkpoint)
        score(paths[0])
        naive_ips = max(_rates(len(paths), lambda: [score(p) for p in paths], max(1, repeats - 1)))
    return SpeedResult(
        len(paths),
        workers,
        max(decode_runs),
        max(runtime_runs),
        naive_ips,
        decode_runs=decode_runs,
        runtime_runs=runtime_runs,
        peak_rss_mb=peak_rss,
    )
