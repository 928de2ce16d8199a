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
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from edgeiqa.errors import ImageDecodeError
from edgeiqa.runtime import turbojpeg

_EXIF_ORIENTATION = 0x0112
Patcher = Callable[[list[tuple[int, int]], int], list[np.ndarray]]


@dataclass(frozen=True)
class JpegViews:
    """What a ``jpeg_regions`` decode yields: the DCT-scaled upright image and a way to cut native patches.

    ``size`` is the full-resolution (width, height); :meth:`patches` returns the p x p native patches at
    (x, y) origins of the upright image. ``mirrored`` is set by a horizontal flip (training), which
    mirrors both views as a flip of the full frame would. ``path`` says which decoder made it.
    """

    whole: Image.Image
    size: tuple[int, int]
    cut: Patcher
    mirrored: bool = False
    path: str = "regions"  # "regions" (TurboJPEG) or "pillow" (the same pixels, for a test to tell apart)

    def transpose(self, method: Image.Transpose) -> JpegViews:
        if method != Image.Transpose.FLIP_LEFT_RIGHT:
            raise ValueError("a jpeg_regions decode can only be mirrored left-right")
        return dataclasses.replace(self, whole=self.whole.transpose(method), mirrored=not self.mirrored)

    def patches(self, origins: list[tuple[int, int]], p: int) -> list[np.ndarray]:
        if not self.mirrored:
            return self.cut(origins, p)
        width = self.size[0]
        return [patch[:, ::-1] for patch in self.cut([(width - p - x, y) for x, y in origins], p)]


def read_bytes(source: str | os.PathLike | bytes) -> bytes:
    """The file's bytes (bytes pass through); an unreadable file is one ImageDecodeError naming it."""
    if isinstance(source, bytes):
        return source
    try:
        with open(source, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ImageDecodeError(f"{source}: cannot open ({exc.strerror or exc})") from exc


def jpeg_header(data: bytes) -> tuple[tuple[int, int], str, bool, int] | None:
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


def draft_scale(size: tuple[int, int], target: tuple[int, int]) -> int:
    """The DCT scale Pillow's ``draft`` picks: the largest of 8, 4, 2, 1 that still covers ``target``."""
    ratio = min(size[0] // target[0], size[1] // target[1])
    return next(s for s in (8, 4, 2, 1) if ratio >= s)


def turbo_views(data: bytes, size: tuple[int, int], target: tuple[int, int]) -> JpegViews:
    """Both views' sources through TurboJPEG; raises :class:`~edgeiqa.runtime.turbojpeg.TurboJpegError`."""
    width, height = size
    scale = draft_scale(size, target)
    whole = Image.fromarray(turbojpeg.decode(data, -(-width // scale), -(-height // scale)), "RGB")
    _, _, subsampling, _ = turbojpeg.header(data)
    mcu_w, mcu_h = turbojpeg.MCU_SIZES.get(subsampling, (16, 16))

    def cut(origins: list[tuple[int, int]], p: int) -> list[np.ndarray]:
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

    return JpegViews(whole, size, cut)


def pillow_views(whole: Image.Image, full: Image.Image) -> JpegViews:
    """The same views from Pillow's draft decode (``whole``) and full decode (``full``): slower, same pixels."""

    def cut(origins: list[tuple[int, int]], p: int) -> list[np.ndarray]:
        return [np.asarray(full.crop((x, y, x + p, y + p))) for x, y in origins]

    return JpegViews(whole, full.size, cut, path="pillow")
