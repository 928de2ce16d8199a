"""Export sources (module or checkpoint folder), the manifest every export writes, and the CLI entry."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import FIT, TinyScorer, tiny_contract, write_images
from safetensors.torch import save_file, save_model

from edgeiqa.distill.calibration import CalibratedModel, ScoreCalibration
from edgeiqa.errors import ConfigError
from edgeiqa.export import export_artifact, load_export_source
from edgeiqa.export.cli_entry import add_export_arguments, run_export
from edgeiqa.metrics import Logistic4Fit
from edgeiqa.models import create_model
from edgeiqa.runtime.manifest import SCHEMA, read_manifest
from edgeiqa.runtime.predictor import Predictor

STUDENT_FIT = Logistic4Fit((70.0, 20.0, 0.5, 0.05))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A distillation-style checkpoint folder of the registry's tiny student ``test_eqcnet``."""
    folder = tmp_path_factory.mktemp("ckpt") / "epoch_0003"
    folder.mkdir()
    torch.manual_seed(0)
    model = CalibratedModel(create_model("test_eqcnet"), ScoreCalibration(STUDENT_FIT))
    save_model(model, str(folder / "model.safetensors"))  # tied weights (shared backbone) are stored once
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    state = {
        "model": "test_eqcnet",
        "model_kwargs": {},
        "score_mapping": STUDENT_FIT.to_dict(),
        "sha256": {"model": digest},
        "epoch": 3,
    }
    (folder / "state.json").write_text(json.dumps(state))
    return folder


def test_checkpoint_source_rebuilds_the_calibrated_student(checkpoint):
    torch.manual_seed(123)  # a different initialisation: equal outputs below must come from the file
    source = load_export_source(checkpoint)
    assert source.name == "test_eqcnet" and source.contract == create_model("test_eqcnet").contract
    assert source.score_mapping["params"] == list(STUDENT_FIT.params)
    assert source.checkpoint_sha256 == json.loads((checkpoint / "state.json").read_text())["sha256"]["model"]
    assert not source.model.training
    torch.manual_seed(0)
    original = CalibratedModel(create_model("test_eqcnet"), ScoreCalibration(STUDENT_FIT)).eval()
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    frags = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(source.model(image, frags), original(image, frags))
        raw = source.model.model(image, frags)
        mapped = torch.as_tensor(STUDENT_FIT(raw.numpy()), dtype=torch.float32)
        assert torch.allclose(source.model(image, frags), mapped)


def test_bad_sources_are_one_line_errors(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="has no 'contract' attribute"):
        load_export_source(torch.nn.Linear(2, 1))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "state.json").write_text(json.dumps({"model": "test_eqcnet"}))
    with pytest.raises(ConfigError, match="checkpoint has no model.safetensors"):
        load_export_source(broken)
    # An uncalibrated student stage (weights under "student.") loads, but cannot be exported.
    save_file(
        {f"student.{k}": v.contiguous() for k, v in create_model("test_eqcnet").state_dict().items()},
        str(broken / "model.safetensors"),
    )
    (broken / "state.json").write_text(json.dumps({"model": "test_eqcnet", "kind": "student"}))
    with pytest.raises(ConfigError, match="has no score calibration"):
        load_export_source(broken, verify=False)
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "state.json").write_text((checkpoint / "state.json").read_text())
    save_file({"x": torch.zeros(1)}, str(tampered / "model.safetensors"))
    with pytest.raises(ConfigError, match="sha256 [0-9a-f]{64} differs from [0-9a-f]{64} recorded in state.json"):
        load_export_source(tampered)
    state = json.loads((checkpoint / "state.json").read_text())
    state["sha256"] = {}
    (tampered / "state.json").write_text(json.dumps(state))
    with pytest.raises(ConfigError, match="differs from None recorded"):  # no digest recorded: fail closed
        load_export_source(tampered)
    with pytest.raises(ConfigError, match="model.safetensors: weights do not fit the model named in state.json"):
        load_export_source(tampered, verify=False)
    module_source = load_export_source(TinyScorer())
    assert module_source.score_mapping == {"kind": "identity"} and module_source.name == "tiny_scorer"


