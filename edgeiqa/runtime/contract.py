"""The preprocessing contract: one small, JSON-serialisable description of how pixels become tensors.

It travels in the model config, in every checkpoint and in every artifact manifest, so the runtime on a
device applies exactly what training applied. Pure Python: no numpy, no Pillow, no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from edgeiqa.errors import ConfigError

SizePolicy = Literal["square", "short_side", "long_side"]
ResizeFilter = Literal["bilinear", "bicubic", "lanczos", "box", "hamming"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Pillow refuses images above 2x this and warns above it; using the same number keeps one threshold.
PILLOW_BOMB_PIXELS = 89_478_485


@dataclass(frozen=True)
class FragmentSpec:
    """A native-resolution view: ``grid``x``grid`` patches of ``patch`` px, tiled into one mosaic.

    Patches are cut from the decoded image without any resizing, so sensor noise and compression
    blocks survive (a 4K photo reduced 7x loses exactly those pixels). Positions: cell centres at
    evaluation, uniformly jittered inside each cell in training.
    """

    grid: int = 7
    patch: int = 32

    @property
    def mosaic_size(self) -> int:
        return self.grid * self.patch

    def __post_init__(self) -> None:
        if self.grid < 1 or self.patch < 2:
            raise ConfigError(f"fragments need grid >= 1 and patch >= 2, got grid={self.grid} patch={self.patch}")


@dataclass(frozen=True)
class PreprocessContract:
    """How an image file becomes the model's input arrays; see :mod:`edgeiqa.runtime.preprocess`."""

    working_size: int = 224
    # square: resize to working_size^2 (batchable; what training uses); short_side / long_side keep the
    # aspect ratio and round the other side to a multiple of size_multiple.
    size_policy: SizePolicy = "square"
    size_multiple: int = 32
    # Pillow filters are antialiased when reducing (their support scales with the factor). reducing_gap
    # first box-reduces by an integer factor, which is both faster and alias-free.
    resize_filter: ResizeFilter = "bilinear"
    reducing_gap: float | None = 3.0
    # Decode JPEGs at a reduced DCT scale when the result still covers the working size. Only allowed
    # without fragments: the DCT-scaled decode is no longer native resolution.
    jpeg_draft: bool = False
    # Decode JPEGs as the views need them (edgeiqa.runtime.jpeg_views): the whole-image view from the
    # DCT-scaled decode jpeg_draft would give, the fragments from native-resolution region decoding,
    # never the full frame. Off by default: the whole-image view changes, and models trained without it
    # keep their scores (agreement measured in studies/results/uhd_decode_paths.json).
    jpeg_regions: bool = False
    # On the 0..1 pixel scale, listed in the model's channel order (after any RGB->BGR swap).
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: Literal["RGB", "BGR"] = "RGB"
    exif_orientation: bool = True
    dtype: Literal["float32", "float16"] = "float32"
    fragments: FragmentSpec | None = field(default_factory=FragmentSpec)
    max_pixels: int = PILLOW_BOMB_PIXELS
    version: int = 1

    def __post_init__(self) -> None:
        if self.working_size < 16:
            raise ConfigError(f"working_size must be >= 16 px, got {self.working_size}")
        if self.size_policy not in ("square", "short_side", "long_side"):
            raise ConfigError(f"unknown size_policy {self.size_policy!r} (square, short_side, long_side)")
        if self.resize_filter not in ("bilinear", "bicubic", "lanczos", "box", "hamming"):
            raise ConfigError(
                f"resize_filter {self.resize_filter!r} is not an antialiased Pillow filter "
                "(bilinear, bicubic, lanczos, box, hamming); nearest decimation aliases texture into noise"
            )
        if self.jpeg_draft and self.fragments is not None:
            raise ConfigError("jpeg_draft cannot be combined with fragments: fragments need native-resolution pixels")
        if self.jpeg_regions and self.fragments is None:
            raise ConfigError("jpeg_regions needs fragments; without them use jpeg_draft")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(f"mean/std need 3 values with std > 0, got mean={self.mean} std={self.std}")

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the model inputs this contract produces, in the order models take them."""
        return ("image", "fragments") if self.fragments is not None else ("image",)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessContract:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"preprocessing contract has unknown keys {unknown}; known: {sorted(known)}")
        values = dict(data)
        frag = values.get("fragments", FragmentSpec())
        values["fragments"] = FragmentSpec(**frag) if isinstance(frag, dict) else frag
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)
