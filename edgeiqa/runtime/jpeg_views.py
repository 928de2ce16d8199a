"""Decode a JPEG as the views need it (contract ``jpeg_regions``), never as a full frame.

The student sees a whole-image view reduced to the working size and a mosaic of native-resolution
patches (about 1 % of a 4K frame). So the whole-image view comes from the DCT-scaled decode that
``jpeg_draft`` gives (libjpeg scaling: a 1/8-scale decode is the 8x8 block means, a box reduction,
not Pillow's antialiased filter at full size: the view changes, and the score agreement with the full
path is measured in ``studies/results/uhd_decode_paths.json``), and the patches from region decoding
(:mod:`edgeiqa.runtime.turbojpeg`), which gives exactly the full decode's pixels there.

The rule depends on the file alone, never on the machine: a baseline JPEG always gets the DCT-scaled
whole view and native patches, through TurboJPEG when it is there and through Pillow (a draft decode
plus a full decode: the same pixels, slower) when it is not, or when the file is gray, CMYK or turned
by EXIF. Non-JPEG files and progressive JPEGs keep today's path (a full decode for both views).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from edgeiqa.errors import ImageDecodeError
from edgeiqa.runtime import turbojpeg
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.preprocess import ImageSource, decode_image, fragment_origins, normalise, working_shape

_EXIF_ORIENTATION = 0x0112
Patcher = Callable[[list[tuple[int, int]], int], list[np.ndarray]]


@dataclass(frozen=True)
class JpegViews:
    """What a ``jpeg_regions`` decode yields: the DCT-scaled upright image and a way to cut native patches.

    ``size`` is the full-resolution (width, height); ``patches(origins, p)`` returns the p x p native
    patches at the given (x, y) origins of the upright image. ``mirrored`` is set by a horizontal flip
    (training), which mirrors both views as a flip of the full frame would.
    """

    whole: Image.Image
    size: tuple[int, int]
    patches: Patcher
    mirrored: bool = False
    path: str = "regions"  # "regions" (TurboJPEG) or "pillow" (the same pixels, for a test to tell apart)

    def transpose(self, method: Image.Transpose) -> JpegViews:
        if method != Image.Transpose.FLIP_LEFT_RIGHT:
            raise ValueError("a jpeg_regions decode can only be mirrored left-right")
        return dataclasses.replace(self, whole=self.whole.transpose(method), mirrored=not self.mirrored)

    def fragment_view(self, contract: PreprocessContract, rng: np.random.Generator | None) -> np.ndarray:
        """The same mosaic as :func:`edgeiqa.runtime.preprocess.fragment_view` on the full frame."""
        spec = contract.fragments
        if spec is None:
            raise ValueError("this contract has no fragment view")
        width, height = self.size
        p = spec.patch
        ys = fragment_origins(height, spec, rng).tolist()
        xs = fragment_origins(width, spec, rng).tolist()
        stored_xs = [width - p - x for x in xs] if self.mirrored else xs
        cut = self.patches([(x, y) for y in ys for x in stored_xs], p)
        rows = [np.concatenate(cut[r * len(xs) : (r + 1) * len(xs)], axis=1) for r in range(len(ys))]
        mosaic = np.concatenate(rows, axis=0)
        if self.mirrored:  # each patch flipped in place, the columns already in mirrored order
            mosaic = mosaic.reshape(len(ys), p, len(xs), p, 3)[:, :, :, ::-1].reshape(mosaic.shape)
        return normalise(mosaic, contract)


def _whole_contract(contract: PreprocessContract) -> PreprocessContract:
    return dataclasses.replace(contract, fragments=None, jpeg_regions=False, jpeg_draft=True)


def _full_contract(contract: PreprocessContract) -> PreprocessContract:
    return dataclasses.replace(contract, jpeg_regions=False, jpeg_draft=False)


def _read(source: ImageSource) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        with open(source, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ImageDecodeError(f"{source}: cannot open ({exc.strerror or exc})") from exc


def _jpeg_header(data: bytes) -> tuple[tuple[int, int], str, bool, int] | None:
    """(size, mode, progressive, EXIF orientation) of a JPEG from its header; None for other files."""
    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "JPEG":
                return None
            progressive = bool(img.info.get("progressive") or img.info.get("progression"))
            return img.size, img.mode, progressive, int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - damaged headers: Pillow's full path names the problem
        return None


def decode_views(source: ImageSource, contract: PreprocessContract) -> Image.Image | JpegViews:
    """Per the contract: a full upright RGB image, or for ``jpeg_regions`` on a baseline JPEG the two
    views' sources (:class:`JpegViews`). :func:`edgeiqa.runtime.preprocess.preprocess_image` takes both."""
    if not contract.jpeg_regions:
        return decode_image(source, contract)
    data = _read(source)
    head = _jpeg_header(data)
    if head is None or head[2] or min(head[0]) < max(contract.fragments.patch, 8):
        return decode_image(data if isinstance(source, bytes) else source, _full_contract(contract))
    (width, height), mode, _, orientation = head
    if width * height > contract.max_pixels or not (turbojpeg.available() and mode == "RGB" and orientation == 1):
        return _pillow_views(source, contract)  # decode_image applies the bomb guard and names the file
    try:
        return _turbo_views(data, width, height, contract)
    except turbojpeg.TurboJpegError:  # damaged data, arithmetic coding, ...: Pillow decides and names it
        return _pillow_views(source, contract)


def _turbo_views(data: bytes, width: int, height: int, contract: PreprocessContract) -> JpegViews:
    target_w, target_h = working_shape(width, height, contract)
    ratio = min(width // target_w, height // target_h)
    scale = next(s for s in (8, 4, 2, 1) if ratio >= s)  # Pillow's draft rule: the same DCT scale
    whole = Image.fromarray(turbojpeg.decode(data, -(-width // scale), -(-height // scale)), "RGB")
    _, _, subsampling, _ = turbojpeg.header(data)
    mcu_w, mcu_h = turbojpeg.MCU_SIZES.get(subsampling, (16, 16))

    def patches(origins: list[tuple[int, int]], p: int) -> list[np.ndarray]:
        # One MCU of margin on each side: chroma upsampling reads the neighbouring sample, so the patch
        # pixels then equal the full decode's (tested in tests/runtime/test_jpeg_views.py).
        boxes = []
        for x, y in origins:
            x0, y0 = max(0, (x // mcu_w - 1) * mcu_w), max(0, (y // mcu_h - 1) * mcu_h)
            boxes.append((x0, y0, min(width, x + p + mcu_w) - x0, min(height, y + p + mcu_h) - y0))
        out = []
        for small, (x, y), (x0, y0, w, h) in zip(turbojpeg.crop(data, boxes), origins, boxes):
            out.append(turbojpeg.decode(small, w, h)[y - y0 : y - y0 + p, x - x0 : x - x0 + p])
        return out

    return JpegViews(whole, (width, height), patches)


def _pillow_views(source: ImageSource, contract: PreprocessContract) -> JpegViews:
    """The same views through Pillow: a draft decode for the whole view, a full decode for the patches."""
    whole = decode_image(source, _whole_contract(contract))
    full = decode_image(source, _full_contract(contract))

    def patches(origins: list[tuple[int, int]], p: int) -> list[np.ndarray]:
        return [np.asarray(full.crop((x, y, x + p, y + p))) for x, y in origins]

    return JpegViews(whole, full.size, patches, path="pillow")
