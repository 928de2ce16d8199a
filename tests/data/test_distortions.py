"""The distortion registry: shapes, determinism, severity ordering, and the codecs being real."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from edgeiqa.data.distortions import DISTORTIONS, JPEG_QUALITY, LEVELS, apply_distortion, get_distortion
from edgeiqa.data.pristine import load_pristine
from edgeiqa.errors import ConfigError

RANDOM_TYPES = {"gaussian_noise", "impulse_noise", "motion_blur"}


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_pristine(max_side=96, max_sources=1)[0].pixels


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_registry_has_ten_types_or_more():
    assert len(DISTORTIONS) >= 10
    assert {"jpeg", "gaussian_blur", "gaussian_noise", "contrast_change"} <= set(DISTORTIONS)


@pytest.mark.parametrize("name", sorted(DISTORTIONS))
def test_keeps_shape_and_dtype_and_leaves_input_alone(photo, name):
    before = photo.copy()
    for level in range(1, LEVELS + 1):
        out = apply_distortion(name, photo, level, _rng())
        assert out.shape == photo.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(photo, before)


@pytest.mark.parametrize("name", sorted(DISTORTIONS))
def test_severity_grows_from_level_1_to_level_5(photo, name):
    def error(level: int) -> float:
        out = apply_distortion(name, photo, level, _rng())
        return float(np.abs(out.astype(np.int16) - photo).mean())

    assert error(1) > 0.0
    assert error(5) > 1.5 * error(1), name


@pytest.mark.parametrize("name", sorted(DISTORTIONS))
def test_same_seed_same_pixels(photo, name):
    a = apply_distortion(name, photo, 3, _rng(7))
    b = apply_distortion(name, photo, 3, _rng(7))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(RANDOM_TYPES))
def test_random_types_follow_the_generator(photo, name):
    a = apply_distortion(name, photo, 3, _rng(1))
    b = apply_distortion(name, photo, 3, _rng(2))
    assert not np.array_equal(a, b)


def test_no_global_random_state_is_used(photo):
    np.random.seed(0)
    a = apply_distortion("gaussian_noise", photo, 2, _rng(3))
    np.random.seed(12345)
    b = apply_distortion("gaussian_noise", photo, 2, _rng(3))
    np.testing.assert_array_equal(a, b)


def test_jpeg_is_a_real_jpeg_round_trip(photo):
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=JPEG_QUALITY[0], subsampling=2)
    expected = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    np.testing.assert_array_equal(apply_distortion("jpeg", photo, 1, _rng()), expected)


def test_saturation_change_at_level_5_is_grey(photo):
    out = apply_distortion("saturation_change", photo, 5, _rng()).astype(int)
    assert np.abs(out[..., 0] - out[..., 1]).max() <= 1 and np.abs(out[..., 1] - out[..., 2]).max() <= 1


def test_darkening_and_contrast_loss_go_the_right_way(photo):
    assert apply_distortion("brightness_change", photo, 3, _rng()).mean() < photo.mean() - 10
    assert apply_distortion("contrast_change", photo, 3, _rng()).std() < 0.5 * photo.std()


def test_bad_level_name_and_input_are_config_errors(photo):
    with pytest.raises(ConfigError, match=r"distortion level must be in 1\.\.5, got 6"):
        apply_distortion("jpeg", photo, 6, _rng())
    with pytest.raises(ConfigError, match=r"unknown distortion type 'fog'; known: jpeg, "):
        get_distortion("fog")
    with pytest.raises(ConfigError, match=r"HxWx3 uint8 images, got float32 \(8, 8, 3\)"):
        apply_distortion("jpeg", np.zeros((8, 8, 3), np.float32), 1, _rng())
