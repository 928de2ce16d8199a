"""The label-free sanity check (studies/degrade_check.py): its damage is the damage it names, its photos are
distinct, and a model that cannot see damage fails it."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from study_scripts import load_study


@pytest.fixture(scope="module")
def study():
    return load_study("degrade_check")


def _photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((8, 8, 1)))  # blocks: edges to blur
    return Image.fromarray(base.astype(np.uint8))


def test_each_damage_is_what_it_says(study) -> None:
    img = _photo(0)
    pixels = np.asarray(img, dtype=np.float64)
    jpeg = study.DAMAGE["jpeg_q10"](img, 0)
    assert jpeg[:2] == b"\xff\xd8"  # handed over as encoded bytes, so the JPEG decode path runs
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    assert len(jpeg) < len(buf.getvalue()) / 2
    blurred = np.asarray(study.DAMAGE["blur_sigma3"](img, 0), dtype=np.float64)
    assert np.square(np.diff(blurred, axis=1)).mean() < 0.5 * np.square(np.diff(pixels, axis=1)).mean()
    noisy = [np.asarray(study.DAMAGE["noise_sigma20"](img, s), dtype=np.float64) for s in (1, 1, 2)]
    assert np.array_equal(noisy[0], noisy[1]) and not np.array_equal(noisy[0], noisy[2])  # seeded per photo
    assert 15 < (noisy[0] - pixels).std() < 21  # sigma 20, less what clipping at 0 and 255 takes


def test_photos_are_distinct_and_enough(study, tmp_path: Path) -> None:
    for k in range(3):
        _photo(k).save(tmp_path / f"p{k}.png")
    shutil.copy(tmp_path / "p0.png", tmp_path / "copy_of_p0.png")
    picked = study.pick_photos([str(tmp_path)], 3)
    assert sorted(p.name for p in picked) == ["copy_of_p0.png", "p1.png", "p2.png"]  # p0's bytes counted once
    with pytest.raises(SystemExit, match="3 distinct photos"):
        study.pick_photos([str(tmp_path)], 4)


def _energy(item) -> float:
    img = item if isinstance(item, Image.Image) else Image.open(io.BytesIO(item) if isinstance(item, bytes) else item)
    return float(np.square(np.diff(np.asarray(img.convert("L"), dtype=np.float64), axis=1)).mean())


class _Scorer:
    def __init__(self, score) -> None:
        self.score = score

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, items):
        return np.asarray([self.score(it) for it in items])


def test_a_copy_counts_only_when_it_scores_lower(study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Edge energy falls with blur and rises with noise; a constant scorer sees nothing (a tie is not lower)."""
    from edgeiqa.runtime import predictor

    photos = []
    for k in range(3):
        photos.append(tmp_path / f"p{k}.png")
        _photo(k).save(photos[-1])
    scorers = {"energy": _Scorer(_energy), "constant": _Scorer(lambda item: 1.0)}
    monkeypatch.setattr(predictor.Predictor, "load", classmethod(lambda cls, path: scorers[path]))
    energy = study.check_model("energy", photos)
    assert energy["blur_sigma3"]["lower"] == 3 and energy["blur_sigma3"]["mean_drop"] > 0
    assert energy["noise_sigma20"]["lower"] == 0 and energy["noise_sigma20"]["not_lower"] == [
        "p0.png",
        "p1.png",
        "p2.png",
    ]
    constant = study.check_model("constant", photos)
    assert all(constant[k]["lower"] == 0 for k in study.DAMAGE)
