"""The optional ``qat`` stage end to end on the tiny models: checkpoints, reload, resume, frozen BN, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from experiment_helpers import qat_experiment, tiny_experiment, write_yaml

from edgeiqa.cli import main
from edgeiqa.distill import qat as qat_module
from edgeiqa.distill.api import run_distill, wants_qat
from edgeiqa.distill.saved_model import load_model
from edgeiqa.distill.validate import validate_experiment
from edgeiqa.errors import ConfigError
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.metrics import srcc
from edgeiqa.models.fake_quant import is_fake_quantized, quantized_layers
from edgeiqa.runtime.predictor import Predictor


def _config(out: Path, csv: Path, **qat) -> Path:
    return write_yaml(out / f"exp{len(qat)}.yaml", qat_experiment(out / "run", csv, **qat))


def _inputs(model, tiny_synth: Path, n: int = 6) -> list[torch.Tensor]:
    from edgeiqa.runtime.preprocess import preprocess

    feeds = [preprocess(p, model.contract) for p in sorted(tiny_synth.parent.glob("images/*.png"))[:n]]
    return [torch.from_numpy(np.stack([f[name] for f in feeds])) for name in model.contract.input_names]


def test_the_stage_writes_fake_quant_checkpoints_that_load_model_rebuilds(qat_run, tiny_synth) -> None:
    cfg, _, result = qat_run
    root = Path(cfg.out) / "student"
    assert result.qat_final == root / "qat_final"
    trained, final = load_model(root / "qat"), load_model(root / "qat_final")
    assert trained.kind == "student" and final.kind == "calibrated"
    for loaded in (trained, final):
        assert is_fake_quantized(loaded.model)
        assert loaded.quantization["activation_calibration"] == "percentile"
        assert loaded.quantization["keep_fp"] == ["head"]
    state = final.checkpoint.state
    assert state["activation_calibration"]["images"] == 16 and state["quantized_layers"] == 116
    assert state["float_reference"]["stage"] == "../final"
    assert state["float_reference"]["sha256"] == load_model(root / "final").checkpoint.state["sha256"]["model"]
    amax = [float(m.input_quantizer.amax) for m in quantized_layers(final.model).values()]
    assert all(np.isfinite(amax)) and len(set(amax)) > 50  # measured per layer, restored from the file
    # qat_final is the best QAT epoch with a score map on top: the reloaded raw outputs are identical.
    inputs = _inputs(final.model, tiny_synth)
    with torch.no_grad():
        raw_final, raw_trained = final.model.model(*inputs), trained.model(*inputs)
    torch.testing.assert_close(raw_final, raw_trained, rtol=0, atol=0)


def test_qat_keeps_batchnorm_statistics_of_the_fine_tuned_student(qat_run) -> None:
    cfg, *_ = qat_run
    root = Path(cfg.out) / "student"
    finetuned = load_model(root / "finetune").model.state_dict()
    trained = load_model(root / "qat").model.state_dict()
    statistics = [k for k in finetuned if "running_" in k]
    assert statistics
    for key in statistics:  # frozen: TensorRT folds exactly these
        torch.testing.assert_close(trained[key], finetuned[key], rtol=0, atol=0)
    assert any(not torch.equal(trained[k], finetuned[k]) for k in finetuned if k.endswith("weight"))  # it trained


def test_the_summary_scores_the_qat_student_as_the_runtime_does(qat_run, tiny_synth) -> None:
    from edgeiqa.distill.runs import load_splits

    cfg, _, result = qat_run
    summary = json.loads((Path(cfg.out) / "summary.json").read_text())
    assert summary == result.summary and "student_qat" in summary
    test = load_splits(cfg.data).test
    with Predictor.load(Path(cfg.out) / "student" / "qat_final") as predictor:  # torch backend, load_model
        scores = predictor([r.path for r in test])
    assert summary["student_qat"]["srcc"] == pytest.approx(srcc(scores, [r.mos for r in test]), abs=1e-4)


def test_resume_restores_the_measured_ranges_and_trains_only_the_missing_epochs(qat_run, tmp_path, monkeypatch) -> None:
    import shutil

    from edgeiqa.distill import loop
    from edgeiqa.distill.checkpoint import latest_checkpoint

    cfg, config, _ = qat_run
    out = tmp_path / "run"
    for part in ("teacher", "student/finetune", "student/final"):  # a run folder the qat stage has not seen
        shutil.copytree(Path(cfg.out) / part, out / part)
    two_epochs = ExperimentConfig.load(config)
    two_epochs.out, two_epochs.student.qat.optim.epochs = str(out), 2
    real_save = loop.save_checkpoint

    def killed_before_epoch_1_is_saved(stage_dir, epoch, *args, **kwargs):
        if stage_dir.name == "qat" and epoch == 1:
            raise KeyboardInterrupt
        return real_save(stage_dir, epoch, *args, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", killed_before_epoch_1_is_saved)
    with pytest.raises(KeyboardInterrupt):
        run_distill(two_epochs, stages=("qat",), progress=False)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    stage = out / "student" / "qat"
    saved = latest_checkpoint(stage)
    assert saved is not None and saved.epoch == 0 and not (out / "student" / "qat_final").exists()
    amax_saved = {k: v for k, v in saved.model_state().items() if k.endswith("input_quantizer.amax")}

    def no_recalibration(*_args, **_kwargs):
        raise AssertionError("a resumed qat stage must restore its activation ranges, not measure them again")

    monkeypatch.setattr(qat_module, "calibrate_activations", no_recalibration)
    result = run_distill(two_epochs, stages=("qat",), progress=False, evaluate_after=False)
    assert [h["epoch"] for h in json.loads((stage / "metrics.json").read_text())] == [0, 1]
    last = latest_checkpoint(stage)
    assert last.epoch == 1 and last.state["activation_calibration"]["restored_from"] == "epoch_0000"
    for key, value in amax_saved.items():  # the ranges epoch 0 trained with, carried into epoch 1
        torch.testing.assert_close(last.model_state()[key], value, rtol=0, atol=0)
    assert load_model(result.qat_final).kind == "calibrated"


def test_asking_for_a_disabled_qat_stage_is_one_line_and_trains_nothing(qat_run, tmp_path, capsys) -> None:
    cfg, *_ = qat_run
    disabled = write_yaml(tmp_path / "off.yaml", tiny_experiment(tmp_path / "never", cfg.data.root))
    assert main(["distill", "--config", str(disabled), "--stages", "qat", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "student.qat.enabled is false" in err
    assert not (tmp_path / "never").exists()  # refused before the run folder was made
    off = ExperimentConfig.load(disabled)
    assert wants_qat(off, None, False) is False  # the default stage list skips it
    assert wants_qat(cfg, None, True) is False  # and never trains it for the label-only ablation
    with pytest.raises(ConfigError, match="drop --student-only"):
        wants_qat(cfg, ("qat",), True)


def test_qat_config_rules_are_checked_before_training(qat_run, tmp_path) -> None:
    cfg, *_ = qat_run
    for override, message in (
        ({"optim": {"freeze_bn": False}}, "student.qat.optim.freeze_bn: must be true"),
        ({"optim": {"amp": "auto"}}, "student.qat.optim.amp: must be 'off'"),
        ({"percentile": 30.0}, "student.qat.percentile: must be in"),
        ({"losses": {"regresion": 1.0}}, "student.qat.losses: unknown loss name"),
    ):
        bad = ExperimentConfig.load(_config(tmp_path, Path(cfg.data.root), **override))
        with pytest.raises(ConfigError, match=message):
            validate_experiment(bad)


def test_the_stage_names_what_it_needs_when_it_is_missing(qat_run, tmp_path) -> None:
    import shutil

    from edgeiqa.distill.api import open_run
    from edgeiqa.distill.qat import train_qat
    from edgeiqa.errors import EdgeIQAError

    cfg, *_ = qat_run
    run = open_run(ExperimentConfig.load(_config(tmp_path, Path(cfg.data.root))), progress=False)
    with pytest.raises(EdgeIQAError, match="finetune: no fine-tuned student; the qat stage starts from it"):
        train_qat(run, tmp_path / "empty")
    shutil.copytree(Path(cfg.out) / "student" / "finetune", tmp_path / "partial" / "finetune")
    with pytest.raises(EdgeIQAError, match="final: no score-calibrated float student.*run the calibrate stage"):
        train_qat(run, tmp_path / "partial")
