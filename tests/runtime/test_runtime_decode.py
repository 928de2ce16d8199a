"""The libjpeg-turbo (simplejpeg) decoder agrees with Pillow: pixels, size, orientation, limits, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from runtime_helpers import smooth_image, tiny_contract

from edgeiqa.errors import ConfigError, ImageDecodeError
from edgeiqa.runtime.decode import decode_pillow, decode_simplejpeg, get_decoder, simplejpeg_available

pytestmark = pytest.mark.skipif(not simplejpeg_available(), reason="simplejpeg (fast-jpeg extra) not installed")

FULL = tiny_contract(max_pixels=1_000_000)  # with fragments: full-size decode
DRAFT = tiny_contract(fragments=None, jpeg_draft=True, max_pixels=1_000_000)


def _jpeg(path: Path, img: Image.Image, orientation: int | None = None, **kwargs) -> Path:
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    img.save(path, "JPEG", quality=kwargs.pop("quality", 90), **kwargs)
    return path


def _both(path: Path | bytes, contract) -> tuple[np.ndarray, np.ndarray]:
    fast, ref = decode_simplejpeg(path, contract), decode_pillow(path, contract)
    assert fast.mode == ref.mode == "RGB"
    return np.asarray(fast, dtype=np.int16), np.asarray(ref, dtype=np.int16)


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
@pytest.mark.parametrize("contract", [FULL, DRAFT], ids=["full", "draft"])
def test_simplejpeg_matches_pillow(tmp_path: Path, contract, progressive: bool) -> None:
    path = _jpeg(tmp_path / "a.jpg", smooth_image(640, 400), progressive=progressive)
    fast, ref = _both(path, contract)
    assert fast.shape == ref.shape
    assert np.abs(fast - ref).mean() < 1.0
    # draft: Pillow picks scale 1/8 here (min(640 // 32, 400 // 32) = 12 >= 8); simplejpeg must agree.
    assert fast.shape == ((400, 640, 3) if contract is FULL else (50, 80, 3))


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("contract", [FULL, DRAFT], ids=["full", "draft"])
def test_exif_orientation_is_applied_like_pillow(tmp_path: Path, contract, orientation: int) -> None:
    path = _jpeg(tmp_path / "o.jpg", smooth_image(320, 200, seed=3), orientation=orientation)
    fast, ref = _both(path, contract)
    assert fast.shape == ref.shape
    stored = (200, 320) if contract is FULL else (50, 80)  # draft: min(320 // 32, 200 // 32) = 6 -> scale 1/4
    assert fast.shape[:2] == (stored[::-1] if orientation in (6, 8) else stored)
    assert np.abs(fast - ref).mean() < 1.0


def test_exif_orientation_can_be_ignored(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "o.jpg", smooth_image(320, 200), orientation=6)
    contract = tiny_contract(exif_orientation=False, max_pixels=1_000_000)
    assert decode_simplejpeg(path, contract).size == decode_pillow(path, contract).size == (320, 200)


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_gray_and_cmyk_fall_back_to_pillow_exactly(tmp_path: Path, mode: str) -> None:
    path = _jpeg(tmp_path / f"{mode}.jpg", smooth_image(120, 80).convert(mode))
    fast, ref = _both(path, FULL)
    np.testing.assert_array_equal(fast, ref)


def test_png_and_bytes_inputs(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    smooth_image(60, 40).save(png)
    fast, ref = _both(png, FULL)
    np.testing.assert_array_equal(fast, ref)
    data = _jpeg(tmp_path / "b.jpg", smooth_image(60, 40)).read_bytes()
    fast, ref = _both(data, FULL)
    assert fast.shape == ref.shape and np.abs(fast - ref).mean() < 1.0


def test_decompression_bomb_guard_reads_the_header_first(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "big.jpg", smooth_image(400, 300))
    message = r"big\.jpg: 400x300 = 120,000 pixels exceeds the limit of 100,000 \(decompression bomb guard"
    for decode in (decode_simplejpeg, decode_pillow):
        with pytest.raises(ImageDecodeError, match=message):
            decode(path, tiny_contract(max_pixels=100_000))


def test_damaged_files_give_pillows_error_naming_the_file(tmp_path: Path) -> None:
    good = _jpeg(tmp_path / "good.jpg", smooth_image(200, 120)).read_bytes()
    cases = {
        "truncated.jpg": (good[: len(good) // 2], r"truncated\.jpg: corrupt or truncated image"),
        "empty.jpg": (b"", r"empty\.jpg: not a recognised image \(empty file\)"),
        "garbage.jpg": (b"\xff\xd8\xff\xe0 this is not a jpeg", r"garbage\.jpg: "),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        for decode in (decode_simplejpeg, decode_pillow):
            with pytest.raises(ImageDecodeError, match=message):
                decode(tmp_path / name, FULL)
    with pytest.raises(ImageDecodeError, match=r"missing\.jpg: cannot open \(No such file or directory\)"):
        decode_simplejpeg(tmp_path / "missing.jpg", FULL)


def test_get_decoder() -> None:
    assert get_decoder("pillow") is decode_pillow
    assert get_decoder("simplejpeg") is decode_simplejpeg
    assert get_decoder("auto") is decode_pillow  # measured: as fast at full size, equal with draft
    with pytest.raises(ConfigError, match=r"unknown decoder 'turbo': use auto, pillow or simplejpeg"):
        get_decoder("turbo")
