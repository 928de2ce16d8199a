"""Helpers for the export tests: a tiny two-input scorer (real conv/resize/pool ops) and images.

``TinyScorer`` has the student's signature (``forward(image, fragments) -> score [N]``) and a
``contract``; wrapped in ``CalibratedModel`` it carries a 4PL score calibration like a distilled
student. Its score grows with the images' brightness through random-but-seeded convolutions, so
the synthetic images below (one brightness level each) are ranked far apart: quantization noise
must not reorder them, and a corrupted artifact does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from edgeiqa.distill.calibration import CalibratedModel, ScoreCalibration
from edgeiqa.metrics import Logistic4Fit
from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract

FIT = Logistic4Fit((90.0, 10.0, 95.0, 30.0))


def tiny_contract(**overrides) -> PreprocessContract:
    values = dict(working_size=32, fragments=FragmentSpec(grid=2, patch=8))
    values.update(overrides)
    return PreprocessContract(**values)


class TinyScorer(nn.Module):
    """conv -> relu -> strided conv -> bilinear up + add (a top-down fuse) -> mean pool -> linear, per view."""

    def __init__(self, contract: PreprocessContract | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.contract = contract or tiny_contract()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.frag = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(16, 1)
        with torch.no_grad():  # positive weights: brighter images score higher, far apart
            for conv in (self.stem, self.down, self.frag):
                conv.weight.abs_()
                # Normalised pixels are >= -2.2: this bias keeps every ReLU input positive (monotonic).
                conv.bias.copy_(conv.weight.sum(dim=(1, 2, 3)) * 2.2)
            self.head.weight.copy_(torch.full((1, 16), 0.25))
        self.model_name = "tiny_scorer"

    def forward(self, image: torch.Tensor, fragments: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(image))
        y = F.relu(self.down(x))
        x = x + F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        f = F.relu(self.frag(fragments))
        pooled = torch.cat([x.mean(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1)
        return self.head(pooled).reshape(-1)


def tiny_model(contract: PreprocessContract | None = None) -> CalibratedModel:
    """TinyScorer + its 4PL score calibration, in eval mode."""
    model = CalibratedModel(TinyScorer(contract), ScoreCalibration(FIT)).eval()
    model.model.model_name = "tiny_scorer"
    return model


def write_images(folder: Path, n: int, seed: int = 0, prefix: str = "img") -> list[Path]:
    """``n`` images of 48-64 px, each one brightness level (evenly spaced) with texture and noise."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = (64, 48) if i % 2 else (56, 64)
        level = 30 + 190 * i / max(n - 1, 1)
        yy, xx = np.mgrid[0:h, 0:w]
        texture = 20 * np.sin(xx / 3.0 + i)[..., None] * np.array([1.0, 0.8, 0.6])
        pixels = level + texture + rng.normal(0, 6, (h, w, 3))
        img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        path = folder / f"{prefix}{i:02d}.{'jpg' if i % 3 == 0 else 'png'}"
        img.save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
        paths.append(path)
    return paths
