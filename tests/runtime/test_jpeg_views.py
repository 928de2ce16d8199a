"""jpeg_regions: the region path equals the Pillow path pixel for pixel; fallbacks; the memory budget."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeiqa.errors import ConfigError
from edgeiqa.runtime import frames, jpeg_views, turbojpeg
from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract
from edgeiqa.runtime.preprocess import decode_image, decode_views, fragment_view, preprocess, preprocess_image

CONTRACT = PreprocessContract(working_size=48, fragments=FragmentSpec(grid=3, patch=16), jpeg_regions=True)
needs_turbo = pytest.mark.skipif(not turbojpeg.available(), reason="libturbojpeg0 is not installed")


def photo_like(size=(400, 260), seed=0) -> Image.Image:
    """Smooth gradients plus noise, so DCT scaling and chroma upsampling both matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([x * 255 / size[0], y * 255 / size[1], (x + y) % 256], axis=-1)
    return Image.fromarray((base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8))


@pytest.fixture
def jpeg(tmp_path) -> Path:
    path = tmp_path / "a.jpg"
    photo_like().save(path, quality=90)
    return path


def test_contract_field_defaults_off_and_needs_fragments():
    assert PreprocessContract().jpeg_regions is False
    assert PreprocessContract.from_dict({"working_size": 64}).jpeg_regions is False  # old manifests
    with pytest.raises(ConfigError, match="jpeg_regions needs fragments"):
        PreprocessContract(fragments=None, jpeg_regions=True)


@needs_turbo
@pytest.mark.parametrize("seed", [None, 7])
def test_region_path_equals_pillow_path_and_full_decode_fragments(jpeg, seed):
    views = decode_views(jpeg, CONTRACT)
    assert isinstance(views, jpeg_views.JpegViews) and views.path == "regions"
    full_c = dataclasses.replace(CONTRACT, jpeg_regions=False)
    draft_c = dataclasses.replace(full_c, fragments=None, jpeg_draft=True)
    pillow = jpeg_views.pillow_views(decode_image(jpeg, draft_c), decode_image(jpeg, full_c))
    fast = preprocess_image(views, CONTRACT, np.random.default_rng(seed) if seed else None)
    slow = preprocess_image(pillow, CONTRACT, np.random.default_rng(seed) if seed else None)
    assert all(np.array_equal(fast[k], slow[k]) for k in ("image", "fragments"))
    # The native patches are exactly the full decode's: only the whole-image view changes.
    full = decode_image(jpeg, dataclasses.replace(CONTRACT, jpeg_regions=False))
    rng = np.random.default_rng(seed) if seed else None
    assert np.array_equal(fast["fragments"], fragment_view(full, CONTRACT, rng))
    draft = decode_image(jpeg, dataclasses.replace(CONTRACT, fragments=None, jpeg_regions=False, jpeg_draft=True))
    assert views.whole.size == draft.size == (100, 65)  # a 1/4-scale DCT decode still covers 48 px


@needs_turbo
def test_mirrored_views_equal_a_mirrored_full_frame(jpeg):
    flip = Image.Transpose.FLIP_LEFT_RIGHT
    views = decode_views(jpeg, CONTRACT).transpose(flip)
    full = decode_image(jpeg, dataclasses.replace(CONTRACT, jpeg_regions=False)).transpose(flip)
    got = preprocess_image(views, CONTRACT, np.random.default_rng(3))["fragments"]
    assert np.array_equal(got, fragment_view(full, CONTRACT, np.random.default_rng(3)))


def test_without_the_library_pillow_gives_the_same_pixels(jpeg, monkeypatch):
    expected = preprocess(jpeg, CONTRACT)
    monkeypatch.setattr(turbojpeg, "_LIB", None)
    views = decode_views(jpeg, CONTRACT)
    assert views.path == "pillow"
    got = preprocess_image(views, CONTRACT)
    assert all(np.array_equal(got[k], expected[k]) for k in expected)


@pytest.mark.parametrize("kind", ["png", "progressive"])
def test_png_and_progressive_jpeg_take_todays_path(tmp_path, kind):
    path = tmp_path / ("a.png" if kind == "png" else "a.jpg")
    photo_like().save(path, **({"progressive": True, "quality": 90} if kind == "progressive" else {}))
    decoded = decode_views(path, CONTRACT)
    assert isinstance(decoded, Image.Image) and decoded.size == (400, 260)  # a full frame
    today = preprocess(path, dataclasses.replace(CONTRACT, jpeg_regions=False))
    got = preprocess(path, CONTRACT)
    assert all(np.array_equal(got[k], today[k]) for k in today)


def test_parse_size_and_default_budget(monkeypatch):
    assert frames.parse_size("150MB") == 150_000_000 and frames.parse_size("1.5GiB") == 3 * 2**29
    assert frames.parse_size("512M") == 512 * 2**20
    with pytest.raises(ValueError, match="not a memory size"):
        frames.parse_size("lots")
    one_frame = frames.DEFAULT_BUDGET_PIXELS * frames.FRAME_BYTES_PER_PIXEL
    monkeypatch.setattr(frames, "_meminfo_bytes", lambda field: 8 * 2**30)
    assert frames.default_budget_bytes() == 2 * 2**30  # a quarter of MemAvailable
    monkeypatch.setattr(frames, "_meminfo_bytes", lambda field: 10 * 2**20)
    assert frames.default_budget_bytes() == one_frame  # never below one frame
    monkeypatch.setattr(frames, "current_rss_bytes", lambda: 90_000_000)
    assert frames.budget_for("150MB") == 60_000_000


def test_peek_bytes_charges_regions_less_than_a_frame(jpeg):
    assert frames.peek_bytes(str(jpeg)) == 400 * 260 * frames.FRAME_BYTES_PER_PIXEL
    assert frames.peek_bytes(str(jpeg), regions=True) == 400 * 260 * frames.REGIONS_BYTES_PER_PIXEL
