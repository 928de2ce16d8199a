"""Pseudo-MOS for the embedded dataset: full-reference measures from ``piq`` folded into one 0..100 score.

Measures (all from piq, a maintained PyTorch IQA library; each compares a distorted image with its
pristine reference):

* **HaarPSI** (Reisenhofer et al., 2018) -- among the best full-reference measures on KADID-10k and
  TID2013, and the only one here that looks at colour (its YIQ chroma channels): a desaturated image
  changes no gradient and no DCT band, so HaarPSI alone registers it. Weight 2.
* **DSS**, DCT sub-band similarity (Balanis, 2015) -- compares structure band by band; it separates
  compression and blur levels best of the measures tried here. Weight 1.
* **GMSD**, gradient magnitude similarity deviation (Xue et al., 2014) -- the spread of local gradient
  damage, strong on noise and blur, and cheap. Weight 1 (GMSD / 0.35, clipped, as a 0..1 distortion).

Combination: ``D = max(weighted mean of the three distortions, 1 - HaarPSI)`` and
``pseudo-MOS = 100 * (1 - D)``, clipped to 0..100. The ``max`` exists because DSS and GMSD are
colour-blind: averaged in, they would halve the penalty of a pure colour loss, so a fully
desaturated photo would still score ~70 while a level-5 blur scores ~35. With it, level 5 of every
type lands in the poor range (means 20..45 on the default set; lossy WebP bottoms out near 60 because
libwebp's lowest quality is still only moderately bad at 384 px). The reference image scores 100.

Tried and left out: VIF-p (4x slower here, above 1 for contrast gains, and its range differs widely by
distortion type), MS-SSIM (needs >= 161 px per side, which breaks small test sets), FSIM (~300 ms per
384 px image on one core), SSIM and MDSI alone (weaker ordering of levels across photos).

Every image is scored on its own (no batching): batched convolutions differ in the last float bits,
and a score must not depend on which other images were generated alongside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from edgeiqa.errors import require

HAARPSI_WEIGHT, DSS_WEIGHT, GMSD_WEIGHT = 2.0, 1.0, 1.0
GMSD_SCALE = 0.35  # GMSD of the worst images seen is ~0.3: this maps it onto roughly 0..1
PRISTINE_MOS = 100.0


def _to_tensor(img: np.ndarray):
    import torch

    # A fresh float array: the input may be a read-only view of a Pillow image, which torch warns about.
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def fr_measures(reference: np.ndarray, distorted: np.ndarray) -> dict[str, float]:
    """HaarPSI, DSS and GMSD of ``distorted`` against ``reference`` (both HxWx3 uint8, same shape)."""
    piq = require("piq", "train", "the embedded dataset's pseudo-MOS")
    import torch

    if reference.shape != distorted.shape:
        raise ValueError(f"reference {reference.shape} and distorted {distorted.shape} differ in shape")
    x, ref = _to_tensor(distorted), _to_tensor(reference)
    with torch.no_grad():
        return {
            "haarpsi": float(piq.haarpsi(x, ref, data_range=1.0)),
            "dss": float(piq.dss(x, ref, data_range=1.0)),
            "gmsd": float(piq.gmsd(x, ref, data_range=1.0)),
        }


def combine(measures: dict[str, float]) -> float:
    """Fold the three measures into a 0..100 pseudo-MOS (higher is better); see the module docstring."""
    d_haar = 1.0 - measures["haarpsi"]
    d_dss = 1.0 - measures["dss"]
    d_gmsd = min(1.0, measures["gmsd"] / GMSD_SCALE)
    total = HAARPSI_WEIGHT + DSS_WEIGHT + GMSD_WEIGHT
    mean = (HAARPSI_WEIGHT * d_haar + DSS_WEIGHT * d_dss + GMSD_WEIGHT * d_gmsd) / total
    return float(np.clip(100.0 * (1.0 - max(mean, d_haar)), 0.0, PRISTINE_MOS))


def pseudo_mos(reference: np.ndarray, distorted: np.ndarray) -> float:
    """The pseudo-MOS (0..100) of one distorted image against its pristine reference."""
    return combine(fr_measures(reference, distorted))


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block: the generation is small per call, threads only add
    overhead and contention, and one thread keeps float reductions in a fixed order."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
