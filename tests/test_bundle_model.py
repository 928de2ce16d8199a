"""Bundling is one command: a tiny model trained here goes through studies/bundle_model.py into a temporary
zoo, then scores through ``Predictor.load(NAME)``, ``Predictor.load()`` and ``edgeiqa predict`` with no
model argument, torch-free, as its source checkpoint does within the parity limits."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from study_scripts import ROOT, load_study

from edgeiqa.runtime import zoo
from edgeiqa.runtime.manifest import read_manifest, sha256_file

pytestmark = pytest.mark.slow
DEGRADE = {"jpeg_q10": {"lower": 2, "of": 2, "not_lower": []}, "blur_sigma3": {"lower": 1, "of": 2}, "seconds": 1.0}
FOLDS = [{"srcc": 0.81, "plcc": 0.8, "ridge_srcc": 0.78}, {"srcc": 0.85, "plcc": 0.84, "ridge_srcc": 0.8}]


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory: pytest.TempPathFactory, tiny_synth: Path):
    """(run folder, zoo folder, card inputs, the bundled model) for a tiny model bundled as the default."""
    from experiment_helpers import tiny_experiment, write_yaml

    from edgeiqa.distill.api import run_distill, run_teacher
    from edgeiqa.experiment import ExperimentConfig

    base = tmp_path_factory.mktemp("bundle")
    cfg = ExperimentConfig.load(write_yaml(base / "exp.yaml", tiny_experiment(base / "run", tiny_synth)))
    run_teacher(cfg, progress=False)
    run_distill(cfg, progress=False)
    (base / "NOTICE.txt").write_text("copyright notice that must travel with the weights\n")
    (base / "cv.json").write_text(json.dumps({"folds": FOLDS}))
    (base / "degrade.json").write_text(json.dumps({"photos": ["a.jpg", "b.jpg"], "models": {"m": DEGRADE}}))
    inputs = {
        "summary": "tiny test student",
        "intended_use": "tests",
        "limitations": ["48 synthetic images"],
        "training_data": "the embedded synthetic set",
        "licence": "test notice",
        "notice": str(base / "NOTICE.txt"),
        "cross_validation": str(base / "cv.json"),
        "degrade_check": {"file": str(base / "degrade.json"), "model": "m"},
    }
    (base / "card_inputs.json").write_text(json.dumps(inputs))
    argv = [str(base / "run"), "--name", zoo.DEFAULT_MODEL, "--card", str(base / "card_inputs.json")]
    assert load_study("bundle_model").main([*argv, "--zoo", str(base / "zoo")]) == 0
    return base / "run", base / "zoo", inputs, zoo.bundled(None, base / "zoo")


@pytest.fixture
def in_zoo(bundled_run, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(zoo.ZOO_ENV, str(bundled_run[1]))
    return bundled_run


def test_the_card_comes_from_the_run(bundled_run) -> None:
    from edgeiqa.distill.saved_model import load_model

    run, _, inputs, model = bundled_run
    card, summary = model.card, json.loads((run / "summary.json").read_text())
    assert card["quality"]["held_out"]["srcc"] == summary["student"]["srcc"]
    assert card["quality"]["held_out"]["srcc_ci95"] == summary["student"]["srcc_ci95"]
    cv = card["quality"]["cross_validation"]
    assert cv["srcc_mean"] == pytest.approx(statistics.fmean(f["srcc"] for f in FOLDS))
    assert cv["srcc_ci95"][0] < cv["srcc_mean"] < cv["srcc_ci95"][1] and cv["folds_beating_ridge"] == 2
    source = load_model(run / "student" / "final").model
    assert card["model"]["params"] == sum(p.numel() for p in source.model.parameters())
    assert card["model"]["gmacs_4k"] > 0 and card["summary"] == inputs["summary"]
    assert card["degrade_check"]["lower"] == {"blur_sigma3": {"lower": 1, "of": 2}, "jpeg_q10": {"lower": 2, "of": 2}}
    page = load_study("make_models_page").render(bundled_run[1])
    assert "blur_sigma3 1/2, jpeg_q10 2/2" in page
    prov = card["provenance"]
    assert prov["config_sha256"] == sha256_file(run / "config.yaml") and prov["data"]["images"] == 48
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert prov["git"]["commit"] == head
    assert model.notice.read_text() == Path(inputs["notice"]).read_text()  # the licence notice travels
    assert card["size_bytes"] <= 20e6 and card["artifact"]["parity"]["verdict"] == "passed"


def test_the_checkpoint_is_half_precision_and_loads_into_the_float_model(bundled_run) -> None:
    import torch
    from safetensors.torch import load_file

    from edgeiqa.distill.saved_model import load_model

    model = bundled_run[3]
    tensors = load_file(model.checkpoint / "model.safetensors")
    floats = {k: t.dtype for k, t in tensors.items() if t.is_floating_point()}
    assert {d for k, d in floats.items() if not k.startswith("calibration.")} == {torch.float16}
    loaded = load_model(model.checkpoint)  # sha256-checked against its state.json
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    manifest = read_manifest(zoo.manifest_path_for(model.artifact))
    assert manifest.sha256["checkpoint"] == model.card["checkpoint"]["sha256"]


def test_bundled_scores_match_the_source_checkpoint(in_zoo) -> None:
    from edgeiqa.export.options import Tolerances
    from edgeiqa.metrics import srcc
    from edgeiqa.runtime.predictor import Predictor

    run, _, _, model = in_zoo
    bundler = load_study("bundle_model")
    paths = bundler.image_sets(run)[1].paths
    with Predictor.load(zoo.DEFAULT_MODEL) as by_name, Predictor.load() as default:
        named, plain = by_name(list(paths)), default(list(paths))
    np.testing.assert_array_equal(named, plain)
    # The artifact reproduces the bundled checkpoint (the FP32 gate), which ranks as its float32 source did.
    half = bundler.torch_scores(model.checkpoint, paths)
    assert np.max(np.abs(named - half)) <= Tolerances().fp32_max_abs
    source = bundler.torch_scores(run / "student" / "final", paths)
    assert srcc(named, source) >= Tolerances().fp16_min_agreement


def test_predict_with_no_model_argument_runs_the_default_without_torch(in_zoo, tmp_path: Path) -> None:
    from PIL import Image

    from edgeiqa.runtime.predictor import Predictor

    photo = str(tmp_path / "photo.png")
    Image.new("RGB", (96, 64), (200, 120, 30)).save(photo)
    code = (
        f"import sys; sys.modules['torch'] = None; from edgeiqa.cli import main; sys.exit(main(['predict', {photo!r}]))"
    )
    env = dict(os.environ, **{zoo.ZOO_ENV: str(in_zoo[1])})
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert f"scored with bundled model {zoo.DEFAULT_MODEL} (onnx fp32 on onnxruntime)" in done.stderr
    score = float(done.stdout.splitlines()[1].split(",")[1])
    with Predictor.load() as predictor:
        assert score == pytest.approx(float(predictor(photo)[0]), abs=1e-5)


def test_export_by_name_calibrates_on_the_shipped_photos(in_zoo, tmp_path: Path, monkeypatch) -> None:
    from edgeiqa.cli import main
    from edgeiqa.data.pristine import bundled_paths
    from edgeiqa.export.bundled import SHIPPED_SOURCE

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code = main(["export", zoo.DEFAULT_MODEL, "--format", "onnx", "--precision", "int8", "--out", str(out)])
    assert code in (0, 1)  # written either way (this tiny model's INT8 may fail its gate: exit 1)
    graded = list((tmp_path / "cache" / "edgeiqa" / "shipped_graded" / "images").iterdir())
    assert len(graded) == 17 * len(bundled_paths())  # each photo and its 16 graded copies, made once
    (manifest_path,) = out.glob("*.onnx.json")
    manifest = read_manifest(manifest_path)
    assert manifest.extra["export"]["int8"]["images"]["source"] == SHIPPED_SOURCE
    assert manifest.parity["images"]["source"] == SHIPPED_SOURCE  # the gate ran on them too
    assert manifest.parity["n"] == len(graded)
    assert manifest.sha256["checkpoint"] == in_zoo[3].card["checkpoint"]["sha256"]


def test_export_of_a_name_with_nothing_bundled_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    from edgeiqa.cli import main

    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path))
    assert main(["export", zoo.DEFAULT_MODEL, "--format", "onnx", "--precision", "fp32", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"edgeiqa: error: {zoo.NO_MODEL}\n"


def test_a_bundle_over_the_size_budget_installs_nothing(bundled_run, tmp_path: Path, capsys) -> None:
    run, zoo_folder, _, _ = bundled_run
    argv = [str(run), "--name", "other", "--card", str(run.parent / "card_inputs.json"), "--zoo", str(zoo_folder)]
    assert load_study("bundle_model").main([*argv, "--budget-mb", "1"]) == 2
    assert "does not fit the 1 MB the zoo may take" in capsys.readouterr().err
    assert [m.name for m in zoo.list_bundled(zoo_folder)] == [zoo.DEFAULT_MODEL]
    assert sorted(p.name for p in zoo_folder.iterdir()) == [zoo.DEFAULT_MODEL]


def test_card_only_adds_a_check_measured_on_the_bundle_and_keeps_the_weights(
    bundled_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from edgeiqa.data.pristine import bundled_paths

    run, shared_zoo, inputs, _ = bundled_run
    zoo_folder = shutil.copytree(shared_zoo, tmp_path / "zoo")  # the other tests' card stays as it was
    monkeypatch.setenv(zoo.ZOO_ENV, str(zoo_folder))
    folder = zoo_folder / zoo.DEFAULT_MODEL
    weights = {p.name: sha256_file(p) for p in folder.rglob("*") if p.is_file() and p.name != "card.json"}
    study = load_study("degrade_check")
    photos = list(bundled_paths().values())[:2]
    result = study.check_model(zoo.DEFAULT_MODEL, photos)  # through the installed bundle's name
    (tmp_path / "degrade.json").write_text(json.dumps({"photos": [str(p) for p in photos], "models": {"b": result}}))
    (tmp_path / "inputs.json").write_text(
        json.dumps(dict(inputs, degrade_check={"file": str(tmp_path / "degrade.json"), "model": "b"}))
    )
    argv = [str(run), "--name", zoo.DEFAULT_MODEL, "--card", str(tmp_path / "inputs.json"), "--zoo", str(zoo_folder)]
    assert load_study("bundle_model").main([*argv, "--card-only"]) == 0
    card = json.loads((folder / "card.json").read_text())
    assert card["degrade_check"]["lower"]["jpeg_q10"] == {"lower": result["jpeg_q10"]["lower"], "of": 2}
    assert {p.name: sha256_file(p) for p in folder.rglob("*") if p.is_file() and p.name != "card.json"} == weights
