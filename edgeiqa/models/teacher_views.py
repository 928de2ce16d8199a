"""The teacher's two views of an image: a global resize and native-resolution patches (numpy + Pillow).

Dynamic patch cropping: the number of native-resolution patches grows with the image area,
``clamp(ceil(area / (density * patch^2)), 1, max_patches)`` (one patch for a small image, many for
4K), so a UHD photo is looked at in as many places as its size warrants and never resized away. The
patches sit on a grid whose rows/columns follow the aspect ratio; each row spreads its patches evenly
across the width. Positions are jittered inside their cells in training (``rng``) and fixed at cell
centres in evaluation, reusing the runtime's fragment placement so both models sample alike.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract
from edgeiqa.runtime.preprocess import ensure_min_side, fragment_origins, normalise, working_view


def _default_contract() -> PreprocessContract:
    return PreprocessContract(working_size=384, fragments=None)


@dataclass(frozen=True)
class TeacherViewSpec:
    """How the teacher sees an image: ``contract`` for the global view (and mean/std), plus patches."""

    contract: PreprocessContract = field(default_factory=_default_contract)
    patch: int = 224
    # One patch per ``density * patch^2`` pixels: 10 gives 1 patch up to ~0.5 MP, 5 for 1080p, 16 for 4K.
    density: float = 10.0
    max_patches: int = 16

    def __post_init__(self) -> None:
        if self.patch < 8 or self.density <= 0 or self.max_patches < 1:
            raise ConfigError(
                f"teacher views need patch >= 8, density > 0, max_patches >= 1; got patch={self.patch} "
                f"density={self.density} max_patches={self.max_patches}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TeacherViewSpec:
        values = dict(data)
        if isinstance(values.get("contract"), dict):
            values["contract"] = PreprocessContract.from_dict(values["contract"])
        return cls(**values)


@dataclass
class TeacherViews:
    """One image's teacher inputs: ``global_view`` [3, G, G], ``patches`` [K, 3, P, P] (normalised)."""

    global_view: np.ndarray
    patches: np.ndarray
    origins: np.ndarray  # [K, 2] (x, y) of each patch's top-left corner in the decoded image
    n_patches: int


def patch_count(width: int, height: int, spec: TeacherViewSpec) -> int:
    """How many native-resolution patches an image of this size gets (monotone in area)."""
    wanted = math.ceil(width * height / (spec.density * spec.patch**2))
    return int(min(max(wanted, 1), spec.max_patches))


def _row_counts(n: int, width: int, height: int) -> list[int]:
    """Split ``n`` patches into rows so rows:columns follows height:width; counts differ by <= 1."""
    rows = min(max(round(math.sqrt(n * height / width)), 1), n)
    base, extra = divmod(n, rows)
    # The extra patches go to the middle rows, where the subject usually is.
    start = (rows - extra) // 2
    return [base + (start <= r < start + extra) for r in range(rows)]


def patch_origins(width: int, height: int, spec: TeacherViewSpec, rng: np.random.Generator | None = None) -> np.ndarray:
    """[K, 2] (x, y) top-left corners; jittered inside grid cells when ``rng`` is given."""
    counts = _row_counts(patch_count(width, height, spec), width, height)
    ys = fragment_origins(height, FragmentSpec(grid=len(counts), patch=spec.patch), rng)
    corners = []
    for y, k in zip(ys, counts):
        xs = fragment_origins(width, FragmentSpec(grid=k, patch=spec.patch), rng)
        corners.extend((int(x), int(y)) for x in xs)
    return np.asarray(corners, dtype=np.int64).reshape(-1, 2)


def teacher_views(img: Image.Image, spec: TeacherViewSpec, rng: np.random.Generator | None = None) -> TeacherViews:
    """Both teacher views of a decoded RGB image (see :func:`edgeiqa.runtime.preprocess.decode_image`)."""
    global_view = working_view(img, spec.contract)
    img = ensure_min_side(img, spec.patch)
    origins = patch_origins(img.width, img.height, spec, rng)
    pixels = np.asarray(img)
    p = spec.patch
    crops = np.stack([pixels[y : y + p, x : x + p] for x, y in origins])
    return TeacherViews(global_view, normalise(crops, spec.contract), origins, len(origins))


def collate_teacher_views(views: Sequence[TeacherViews]) -> dict[str, torch.Tensor]:
    """Batch views with different patch counts: pad patches to the largest count and mask the padding.

    Returns ``global_view`` [N, 3, G, G], ``patches`` [N, Kmax, 3, P, P], ``patch_mask`` [N, Kmax] (bool,
    True = real patch) and ``n_patches`` [N] (int64).
    """
    if not views:
        raise ValueError("collate_teacher_views needs at least one image")
    k_max = max(v.n_patches for v in views)
    first = views[0].patches
    patches = np.zeros((len(views), k_max, *first.shape[1:]), dtype=first.dtype)
    mask = np.zeros((len(views), k_max), dtype=bool)
    for i, v in enumerate(views):
        patches[i, : v.n_patches] = v.patches
        mask[i, : v.n_patches] = True
    return {
        "global_view": torch.from_numpy(np.stack([v.global_view for v in views])),
        "patches": torch.from_numpy(patches),
        "patch_mask": torch.from_numpy(mask),
        "n_patches": torch.tensor([v.n_patches for v in views], dtype=torch.int64),
    }
