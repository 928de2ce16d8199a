"""The bundled-model registry (edgeiqa.runtime.zoo): nothing fake, one clear line when nothing is bundled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from edgeiqa.cli import main
from edgeiqa.errors import ConfigError
from edgeiqa.runtime import zoo
from edgeiqa.runtime.predictor import Predictor

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "zoo"
    folder.mkdir()
    monkeypatch.setenv(zoo.ZOO_ENV, str(folder))
    return folder


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (120, 80, 40)).save(path)
    return path


def test_an_empty_zoo_lists_nothing_and_every_entry_point_says_so(empty_zoo: Path, photo: Path, capsys) -> None:
    assert zoo.list_bundled() == []
    with pytest.raises(zoo.NoBundledModel, match="^no bundled model in this install; train one"):
        zoo.bundled()
    with pytest.raises(zoo.NoBundledModel, match="no bundled model in this install"):
        Predictor.load()
    with pytest.raises(zoo.NoBundledModel, match="no bundled model in this install"):
        Predictor.load(zoo.DEFAULT_MODEL)
    assert main(["models"]) == 1
    assert capsys.readouterr().err == f"edgeiqa: {zoo.NO_MODEL}\n"
    assert main(["predict", str(photo)]) == 2
    assert capsys.readouterr().err == f"edgeiqa: error: {zoo.NO_MODEL}\n"


def test_folders_that_are_not_complete_bundles_are_not_models(empty_zoo: Path) -> None:
    (empty_zoo / "no_card").mkdir()  # a folder without a card is not a model
    (empty_zoo / ".staging.tmp").mkdir()  # nor is the bundler's staging folder
    (empty_zoo / ".staging.tmp" / "card.json").write_text("{}")
    assert zoo.list_bundled() == []
    broken = empty_zoo / "broken"
    broken.mkdir()
    card = {
        "schema": zoo.CARD_SCHEMA,
        "name": "broken",
        "files": {"artifact": "m.onnx", "checkpoint": "c", "notice": "n"},
    }
    (broken / "card.json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="files.artifact 'm.onnx' is missing"):
        zoo.list_bundled()


def test_the_installed_zoo_holds_only_complete_verified_models() -> None:
    for model in zoo.list_bundled(ROOT / "edgeiqa" / "zoo"):
        model.verify()  # sha256 of artifact and notice as bundled
        assert model.card["name"] == model.name and model.notice.is_file()


def test_the_rule_that_tells_a_model_argument_from_an_image(empty_zoo: Path, photo: Path, tmp_path: Path) -> None:
    artifact = tmp_path / "m.onnx"
    artifact.write_bytes(b"x")
    (tmp_path / "m.onnx.json").write_text("{}")
    assert zoo.names_a_model(artifact) and zoo.names_a_model(tmp_path / "m.onnx.json")
    assert zoo.names_a_model("missing.onnx")  # a mistyped artifact is reported missing, not scored
    assert not zoo.names_a_model(photo) and not zoo.names_a_model(tmp_path)  # an image, a folder of images
    assert not zoo.names_a_model("some_name")  # not bundled: an image path like any other
    assert zoo.split_model_argument([str(photo), str(photo)]) == (None, [str(photo), str(photo)])
    assert zoo.split_model_argument([str(artifact), str(photo)]) == (str(artifact), [str(photo)])
    with pytest.raises(ConfigError, match="names a model, but no image"):
        zoo.split_model_argument([str(artifact)])


def test_the_registry_imports_without_torch() -> None:
    code = "import sys; import edgeiqa.runtime.zoo, edgeiqa.runtime.zoo_cli; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_models_page_is_up_to_date_and_says_when_nothing_is_bundled(tmp_path: Path) -> None:
    generator = ROOT / "studies" / "make_models_page.py"
    done = subprocess.run([sys.executable, str(generator), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "models.md"
    args = [sys.executable, str(generator), "--zoo", str(tmp_path), "--out", str(out)]
    assert subprocess.run(args, capture_output=True, cwd=ROOT).returncode == 0
    assert "**No model is bundled yet.**" in out.read_text()
    out.write_text("stale\n")
    done = subprocess.run([*args, "--check"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and "out of date" in done.stderr