def test_manifest_schema(model, val, tmp_path):
    result = export_artifact(model, "onnx", "fp32", tmp_path, val=val)
    data = json.loads(result.manifest_path.read_text())
    assert result.manifest_path.name == "tiny_scorer_fp32.onnx.json"
    assert list(data)[:4] == ["schema", "format", "precision", "artifact"] and data["schema"] == SCHEMA
    assert (data["format"], data["precision"], data["artifact"], data["model"]) == (
        "onnx",
        "fp32",
        "tiny_scorer_fp32.onnx",
        "tiny_scorer",
    )
    assert data["inputs"] == [
        {"name": "image", "shape": ["batch", 3, "height", "width"], "dtype": "float32"},
        {"name": "fragments", "shape": ["batch", 3, 16, 16], "dtype": "float32"},
    ]
    assert data["outputs"] == [{"name": "score", "shape": ["batch"], "dtype": "float32"}]
    assert data["preprocess"] == json.loads(json.dumps(tiny_contract().to_dict()))
    assert data["score_mapping"]["kind"] == "logistic4" and data["score_mapping"]["params"] == list(FIT.params)
    assert data["score_mapping"]["folded"] is True
    assert data["sha256"]["artifact"] == hashlib.sha256(result.artifact.read_bytes()).hexdigest()
    assert {"onnx", "onnxruntime", "torch", "numpy"} <= set(data["versions"])
    assert data["valid"] is True and data["parity"]["verdict"] == "passed"
    assert data["extra"]["export_seconds"] > 0 and data["extra"]["export"]["fp32"]["opset"] == 17
    assert read_manifest(result.manifest_path) == result.manifest


def test_checkpoint_to_onnx_fp32_and_int8_with_the_real_student(checkpoint, tmp_path):
    images = [str(p) for p in write_images(tmp_path / "imgs", 8, seed=9)]
    fp32 = export_artifact(checkpoint, "onnx", "fp32", tmp_path / "out", val=images)
    assert fp32.manifest.sha256["checkpoint"] == load_export_source(checkpoint).checkpoint_sha256
    assert fp32.manifest.extra["checkpoint"] == str(checkpoint)
    assert fp32.parity.passed and fp32.parity.max_abs_diff < 1e-3
    assert fp32.parity.delta_srcc_basis == "1 - SRCC(artifact, reference)"  # no MOS given
    int8 = export_artifact(
        checkpoint, "onnx", "int8", tmp_path / "out", calib=images, val=images, raise_on_failure=False
    )
    assert int8.manifest.extra["export"]["int8"]["calibration"]["images_seen"] == 8
    excluded = int8.manifest.extra["export"]["int8"]["nodes_to_exclude"]
    assert "/model/head/MatMul" in excluded
    # the std pooling, from x - mean to its sqrt, stays float ("variance" is in the default keep_fp)
    assert {"/model/Sub", "/model/Pow", "/model/ReduceMean_1", "/model/Sqrt"} <= set(excluded)
    with Predictor.load(fp32.artifact) as predictor:
        scores = predictor(images)
    assert np.all((scores > 20.0) & (scores < 70.0))  # the 4PL's MOS range, not raw outputs


def test_cli_export_from_a_checkpoint(checkpoint, tmp_path, capsys):
    images = write_images(tmp_path / "val", 6, seed=10)
    csv = tmp_path / "val.csv"
    csv.write_text("path,mos\n" + "".join(f"val/{p.name},{i}\n" for i, p in enumerate(images)))
    parser = argparse.ArgumentParser()
    add_export_arguments(parser)
    args = parser.parse_args(
        [str(checkpoint), "--format", "onnx", "--precision", "fp32", "--val", str(csv), "--out", str(tmp_path / "out")]
    )
    assert run_export(args) == 0
    line = capsys.readouterr().out
    assert "test_eqcnet_fp32.onnx" in line and "valid" in line and "max_abs_diff" in line
    manifest = read_manifest(tmp_path / "out" / "test_eqcnet_fp32.onnx.json")
    assert manifest.parity["images"] == {"source": tmp_path.name, "split": None, "n": 6, "mos": True, "available": 6}
    with pytest.raises(SystemExit):  # argparse: the test split is not a calibration choice
        parser.parse_args(
            [
                str(checkpoint),
                "--format",
                "onnx",
                "--precision",
                "int8",
                "--out",
                "x",
                "--calib",
                str(csv),
                "--calib-split",
                "test",
            ]
        )
