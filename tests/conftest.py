"""Fixtures shared across test folders: a tiny embedded dataset and a tiny experiment config."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_TYPES = ["gaussian_blur", "gaussian_noise", "jpeg"]


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 images (3 sources x 3 distortion types x 5 levels + pristine) at 64 px; returns mos.csv."""
    from edgeiqa.data.synth import synthesize

    root = tmp_path_factory.mktemp("tiny_synth") / "data"
    return synthesize(root, seed=0, max_side=64, max_sources=3, types=TINY_TYPES, progress=False).csv_path
