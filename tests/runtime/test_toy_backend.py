"""Adding a backend is one runner module and one record: a toy numpy backend, registered here only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import BIAS, CONTRAST, W_FRAG, W_IMAGE, write_tiny_manifest
from toy_numpy_backend import NUMPY, NumpyRunner

from edgeiqa.errors import ConfigError
from edgeiqa.runtime import Predictor
from edgeiqa.runtime.manifest import manifest_path_for, read_manifest
from edgeiqa.runtime.runners import backend_names, backends_for_format, format_names, register, registry, runner_for


@pytest.fixture
def toy_registered(monkeypatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # undone after the test
    register(NUMPY)


@pytest.fixture
def toy_artifact(tmp_path: Path, contract) -> Path:
    path = tmp_path / "tiny.npz"
    np.savez(path, w_image=W_IMAGE, w_frag=W_FRAG, bias=np.float32(BIAS), contrast=np.float32(CONTRAST))
    return path


def test_an_unregistered_format_is_refused(toy_artifact: Path, contract) -> None:
    with pytest.raises(ConfigError, match="key 'format' is 'npz'"):
        write_tiny_manifest(toy_artifact, contract, fmt="npz")


def test_the_toy_backend_is_picked_listed_and_scores_like_onnx(
    toy_registered, toy_artifact: Path, tiny_onnx: Path, contract, image_files
) -> None:
    write_tiny_manifest(toy_artifact, contract, fmt="npz")
    assert "npz" in format_names() and "numpy" in backend_names() and backends_for_format("npz") == ("numpy",)
    runner = runner_for(read_manifest(manifest_path_for(toy_artifact)), toy_artifact, threads=2)
    assert isinstance(runner, NumpyRunner) and runner.threads == 2 and runner.scale == 1.0  # the record's default
    with Predictor.load(toy_artifact, decoder="pillow") as toy, Predictor.load(tiny_onnx, decoder="pillow") as ort:
        assert toy.info()["runner"]["backend"] == "numpy"
        np.testing.assert_allclose(toy(image_files), ort(image_files), atol=1e-4)
    with Predictor.load(toy_artifact, decoder="pillow", scale=2.0) as doubled:  # caller options beat defaults
        np.testing.assert_allclose(doubled(image_files[:1]), 2 * ort_scores(tiny_onnx, image_files[:1]), rtol=1e-5)
    with pytest.raises(ConfigError, match="backend 'openvino' cannot run a 'npz' artifact"):
        Predictor.load(toy_artifact, backend="openvino")


def ort_scores(path: Path, images: list[Path]) -> np.ndarray:
    with Predictor.load(path, decoder="pillow") as predictor:
        return predictor(images)


def test_a_load_that_fails_after_the_runner_is_made_releases_it(
    toy_registered, toy_artifact: Path, contract, monkeypatch
) -> None:
    write_tiny_manifest(toy_artifact, contract, fmt="npz")
    released: list[NumpyRunner] = []
    monkeypatch.setattr(NumpyRunner, "deactivate", lambda self: released.append(self))
    with pytest.raises(ValueError, match="not a memory size: 'lots'"):
        Predictor.load(toy_artifact, decoder="pillow", max_memory="lots")
    assert len(released) == 1 and isinstance(released[0], NumpyRunner)
