"""Exporting a bundled model with nothing but the install: ``edgeiqa export NAME --format litert --precision int8``.

A bundled model's checkpoint exports like any checkpoint. What a user of a bundled model may lack is
images: when no ``--calib`` is given, INT8 calibration (and, without ``--val``, the parity gate) uses the
real photos scikit-image and scikit-learn ship inside their wheels (:func:`edgeiqa.data.pristine.bundled_paths`),
and the manifest says so through the image set's ``source``. A checkpoint the user trained keeps the
rule that it needs their images: it has a training set to draw them from, and the shipped photos are
not a sample of it.
"""

from __future__ import annotations

from edgeiqa.errors import ConfigError
from edgeiqa.export.images import ImageSet
from edgeiqa.export.source import ExportSource
from edgeiqa.runtime.zoo import bundled_owner

SHIPPED_SOURCE = "photos shipped in scikit-image/scikit-learn (edgeiqa.data.pristine.bundled_paths)"


def shipped_photos() -> ImageSet:
    """The real photos the installed scikit-image/scikit-learn carry, as an image set with no split."""
    from edgeiqa.data.pristine import bundled_paths

    paths = bundled_paths()
    if not paths:
        raise ConfigError(
            "no --calib given and no shipped photos found (scikit-image or scikit-learn, the train extra); "
            "pass --calib FOLDER"
        )
    return ImageSet.from_paths(paths.values(), source=SHIPPED_SOURCE)


def calibration_for(source: ExportSource, calib: ImageSet | None) -> ImageSet | None:
    """``calib``, or the shipped photos when it is None and ``source`` is a bundled model's checkpoint."""
    if calib is not None or not source.checkpoint_path or bundled_owner(source.checkpoint_path) is None:
        return calib
    return shipped_photos()
