"""Fixtures for the export tests (helpers live in export_helpers.py, a name no other test dir uses)."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_helpers import tiny_model, write_images

from edgeiqa.export.images import ImageSet


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every export test runs torch beside ONNX Runtime/OpenVINO: one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export_images")
    write_images(folder / "calib", 12, seed=1, prefix="cal")
    write_images(folder / "val", 12, seed=2, prefix="val")
    return folder


@pytest.fixture
def calib(image_dir: Path) -> ImageSet:
    return ImageSet.from_folder(image_dir / "calib")


@pytest.fixture
def val(image_dir: Path) -> ImageSet:
    """Validation images with a MOS that follows their brightness (as the tiny scorer does)."""
    paths = sorted((image_dir / "val").iterdir())
    return ImageSet.from_paths(paths, mos=[10.0 + 5 * i for i in range(len(paths))], source="val")


@pytest.fixture
def model():
    return tiny_model()
