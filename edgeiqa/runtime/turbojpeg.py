"""ctypes glue to the system TurboJPEG library (``libturbojpeg.so.0``): DCT-scaled and region decoding.

Why a system library through ctypes: no PyPI wheel bundles a libjpeg-turbo binding that can crop
(simplejpeg and Pillow only scale; PyTurboJPEG is itself ctypes over the same system library and its
2.x line needs TurboJPEG 3, while Debian 12 ships 2.1). The TurboJPEG 2 API used here
(``tjDecompress2``, ``tjTransform``) is stable since libjpeg-turbo 1.4 and is kept by 3.x.

Region decoding: ``tjTransform`` with several crop regions entropy-decodes the file once
(``jpeg_read_coefficients``) and writes each MCU-aligned region as a small lossless JPEG; decoding
those gives exactly the full decode's pixels where a margin of one MCU surrounds the wanted patch
(chroma upsampling reads one neighbouring sample). When the library is missing, :func:`available`
is False and callers take Pillow, which gives the same pixels more slowly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Sequence

import numpy as np

TJPF_RGB = 0
TJXOPT_CROP = 4
TJXOPT_COPYNONE = 64
TJFLAG_ACCURATEDCT = 4096  # libjpeg's default islow IDCT, which Pillow uses too
# MCU size (width, height) per TurboJPEG subsampling id: 444, 422, 420, gray, 440, 411.
MCU_SIZES = {0: (8, 8), 1: (16, 8), 2: (16, 16), 3: (8, 8), 4: (8, 16), 5: (32, 8)}
Box = tuple[int, int, int, int]  # x, y, w, h


class TurboJpegError(RuntimeError):
    """The library refused a file (damaged, unsupported); callers fall back to Pillow."""


class _Region(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("w", ctypes.c_int), ("h", ctypes.c_int)]


class _Transform(ctypes.Structure):
    _fields_ = [
        ("r", _Region),
        ("op", ctypes.c_int),
        ("options", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("customFilter", ctypes.c_void_p),
    ]


def _load() -> ctypes.CDLL | None:
    for name in ("libturbojpeg.so.0", ctypes.util.find_library("turbojpeg")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if all(hasattr(lib, f) for f in ("tjInitTransform", "tjTransform", "tjDecompress2", "tjFree")):
            return _declare(lib)
    return None


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    buf, size, ints = ctypes.c_char_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_int)
    lib.tjInitDecompress.restype = lib.tjInitTransform.restype = ctypes.c_void_p
    lib.tjDestroy.argtypes = [ctypes.c_void_p]
    lib.tjGetErrorStr2.restype, lib.tjGetErrorStr2.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    lib.tjDecompressHeader3.argtypes = [ctypes.c_void_p, buf, size, ints, ints, ints, ints]
    lib.tjDecompress2.argtypes = [ctypes.c_void_p, buf, size, ctypes.c_void_p] + [ctypes.c_int] * 5
    lib.tjTransform.argtypes = [
        ctypes.c_void_p,
        buf,
        size,
        ctypes.c_int,
        ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)),
        ctypes.POINTER(ctypes.c_ulong),
        ctypes.POINTER(_Transform),
        ctypes.c_int,
    ]
    lib.tjFree.argtypes = [ctypes.c_void_p]
    return lib


_LIB = _load()
_HANDLES = threading.local()  # a TurboJPEG handle is not thread-safe: one per decode thread


def available() -> bool:
    """Whether the system TurboJPEG library was found (``apt-get install libturbojpeg0``)."""
    return _LIB is not None


def _handle(kind: str) -> int:
    handle = getattr(_HANDLES, kind, None)
    if handle is None:
        handle = (_LIB.tjInitTransform if kind == "transform" else _LIB.tjInitDecompress)()
        setattr(_HANDLES, kind, handle)
    return handle


def _fail(handle: int, what: str) -> TurboJpegError:
    return TurboJpegError(f"{what}: {_LIB.tjGetErrorStr2(handle).decode(errors='replace')}")


def header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, subsampling id, colorspace id) from the JPEG header."""
    handle = _handle("decompress")
    w, h, sub, cs = (ctypes.c_int() for _ in range(4))
    if _LIB.tjDecompressHeader3(handle, data, len(data), w, h, sub, cs) != 0:
        raise _fail(handle, "header")
    return w.value, h.value, sub.value, cs.value


def decode(data: bytes, width: int, height: int) -> np.ndarray:
    """RGB pixels (HxWx3 uint8) scaled by the largest DCT factor whose result is ``width`` x ``height``
    (the caller passes ceil(W / s) x ceil(H / s); the full size gives the full decode)."""
    handle = _handle("decompress")
    out = np.empty((height, width, 3), dtype=np.uint8)
    if _LIB.tjDecompress2(handle, data, len(data), out.ctypes.data, width, 0, height, TJPF_RGB, TJFLAG_ACCURATEDCT):
        raise _fail(handle, "decode")
    return out


def crop(data: bytes, boxes: Sequence[Box]) -> list[bytes]:
    """Lossless MCU-aligned crops of ``data``, one small JPEG per box, from one entropy-decoding pass."""
    handle = _handle("transform")
    n = len(boxes)
    transforms = (_Transform * n)()
    for t, (x, y, w, h) in zip(transforms, boxes):
        t.r = _Region(x, y, w, h)
        t.options = TJXOPT_CROP | TJXOPT_COPYNONE
    bufs = (ctypes.POINTER(ctypes.c_ubyte) * n)()
    sizes = (ctypes.c_ulong * n)()
    try:
        if _LIB.tjTransform(handle, data, len(data), n, bufs, sizes, transforms, 0) != 0:
            raise _fail(handle, "crop")
        return [ctypes.string_at(bufs[i], sizes[i]) for i in range(n)]
    finally:
        for i in range(n):
            if bufs[i]:
                _LIB.tjFree(bufs[i])
