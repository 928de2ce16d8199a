"""Pixels to model inputs, exactly per a :class:`PreprocessContract`, with numpy + Pillow only.

Training (the student's views) and the device runtime both call these functions, so there is one
implementation of the contract. Every decode failure becomes an :class:`ImageDecodeError` whose
message names the file.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edgeiqa.errors import ImageDecodeError
from edgeiqa.runtime import jpeg_views, turbojpeg
from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract
from edgeiqa.runtime.jpeg_views import JpegViews

ImageSource = str | os.PathLike | bytes

_FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}  # these swap width and height


def _describe(source: ImageSource) -> str:
    return f"<{len(source)} bytes>" if isinstance(source, bytes) else str(source)


def working_shape(width: int, height: int, contract: PreprocessContract) -> tuple[int, int]:
    """(width, height) of the whole-image view for an upright image of this size."""
    size, multiple = contract.working_size, contract.size_multiple
    if contract.size_policy == "square":
        return size, size
    short, long_ = min(width, height), max(width, height)
    scale = size / (short if contract.size_policy == "short_side" else long_)
    w, h = (max(multiple, int(round(d * scale / multiple)) * multiple) for d in (width, height))
    return w, h


def to_rgb(img: Image.Image) -> Image.Image:
    """Gray, palette, CMYK, alpha and 16-bit images to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Pillow's convert() clips 16-bit values at 255 instead of scaling them.
        arr = np.asarray(img, dtype=np.uint32)
        bits = 16 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 8
        img = Image.fromarray((arr >> (bits - 8)).clip(0, 255).astype(np.uint8), mode="L")
    elif img.mode == "F":
        img = Image.fromarray(_float_to_uint8(np.asarray(img, dtype=np.float32)), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite over white: a transparent background shown on a page or a phone is usually white.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


def _bomb_message(name: str, pillow_text: str, contract: PreprocessContract) -> str:
    """Pillow refuses > 2x its MAX_IMAGE_PIXELS before the contract's guard sees the size: say it in the
    contract's terms (the user can raise --max-pixels, not Pillow's module global)."""
    match = re.search(r"\((\d+) pixels\)", pillow_text)
    pixels = int(match.group(1)) if match else None
    if pixels is not None and pixels > contract.max_pixels:
        return (
            f"{name}: {pixels:,} pixels exceeds the limit of {contract.max_pixels:,} (decompression "
            "bomb guard; raise it for this run with --max-pixels N, Predictor.load(max_pixels=N))"
        )
    hard = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return (
        f"{name}: {pixels:,} pixels is within the --max-pixels limit of "
        f"{contract.max_pixels:,} but above Pillow's hard limit of {hard:,} (PIL.Image.MAX_IMAGE_PIXELS x 2)"
        if pixels is not None
        else f"{name}: refused by Pillow's decompression bomb guard ({pillow_text})"
    )


class UnsupportedPixels(ValueError):
    """Pixel values no rule maps to 8 bits without guessing (a float image on neither usual scale)."""


def _float_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Float pixels to uint8, the scale decided by their range: 0-1 (scaled by 255) or 0-255 (kept).

    Float TIFFs come both ways (a 0-255 one clipped as 0-1 turns nearly white); anything else
    (negative, HDR, 16-bit-valued, NaN) is refused rather than mapped by a guess.
    """
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise UnsupportedPixels("float image with NaN or infinite pixels")
    low, high = float(arr.min()), float(arr.max())
    if low >= -1e-3 and high <= 1.0 + 1e-3:
        scale = 255.0
    elif low >= -0.5 and high <= 255.5:
        scale = 1.0
    else:
        raise UnsupportedPixels(
            f"float pixels span [{low:.4g}, {high:.4g}]: neither the 0-1 nor the 0-255 scale; "
            "convert it to 8 or 16 bits first"
        )
    return (arr * scale + 0.5).clip(0, 255).astype(np.uint8)


def decode_image(source: ImageSource, contract: PreprocessContract) -> Image.Image:
    """Decode a file or bytes into an upright 8-bit RGB Pillow image, refusing decompression bombs."""
    name = _describe(source)
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as exc:
        raise ImageDecodeError(f"{name}: cannot open ({exc.strerror or exc})") from exc
    with stream:
        try:
            img = Image.open(stream)
            width, height = img.size
            if width * height > contract.max_pixels:
                raise ImageDecodeError(
                    f"{name}: {width}x{height} = {width * height:,} pixels exceeds the limit of "
                    f"{contract.max_pixels:,} (decompression bomb guard; raise it for this run with "
                    "--max-pixels N, Predictor.load(max_pixels=N))"
                )
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1) if contract.exif_orientation else 1
            if contract.jpeg_draft and img.format == "JPEG":
                target = working_shape(width, height, contract)
                if orientation in _TRANSPOSING_ORIENTATIONS:
                    target = target[::-1]
                img.draft("RGB", target)
            img.load()
        except ImageDecodeError:
            raise
        except Image.DecompressionBombError as exc:  # Pillow's own guard fired inside Image.open
            raise ImageDecodeError(_bomb_message(name, str(exc), contract)) from exc
        except UnidentifiedImageError as exc:
            empty = " (empty file)" if not isinstance(source, bytes) and os.path.getsize(source) == 0 else ""
            raise ImageDecodeError(f"{name}: not a recognised image{empty}") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageDecodeError(f"{name}: corrupt or truncated image ({exc})") from exc
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    try:
        return to_rgb(img)
    except UnsupportedPixels as exc:
        raise ImageDecodeError(f"{name}: {exc}") from exc


def normalise(pixels: np.ndarray, contract: PreprocessContract) -> np.ndarray:
    """[..., H, W, 3] uint8 -> [..., 3, H, W] float: channel order, mean and std per the contract."""
    if contract.channel_order == "BGR":
        pixels = pixels[..., ::-1]
    mean = np.asarray(contract.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(contract.std, dtype=np.float32) * 255.0)
    out = (pixels.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(np.moveaxis(out, -1, -3), dtype=contract.dtype)


def working_view(img: Image.Image, contract: PreprocessContract) -> np.ndarray:
    """The whole image reduced to the working size with an antialiased filter: 3xHxW float."""
    size = working_shape(img.width, img.height, contract)
    if img.size != size:
        img = img.resize(size, _FILTERS[contract.resize_filter], reducing_gap=contract.reducing_gap)
    return normalise(np.asarray(img), contract)


def fragment_origins(length: int, spec: FragmentSpec, rng: np.random.Generator | None) -> np.ndarray:
    """Start offsets of the ``grid`` patches along one axis of ``length`` pixels.

    Each patch lies inside its cell when cells are at least a patch wide; on images smaller than the
    mosaic the patches overlap instead. ``rng`` jitters positions (training); None gives cell centres.
    """
    grid, patch = spec.grid, spec.patch
    span = max(length - patch, 0)
    cell = length / grid
    if rng is None:
        centres = (np.arange(grid) + 0.5) * cell
        starts = centres - patch / 2
    else:
        low = np.arange(grid) * cell
        room = np.maximum(cell - patch, 0.0)
        starts = low + rng.random(grid) * room - np.where(room > 0, 0.0, (patch - cell) / 2)
    # floor(x + 0.5), not np.round: banker's rounding is a rule a C++ port on a device would not guess.
    return np.clip(np.floor(starts + 0.5), 0, span).astype(np.int64)


def ensure_min_side(img: Image.Image, side: int) -> Image.Image:
    """``img`` upscaled (aspect kept) so both sides are at least ``side``; unchanged when they already are.

    Only images smaller than one native patch need it; upscaling them is the least-bad way to keep the
    model's input shape.
    """
    if min(img.size) >= side:
        return img
    scale = side / min(img.size)
    size = (max(side, round(img.width * scale)), max(side, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BILINEAR)


# Below this short side a photo is refused, not scored: the native-resolution view reads 32 px patches,
# and a smaller image would have to be invented (upscaled by ensure_min_side) to fill one. That upscale
# is what made the same photo score 76.2 at 31x31 (every pixel resampled: blur to the fragment branch)
# and 59.1 at 32x32 (native pixels), and 1x1 or 8x8 images score like flat grey. At and above the
# threshold no fragment pixel is resampled, so the score moves smoothly with size
# (tests/test_hostile_round_two.py checks it). Training keeps ensure_min_side: its datasets are its own.
MIN_ASSESSABLE_SIDE = 32


def min_assessable_side(contract: PreprocessContract) -> int:
    """The smallest short side the runtime scores: the fragment patch, and never below 32 px."""
    patch = contract.fragments.patch if contract.fragments is not None else 0
    return max(MIN_ASSESSABLE_SIDE, patch)


def check_assessable(name: str, img: Image.Image, contract: PreprocessContract) -> None:
    """Refuse, in one line naming the file, an image too small to assess (see MIN_ASSESSABLE_SIDE)."""
    side = min_assessable_side(contract)
    if min(img.size) < side:
        raise ImageDecodeError(
            f"{name}: {img.width}x{img.height} is too small to assess (the runtime scores images whose short "
            f"side is at least {side} px, the model's native patch)"
        )


def fragment_view(
    img: Image.Image | JpegViews, contract: PreprocessContract, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Native-resolution patches on a grid, tiled into a (grid*patch)^2 mosaic: 3xFxF float. A
    ``jpeg_regions`` decode (:class:`JpegViews`) cuts the same patches without a full frame."""
    spec = contract.fragments
    if spec is None:
        raise ValueError("this contract has no fragment view")
    p = spec.patch
    if isinstance(img, JpegViews):
        ys = fragment_origins(img.size[1], spec, rng).tolist()
        xs = fragment_origins(img.size[0], spec, rng).tolist()
        cut = img.patches([(x, y) for y in ys for x in xs], p)
        rows = [np.concatenate(cut[r * len(xs) : (r + 1) * len(xs)], axis=1) for r in range(len(ys))]
        return normalise(np.concatenate(rows, axis=0), contract)
    img = ensure_min_side(img, spec.patch)
    ys = fragment_origins(img.height, spec, rng)
    xs = fragment_origins(img.width, spec, rng)
    # Crop + paste in Pillow: converting a whole 4K image to numpy just to cut 49 patches costs ~20 ms.
    mosaic = Image.new("RGB", (spec.mosaic_size, spec.mosaic_size))
    for row, y in enumerate(ys.tolist()):
        for col, x in enumerate(xs.tolist()):
            mosaic.paste(img.crop((x, y, x + p, y + p)), (col * p, row * p))
    return normalise(np.asarray(mosaic), contract)


def decode_views(source: ImageSource, contract: PreprocessContract) -> Image.Image | JpegViews:
    """Per the contract: a full upright RGB image, or for ``jpeg_regions`` on a baseline JPEG the two views'
    sources (:mod:`edgeiqa.runtime.jpeg_views`). The pixels depend on the file, not on the machine:
    TurboJPEG when it is there, else Pillow (same pixels, slower); PNG and progressive JPEGs: a full frame."""
    if not contract.jpeg_regions:
        return decode_image(source, contract)
    full_contract = dataclasses.replace(contract, jpeg_regions=False)
    data = jpeg_views.read_bytes(source)
    head = jpeg_views.jpeg_header(data)
    if head is None or head[2] or min(head[0]) < max(contract.fragments.patch, 8):
        return decode_image(source, full_contract)
    size, mode, _, orientation = head
    target = working_shape(*size, contract)
    fast = turbojpeg.available() and mode == "RGB" and orientation == 1
    if fast and size[0] * size[1] <= contract.max_pixels:  # else decode_image's guard names the file
        try:
            return jpeg_views.turbo_views(data, size, target)
        except turbojpeg.TurboJpegError:  # damaged data, arithmetic coding, ...: Pillow decides
            pass
    whole = decode_image(source, dataclasses.replace(full_contract, fragments=None, jpeg_draft=True))
    return jpeg_views.pillow_views(whole, decode_image(source, full_contract))


def preprocess_image(
    img: Image.Image | JpegViews, contract: PreprocessContract, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """All model inputs for one decoded image (or a ``jpeg_regions`` decode), keyed by
    :attr:`PreprocessContract.input_names`."""
    inputs = {"image": working_view(img.whole if isinstance(img, JpegViews) else img, contract)}
    if contract.fragments is not None:
        inputs["fragments"] = fragment_view(img, contract, rng)
    return inputs


def preprocess(
    source: ImageSource, contract: PreprocessContract, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """Decode ``source`` and build every model input (unbatched, CxHxW) per the contract."""
    return preprocess_image(decode_views(source, contract), contract, rng)
