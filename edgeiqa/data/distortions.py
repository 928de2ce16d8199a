"""Synthetic distortions, KADIS/KADID style: a registry of ``name -> fn(img, level, rng) -> img``.

Every function takes an HxWx3 uint8 array, a severity ``level`` in 1..5 and a seeded
``numpy.random.Generator`` (the only source of randomness: no global RNG), and returns a new HxWx3
uint8 array of the same shape. Codecs are real (Pillow's libjpeg, OpenJPEG and libwebp), so the
artifacts are the ones a camera pipeline produces. The per-level parameters were tuned so that the
pseudo-MOS of :mod:`edgeiqa.data.pseudo_mos` falls with the level for every source photo and so that
level 5 is bad on every type.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

from edgeiqa.errors import ConfigError, require

Distortion = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
LEVELS = 5

# Per-level parameters, mildest first. Named so tuning them is a one-line change with a reason.
JPEG_QUALITY = (30, 16, 9, 5, 2)
JPEG2000_PSNR = (37.0, 32.0, 28.0, 24.5, 21.0)  # target PSNR in dB (OpenJPEG "dB" mode)
WEBP_QUALITY = (40, 15, 5, 2, 0)
BLUR_RADIUS = (0.8, 1.4, 2.2, 3.4, 5.5)
MOTION_LENGTH = (4, 7, 11, 17, 27)
NOISE_SIGMA = (6.0, 12.0, 22.0, 36.0, 60.0)  # in 0..255 units
IMPULSE_FRACTION = (0.002, 0.008, 0.025, 0.07, 0.2)
CONTRAST_FACTOR = (0.7, 0.5, 0.35, 0.22, 0.12)
DARKEN_GAMMA = (1.4, 2.0, 2.8, 4.0, 6.0)
SATURATION_FACTOR = (0.8, 0.55, 0.3, 0.1, 0.0)
PIXELATE_FACTOR = (3, 4, 6, 9, 13)
QUANTIZE_COLOURS = (128, 40, 16, 6, 2)


def _pick(table: tuple, level: int):
    if not 1 <= level <= LEVELS:
        raise ConfigError(f"distortion level must be in 1..{LEVELS}, got {level}")
    return table[level - 1]


def _encode_decode(img: np.ndarray, fmt: str, **options) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **options)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()


def jpeg(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Baseline JPEG with 4:2:0 chroma subsampling at falling quality: blocking, ringing, colour bleed."""
    return _encode_decode(img, "JPEG", quality=_pick(JPEG_QUALITY, level), subsampling=2)


def jpeg2000(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG 2000 (OpenJPEG) at a falling target PSNR: wavelet blur and ringing.

    A PSNR target rather than a compression ratio: at small sizes a fixed ratio runs into the
    codestream's header floor, so the top levels would all come out identical."""
    psnr = _pick(JPEG2000_PSNR, level)
    return _encode_decode(img, "JPEG2000", quality_mode="dB", quality_layers=[psnr], irreversible=True)


def webp(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Lossy WebP (VP8) at falling quality: smeared texture and macroblock edges."""
    return _encode_decode(img, "WEBP", quality=_pick(WEBP_QUALITY, level), method=0)


def gaussian_blur(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus softness: an isotropic Gaussian of growing radius."""
    blurred = Image.fromarray(img).filter(ImageFilter.GaussianBlur(_pick(BLUR_RADIUS, level)))
    return np.asarray(blurred, dtype=np.uint8).copy()


def _line_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised, anti-aliased straight line of ``length`` px at ``angle`` radians."""
    size = length | 1  # odd, so the line is centred on a pixel
    kernel = np.zeros((size, size), dtype=np.float64)
    centre = size // 2
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
        x, y = centre + t * np.cos(angle), centre + t * np.sin(angle)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + dx < size and 0 <= y0 + dy < size:
                kernel[y0 + dy, x0 + dx] += w
    return kernel / kernel.sum()


def motion_blur(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Camera shake: a straight-line blur of growing length in a random direction."""
    fftconvolve = require("scipy.signal", "train", "the motion_blur distortion").fftconvolve
    kernel = _line_kernel(_pick(MOTION_LENGTH, level), float(rng.uniform(0.0, np.pi)))
    pad = kernel.shape[0] // 2
    # Reflect-padding avoids the dark frame a zero-padded convolution would add at the borders.
    padded = np.pad(img.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = fftconvolve(padded, kernel[:, :, None], mode="valid", axes=(0, 1))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def gaussian_noise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise, independent per channel (sensor read noise)."""
    noise = rng.normal(0.0, _pick(NOISE_SIGMA, level), size=img.shape)
    return np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)


def impulse_noise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise: a growing fraction of pixels forced to black or white (dead/hot pixels)."""
    fraction = _pick(IMPULSE_FRACTION, level)
    hit = rng.random(img.shape[:2]) < fraction
    salt = rng.random(img.shape[:2]) < 0.5
    out = img.copy()
    out[hit & salt] = 255
    out[hit & ~salt] = 0
    return out


def contrast_change(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Contrast decrease: pixels pulled toward the image's mean grey (haze, flare, a flat tone curve)."""
    factor = _pick(CONTRAST_FACTOR, level)
    mean = img.reshape(-1, 3).mean(axis=0)
    return np.clip(np.rint(mean + factor * (img - mean)), 0, 255).astype(np.uint8)


def brightness_change(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Underexposure: a gamma curve that darkens mid-tones and crushes shadow detail into black."""
    lut = np.rint(255.0 * (np.arange(256) / 255.0) ** _pick(DARKEN_GAMMA, level)).astype(np.uint8)
    return lut[img]


def saturation_change(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Colour desaturation toward the pixel's luma (washed-out colour, a wrong picture style)."""
    factor = _pick(SATURATION_FACTOR, level)
    luma = img @ np.array([0.299, 0.587, 0.114])
    out = luma[..., None] + factor * (img - luma[..., None])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def pixelate(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Low resolution shown large: box-averaged down by an integer factor, nearest-neighbour back up."""
    factor = _pick(PIXELATE_FACTOR, level)
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((max(1, -(-w // factor)), max(1, -(-h // factor))), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST), dtype=np.uint8).copy()


def quantization(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Colour quantisation to a small palette (no dithering): banding and false contours.

    Fast octree rather than median cut: ~40x faster here, and the generation time matters."""
    pil = Image.fromarray(img).quantize(
        _pick(QUANTIZE_COLOURS, level), method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    return np.asarray(pil.convert("RGB"), dtype=np.uint8).copy()


DISTORTIONS: dict[str, Distortion] = {
    "jpeg": jpeg,
    "jpeg2000": jpeg2000,
    "webp": webp,
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "gaussian_noise": gaussian_noise,
    "impulse_noise": impulse_noise,
    "contrast_change": contrast_change,
    "brightness_change": brightness_change,
    "saturation_change": saturation_change,
    "pixelate": pixelate,
    "quantization": quantization,
}


def get_distortion(name: str) -> Distortion:
    """The registered distortion ``name``, or a ConfigError listing the known ones."""
    try:
        return DISTORTIONS[name]
    except KeyError:
        raise ConfigError(f"unknown distortion type {name!r}; known: {', '.join(DISTORTIONS)}") from None


def apply_distortion(name: str, img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Apply a registered distortion after checking the input is an HxWx3 uint8 image."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ConfigError(f"distortions take HxWx3 uint8 images, got {img.dtype} {img.shape}")
    return get_distortion(name)(img, level, rng)
