"""The preprocessing contract and its numpy + Pillow implementation (what training and devices share)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from edgeiqa.errors import ConfigError, ImageDecodeError
from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract
from edgeiqa.runtime.preprocess import (
    decode_image,
    fragment_origins,
    fragment_view,
    preprocess,
    working_shape,
    working_view,
)

RAW = PreprocessContract(mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255))  # identity normalisation


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_contract_round_trips_through_json() -> None:
    contract = PreprocessContract(working_size=256, fragments=FragmentSpec(grid=4, patch=16), size_policy="short_side")
    again = PreprocessContract.from_dict(json.loads(json.dumps(contract.to_dict())))
    assert again == contract
    assert again.input_names == ("image", "fragments")
    assert PreprocessContract(fragments=None).input_names == ("image",)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"resize_filter": "nearest"}, "nearest decimation aliases"),
        ({"jpeg_draft": True}, "jpeg_draft cannot be combined with fragments"),
        ({"working_size": 8}, "working_size must be >= 16"),
        ({"std": (0.1, 0.0, 0.1)}, "std > 0"),
    ],
)
def test_contract_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PreprocessContract(**kwargs)


def test_contract_from_dict_names_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown keys \['resize_mode'\]"):
        PreprocessContract.from_dict({"resize_mode": "bilinear"})


@pytest.mark.parametrize(
    "policy, size, expected",
    [("square", 224, (224, 224)), ("short_side", 224, (384, 224)), ("long_side", 384, (384, 224))],
)
def test_working_shape_policies(policy: str, size: int, expected: tuple[int, int]) -> None:
    contract = PreprocessContract(working_size=size, size_policy=policy)
    assert working_shape(3840, 2160, contract) == expected


def test_working_view_is_antialiased() -> None:
    # A 1-px checkerboard reduced 8x must become flat grey; plain decimation would keep it black or white.
    board = (np.indices((512, 512)).sum(axis=0) % 2 * 255).astype(np.uint8)
    img = Image.fromarray(np.stack([board] * 3, axis=-1))
    out = working_view(img, PreprocessContract(working_size=64, fragments=None, mean=(0, 0, 0), std=(1, 1, 1)))
    assert out.shape == (3, 64, 64) and out.dtype == np.float32
    assert abs(float(out.mean()) - 0.5) < 0.01 and float(out.std()) < 0.01  # values in 0..1 here


def test_normalisation_and_channel_order() -> None:
    img = Image.new("RGB", (32, 32), (255, 128, 0))
    contract = PreprocessContract(working_size=16, fragments=None, channel_order="BGR")
    out = working_view(img, contract)
    # mean/std are given in the model's channel order, so channel 0 (blue) uses mean[0].
    expected_b = (0 / 255 - contract.mean[0]) / contract.std[0]
    expected_r = (255 / 255 - contract.mean[2]) / contract.std[2]
    np.testing.assert_allclose(out[0], expected_b, atol=1e-5)
    np.testing.assert_allclose(out[2], expected_r, atol=1e-5)


def test_eval_fragments_are_native_pixels_at_cell_centres() -> None:
    img = _photo(400, 300)
    spec = FragmentSpec(grid=4, patch=16)
    contract = PreprocessContract(working_size=64, fragments=spec, mean=(0, 0, 0), std=(1 / 255,) * 3)
    mosaic = fragment_view(img, contract)
    assert mosaic.shape == (3, 64, 64)
    pixels = np.asarray(img).astype(np.float32).transpose(2, 0, 1)
    ys, xs = fragment_origins(300, spec, None), fragment_origins(400, spec, None)
    assert list(xs) == [42, 142, 242, 342] and list(ys) == [30, 105, 180, 255]
    np.testing.assert_allclose(mosaic[:, 16:32, 32:48], pixels[:, ys[1] : ys[1] + 16, xs[2] : xs[2] + 16], atol=1e-3)


def test_training_jitter_is_seeded_and_stays_in_the_image() -> None:
    spec = FragmentSpec(grid=5, patch=20)
    a = fragment_origins(333, spec, np.random.default_rng(3))
    b = fragment_origins(333, spec, np.random.default_rng(3))
    c = fragment_origins(333, spec, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 333 - 20
    cells = np.arange(5) * 333 / 5
    assert np.all(a >= np.floor(cells)) and np.all(a + 20 <= np.ceil(cells + 333 / 5))


def test_fragments_of_an_image_smaller_than_the_mosaic_keep_the_shape() -> None:
    contract = PreprocessContract(working_size=32, fragments=FragmentSpec(grid=4, patch=16))
    assert fragment_view(_photo(40, 12), contract).shape == (3, 64, 64)


def _jpeg_bytes(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **kwargs)
    return buf.getvalue()


def test_exif_orientation_is_applied(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_jpeg_bytes(_photo(64, 32), exif=exif))
    assert decode_image(path, RAW).size == (32, 64)
    assert decode_image(path, PreprocessContract(exif_orientation=False)).size == (64, 32)


def test_jpeg_draft_decodes_at_reduced_scale_but_covers_the_working_size(tmp_path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(_jpeg_bytes(_photo(1600, 1200)))
    contract = PreprocessContract(working_size=224, fragments=None, jpeg_draft=True)
    img = decode_image(path, contract)
    assert img.size == (400, 300)  # 1/4 DCT scale: the smallest that still covers 224x224
    assert preprocess(path, contract)["image"].shape == (3, 224, 224)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "LA"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    img = _photo(20, 10).convert(mode)
    out = decode_image(_png_or_tiff_bytes(img), RAW)
    assert out.mode == "RGB" and out.size == (20, 10)


def _png_or_tiff_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="TIFF" if img.mode == "CMYK" else "PNG")
    return buf.getvalue()


def test_transparent_pixels_are_composited_on_white() -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(decode_image(_png_or_tiff_bytes(img), RAW)).min() == 255


def test_sixteen_bit_gray_is_scaled_not_clipped() -> None:
    ramp = np.linspace(0, 65535, 256, dtype=np.uint16).reshape(16, 16)
    img = Image.fromarray(ramp)
    out = np.asarray(decode_image(_png_or_tiff_bytes(img), RAW))
    assert out[..., 0].max() == 255 and out[..., 0].min() == 0
    assert len(np.unique(out[..., 0])) > 200  # a clipped conversion would leave ~2 levels


def test_decompression_bombs_are_refused_by_name(tmp_path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("L", (4000, 3000)).save(path)
    with pytest.raises(ImageDecodeError, match=r"bomb\.png: 4000x3000 = 12,000,000 pixels exceeds"):
        decode_image(path, PreprocessContract(max_pixels=10_000_000))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.jpg", b"", "not a recognised image \\(empty file\\)"),
        ("notes.jpg", b"this is text, not pixels", "not a recognised image"),
        ("cut.jpg", None, "corrupt or truncated"),
    ],
)
def test_bad_files_raise_one_line_naming_the_file(tmp_path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content if content is not None else _jpeg_bytes(_photo(256, 256))[:2000])
    with pytest.raises(ImageDecodeError, match=f"{name}: {message}") as info:
        decode_image(path, RAW)
    assert "\n" not in str(info.value)


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(ImageDecodeError, match="nowhere.png: cannot open"):
        decode_image(tmp_path / "nowhere.png", RAW)
