"""Fixtures for the runtime tests (helpers live in runtime_helpers.py, a name no other test dir uses)."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_helpers import build_tiny_onnx, smooth_image, tiny_contract, write_tiny_manifest

from edgeiqa.runtime.contract import PreprocessContract


@pytest.fixture
def contract() -> PreprocessContract:
    return tiny_contract()


@pytest.fixture
def tiny_onnx(tmp_path: Path, contract: PreprocessContract) -> Path:
    """The tiny ONNX model with its manifest beside it."""
    path = build_tiny_onnx(tmp_path / "tiny.onnx")
    write_tiny_manifest(path, contract)
    return path


@pytest.fixture
def image_files(tmp_path: Path) -> list[Path]:
    """Two PNGs and two JPEGs of different sizes and aspect ratios."""
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for i, (w, h, ext) in enumerate([(64, 48, "png"), (50, 70, "jpg"), (96, 40, "png"), (80, 80, "jpg")]):
        path = folder / f"img{i}.{ext}"
        smooth_image(w, h, seed=i).save(path, **({"quality": 92} if ext == "jpg" else {}))
        paths.append(path)
    return paths
