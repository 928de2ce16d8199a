"""Dynamic patch cropping: counts grow with area, grid follows the aspect ratio, pixels are native."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from edgeiqa.errors import ConfigError
from edgeiqa.models.teacher_views import (
    TeacherViewSpec,
    collate_teacher_views,
    patch_count,
    patch_origins,
    teacher_views,
)
from edgeiqa.runtime.contract import PreprocessContract

PAPER = TeacherViewSpec()  # 384 px global view, 224 px patches, density 10, at most 16
RAW = PreprocessContract(working_size=64, fragments=None, mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255))


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    "size, expected",
    [((200, 150), 1), ((512, 384), 1), ((1024, 768), 2), ((1920, 1080), 5), ((3840, 2160), 16), ((7680, 4320), 16)],
)
def test_patch_count_follows_area(size: tuple[int, int], expected: int) -> None:
    assert patch_count(*size, PAPER) == expected


def test_patch_count_is_monotone_in_area() -> None:
    sides = np.linspace(100, 5000, 200).astype(int)
    counts = [patch_count(int(s), int(s * 9 / 16), PAPER) for s in sides]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] == PAPER.max_patches


def test_grid_follows_aspect_ratio() -> None:
    landscape = patch_origins(3840, 2160, PAPER)
    portrait = patch_origins(2160, 3840, PAPER)
    assert len(landscape) == len(portrait) == 16
    # 16 patches on 16:9 -> 3 rows (5/6/5); on 9:16 -> 5 rows (3/3/4/3/3): more rows than columns.
    assert np.unique(landscape[:, 1], return_counts=True)[1].tolist() == [5, 6, 5]
    assert np.unique(portrait[:, 1], return_counts=True)[1].tolist() == [3, 3, 4, 3, 3]


def test_patches_are_native_pixels_fixed_in_eval_and_jittered_in_training() -> None:
    img = _photo(640, 480)
    spec = TeacherViewSpec(RAW, patch=64, density=8.0, max_patches=8)
    views = teacher_views(img, spec)
    assert views.n_patches == patch_count(640, 480, spec) == 8
    assert views.global_view.shape == (3, 64, 64) and views.patches.shape == (8, 3, 64, 64)
    pixels = np.asarray(img)
    for (x, y), patch in zip(views.origins, views.patches):
        np.testing.assert_allclose(patch, pixels[y : y + 64, x : x + 64].transpose(2, 0, 1), atol=1e-3)
    np.testing.assert_array_equal(teacher_views(img, spec).origins, views.origins)
    jittered = teacher_views(img, spec, rng=np.random.default_rng(1)).origins
    assert not np.array_equal(jittered, views.origins)
    assert (jittered >= 0).all() and (jittered[:, 0] <= 640 - 64).all() and (jittered[:, 1] <= 480 - 64).all()


def test_image_smaller_than_a_patch_gets_one_upscaled_patch() -> None:
    views = teacher_views(_photo(40, 20), TeacherViewSpec(RAW, patch=32, density=4.0, max_patches=4))
    assert views.n_patches == 1 and views.patches.shape == (1, 3, 32, 32)


def test_collate_pads_and_masks_different_patch_counts() -> None:
    spec = TeacherViewSpec(RAW, patch=32, density=1.0, max_patches=6)
    small, large = teacher_views(_photo(40, 40), spec), teacher_views(_photo(96, 64, seed=1), spec)
    assert (small.n_patches, large.n_patches) == (2, 6)
    batch = collate_teacher_views([small, large])
    assert batch["patches"].shape == (2, 6, 3, 32, 32) and batch["global_view"].shape == (2, 3, 64, 64)
    assert batch["patch_mask"].tolist() == [[True, True, False, False, False, False], [True] * 6]
    assert batch["n_patches"].tolist() == [2, 6]
    assert torch.count_nonzero(batch["patches"][0, 2:]) == 0


def test_spec_validation_and_round_trip() -> None:
    with pytest.raises(ConfigError, match="patch >= 8, density > 0, max_patches >= 1; got patch=224 density=0"):
        TeacherViewSpec(density=0)
    spec = TeacherViewSpec(RAW, patch=48, density=3.0, max_patches=5)
    assert TeacherViewSpec.from_dict(spec.to_dict()) == spec
