"""Image decoders for the runtime: Pillow (the reference) and libjpeg-turbo through ``simplejpeg``.

Both return an upright 8-bit RGB Pillow image honouring the preprocessing contract (EXIF
orientation, decompression-bomb limit, JPEG DCT-scaled decoding when ``jpeg_draft`` is set), so the
rest of the pipeline cannot tell them apart beyond libjpeg IDCT rounding. ``simplejpeg`` (the
``fast-jpeg`` extra) handles only YCbCr/RGB JPEGs; everything else (PNG, gray, CMYK, damaged files)
goes through Pillow, whose error messages then name the file.

Which is faster, measured on a 3840x2160 quality-90 JPEG on the 2-core development machine (best
of 25, under load from other jobs): full-size decode to a Pillow image 25.7 ms with Pillow vs 34.6 ms
with simplejpeg (its raw decode to an ndarray is faster, 20.8 vs 27.6 ms, but copying the ndarray
into a Pillow image costs more than that gain); DCT-scaled (``jpeg_draft``) decode 8.1 vs 8.2 ms.
Measured again quietly (one thread, decode + the ``eqcnet_lite0`` views): Pillow 35-41 ms, simplejpeg
55-57 ms. The copy is slow because ``Image.fromarray`` first fills a fresh 33 MB image (page faults,
28 ms); with Pillow's block cache on (``Image.core.set_blocks_max(32)``) simplejpeg drops to 37-40 ms,
level with Pillow, not below it. End to end on 24 4K JPEGs with OpenVINO INT8 the Pillow path ran 36.7
images/s, the simplejpeg one 25.3 (``edgeiqa speed --decoder``). Pillow's wheels bundle libjpeg-turbo
too, so ``auto`` picks Pillow; ``simplejpeg`` stays available for platforms whose Pillow is built
against plain libjpeg.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from typing import Literal

from PIL import Image

from edgeiqa.errors import ConfigError, ImageDecodeError, require
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.jpeg_views import JpegViews, read_bytes
from edgeiqa.runtime.preprocess import ImageSource, decode_image, decode_views, working_shape

Decoder = Callable[[ImageSource, PreprocessContract], "Image.Image | JpegViews"]
DecoderName = Literal["auto", "pillow", "simplejpeg"]

_EXIF_ORIENTATION = 0x0112
# The same transforms as PIL.ImageOps.exif_transpose, applied without re-reading the EXIF block.
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {5, 6, 7, 8}
# JPEG colour spaces simplejpeg converts to RGB exactly as Pillow does; gray/CMYK/YCCK go to Pillow.
_FAST_COLORSPACES = {"YCbCr", "RGB"}


def decode_pillow(source: ImageSource, contract: PreprocessContract) -> Image.Image | JpegViews:
    """The reference decoder (:func:`edgeiqa.runtime.preprocess.decode_image`), or for a ``jpeg_regions``
    contract the views' own decode (:func:`edgeiqa.runtime.jpeg_views.decode_views`)."""
    return decode_views(source, contract)


def simplejpeg_available() -> bool:
    """Whether the optional ``simplejpeg`` package is importable (without importing it)."""
    return importlib.util.find_spec("simplejpeg") is not None


def _orientation(data: bytes) -> int | None:
    """EXIF orientation from the header alone (Pillow parses markers, no pixels); None if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - any parsing trouble: let Pillow's full path report it
        return None


def _draft_min_size(width: int, height: int, orientation: int, contract: PreprocessContract) -> tuple[int, int]:
    """(min_width, min_height) that make libjpeg pick the same DCT scale as Pillow's ``draft``.

    Pillow reduces by the largest s in {8, 4, 2, 1} with s <= min(W // w, H // h) and yields
    ceil(W / s) x ceil(H / s); asking simplejpeg for at least that size selects exactly scale 1/s.
    """
    target_w, target_h = working_shape(width, height, contract)
    if orientation in _SWAPS_AXES:  # the target is for the upright image; the stored one is turned
        target_w, target_h = target_h, target_w
    ratio = min(width // target_w, height // target_h)
    scale = next(s for s in (8, 4, 2, 1) if ratio >= s)
    return -(-width // scale), -(-height // scale)


def decode_simplejpeg(source: ImageSource, contract: PreprocessContract) -> Image.Image | JpegViews:
    """Decode a JPEG with libjpeg-turbo (``simplejpeg``); anything else goes through Pillow."""
    simplejpeg = require("simplejpeg", "fast-jpeg", "the libjpeg-turbo JPEG decoder")
    if contract.jpeg_regions:  # the views' own decode never makes a full frame
        return decode_views(source, contract)
    data = read_bytes(source)
    if not data.startswith(b"\xff\xd8"):
        return decode_image(source, contract)
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return decode_image(source, contract)
    if width * height > contract.max_pixels:
        raise ImageDecodeError(
            f"{_describe(source)}: {width}x{height} = {width * height:,} pixels exceeds the limit of "
            f"{contract.max_pixels:,} (decompression bomb guard: the manifest's "
            "preprocess.max_pixels; raise it there to allow such images)"
        )
    orientation = _orientation(data) if contract.exif_orientation else 1
    if colorspace not in _FAST_COLORSPACES or orientation is None:
        return decode_image(source, contract)
    size = {}
    if contract.jpeg_draft:
        min_w, min_h = _draft_min_size(width, height, orientation, contract)
        size = {"min_width": min_w, "min_height": min_h}
    try:
        # Accurate IDCT and fancy upsampling: libjpeg's defaults, which Pillow uses too.
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=False, fastupsample=False, **size)
    except ValueError:  # truncated or damaged data, arithmetic coding, ...: Pillow decides and names it
        return decode_image(source, contract)
    img = Image.fromarray(pixels, "RGB")
    transpose = _ORIENTATION_TRANSPOSE.get(orientation)
    return img.transpose(transpose) if transpose is not None else img


def _describe(source: ImageSource) -> str:
    return f"<{len(source)} bytes>" if isinstance(source, bytes) else str(source)


def get_decoder(name: DecoderName = "auto") -> Decoder:
    """``pillow``, ``simplejpeg`` (needs the ``fast-jpeg`` extra) or ``auto``: the measured fastest.

    ``auto`` is Pillow: see the measurements in this module's docstring.
    """
    if name in ("pillow", "auto"):
        return decode_pillow
    if name == "simplejpeg":
        require("simplejpeg", "fast-jpeg", "the libjpeg-turbo JPEG decoder")
        return decode_simplejpeg
    raise ConfigError(f"unknown decoder {name!r}: use auto, pillow or simplejpeg")
