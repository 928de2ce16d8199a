"""The model the package ships (``edgeiqa predict photo.jpg`` with nothing else) behaves as its card says:
it is complete and verified, it runs torch-free, and visibly damaged photos score below the originals."""

from __future__ import annotations

import subprocess
import sys

import pytest
from study_scripts import load_study

from edgeiqa.data.pristine import bundled_paths
from edgeiqa.runtime import zoo
from edgeiqa.runtime.predictor import Predictor


@pytest.fixture(autouse=True)
def package_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(zoo.ZOO_ENV, raising=False)  # the package's own zoo, whatever the environment says


def test_the_default_is_shipped_with_its_card_and_notice() -> None:
    model = zoo.bundled()
    assert model.name == zoo.DEFAULT_MODEL
    card = model.card
    assert card["quality"]["held_out"]["n"] >= 100 and 0.8 < card["quality"]["held_out"]["srcc"] <= 1
    notice = (model.folder / card["files"]["notice"]).read_text()
    assert "COPYRIGHT NOTICE STARTS WITH THIS LINE" in notice  # LIVE-C's notice travels with the weights
    size = sum(p.stat().st_size for p in model.folder.rglob("*") if p.is_file())
    assert size <= 20e6  # what the package may grow by


def test_damaged_copies_of_the_shipped_photos_score_lower() -> None:
    """studies/degrade_check.py's check (JPEG q10, blur sigma 3, noise sigma 20) on the photos the install ships."""
    study = load_study("degrade_check")
    photos = list(bundled_paths().values())
    assert len(photos) >= 5
    with Predictor.load() as predictor:
        assert all(0 <= score <= 100 for score in predictor([str(p) for p in photos]))  # the MOS scale
    result = study.check_model(zoo.DEFAULT_MODEL, photos)
    for damage in study.DAMAGE:
        assert result[damage]["lower"] == len(photos), (damage, result[damage]["not_lower"])


def test_predict_with_no_model_scores_without_torch(tmp_path) -> None:
    photo = next(iter(bundled_paths().values()))
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
        "from edgeiqa.cli import main\n"
        f"sys.exit(main(['predict', {str(photo)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    score = float(done.stdout.splitlines()[1].split(",")[1])
    assert 0 <= score <= 100
    assert f"bundled model {zoo.DEFAULT_MODEL}" in done.stderr
