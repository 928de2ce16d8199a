"""Exporting a bundled model with nothing but the install: ``edgeiqa export NAME --format litert --precision int8``.

A bundled model's checkpoint exports like any checkpoint. What a user of a bundled model may lack is
images: when no ``--calib`` is given, INT8 calibration (and, without ``--val``, the parity gate) uses the
real photos scikit-image and scikit-learn ship inside their wheels (:func:`edgeiqa.data.pristine.bundled_paths`)
with graded copies of each (the UHD check's JPEG, noise, blur and upscaling ladders, made once into the
user's cache), and the manifest says so through the image set's ``source``. The copies are what make the
gate mean something: ten clean photos score within a few MOS points of each other, so INT8 noise swaps
their ranks and the gate failed the bundled LIVE-C student at a rank agreement of 0.96 while it keeps
0.998 on LIVE-C photos (its card); the graded copies spread the scores over the scale.

A checkpoint the user trained keeps the rule that it needs their images: it has a training set to draw
them from, and the shipped photos are not a sample of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeiqa.errors import ConfigError
from edgeiqa.export.images import ImageSet
from edgeiqa.export.source import ExportSource
from edgeiqa.runtime.zoo import bundled_owner

SHIPPED_SOURCE = (
    "photos shipped in scikit-image/scikit-learn (edgeiqa.data.pristine.bundled_paths) and graded copies of each"
)
# The shipped photos are up to 1.4K px: the graded copies are made at that size, never larger.
SHIPPED_MAX_SIDE = 1536


def shipped_cache() -> Path:
    """Where the graded copies of the shipped photos are written once (``$XDG_CACHE_HOME/edgeiqa``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgeiqa" / "shipped_graded"


def shipped_photos() -> ImageSet:
    """The real photos the installed scikit-image/scikit-learn carry and their graded copies (no split)."""
    from edgeiqa.data.graded import check_items, make_graded_set, read_graded
    from edgeiqa.data.pristine import bundled_paths

    paths = bundled_paths()
    if not paths:
        raise ConfigError(
            "no --calib given and no shipped photos found (scikit-image or scikit-learn, the train extra); "
            "pass --calib FOLDER"
        )
    table = make_graded_set(list(paths.values()), shipped_cache(), check_items, max_side=SHIPPED_MAX_SIDE)
    return ImageSet.from_paths([str(p) for p, _ in read_graded(table)], source=SHIPPED_SOURCE)


def calibration_for(source: ExportSource, calib: ImageSet | None) -> ImageSet | None:
    """``calib``, or the shipped photos when it is None and ``source`` is a bundled model's checkpoint."""
    if calib is not None or not source.checkpoint_path or bundled_owner(source.checkpoint_path) is None:
        return calib
    return shipped_photos()
