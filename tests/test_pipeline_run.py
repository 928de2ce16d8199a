"""``edgeiqa run --config X.yaml``: the tiny experiment end to end, from its YAML alone, to a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from experiment_helpers import tiny_experiment, write_yaml

from edgeiqa.cli import main
from edgeiqa.distill import stages
from edgeiqa.distill.config import LossOptions

LOSS_OPTIONS = {"fidelity_scale": 0.2, "teacher_pair_scale": 0.1, "smooth_l1_beta": 0.05}


@pytest.mark.slow
def test_edgeiqa_run_exports_benches_and_reports_from_the_yaml_alone(tiny_synth, tmp_path, monkeypatch, capsys):
    used: list[LossOptions] = []

    class RecordingLoss(stages.WeightedLoss):
        def __init__(self, weights, options=None) -> None:
            used.append(options)
            super().__init__(weights, options)

    monkeypatch.setattr(stages, "WeightedLoss", RecordingLoss)
    out = tmp_path / "exp"
    config = write_yaml(
        tmp_path / "exp.yaml",
        tiny_experiment(
            tmp_path / "elsewhere",
            tiny_synth,
            loss_options=LOSS_OPTIONS,
            # A one-epoch student's 4PL is steep: torch and ONNX Runtime differ by ~0.006 MOS (of 100) on it.
            export={
                "artifacts": [{"format": "onnx", "precision": "fp32"}],
                "calibration": {"n_images": 8},
                "tolerances": {"fp32_max_abs": 0.05},
            },
            bench={"batches": [1], "min_seconds": 0.05, "warmup": 1, "torch_checkpoint": False, "device_name": "ci"},
        ),
    )
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report' / 'report.html'}" in printed and "student_only" in printed

    # every stage trained with the YAML's loss options (teacher, pre-train, fine-tune, the ablation's fine-tune)
    assert len(used) == 4 and all(o == LossOptions(**LOSS_OPTIONS) for o in used)
    assert not (tmp_path / "elsewhere").exists()  # --out wins over the file's out
    manifest = json.loads((out / "artifacts" / "test_eqcnet_fp32.onnx.json").read_text())
    assert manifest["parity"]["verdict"] == "passed"
    result = json.loads((out / "results" / "ci.json").read_text())
    assert [Path(e["artifact"]).name for e in result["results"]] == ["test_eqcnet_fp32.onnx"]  # no torch target
    entry = result["results"][0]
    assert [lat["batch"] for lat in entry["latency"]] == [1] and entry["accuracy"]["n"] == result["dataset"]["n"]
    assert result["dataset"]["split_used"] == "test" and result["settings"]["min_seconds"] == 0.05
    assert result["ablation"]["student_only"]  # the run's own summary.json, carried into the report
    for name in ("report.md", "report.html", "pareto.png"):
        assert (out / "report" / name).stat().st_size > 0

    # re-running resumes: the trained teacher is reused, not trained again
    teacher = out / "teacher" / "best.json"
    before = teacher.stat().st_mtime_ns
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    assert teacher.stat().st_mtime_ns == before
    first, again = json.loads((out / "run.json").read_text())["invocations"]  # one entry per invocation
    assert first["finished"] and again["finished"] and list(first["steps"]) == list(again["steps"])
    assert len(first["steps"]) == 5 and first["cores"] >= 1


def test_the_run_record_keeps_each_step_as_it_finishes_and_each_invocation(tmp_path) -> None:
    from edgeiqa.errors import EdgeIQAError
    from edgeiqa.pipeline import Steps

    def killed() -> None:
        raise KeyboardInterrupt

    path = tmp_path / "run" / "run.json"
    steps = Steps(quiet=True)
    steps.record(path)
    steps("teacher", lambda: 1)
    with pytest.raises(KeyboardInterrupt):
        steps("student", killed)
    [interrupted] = json.loads(path.read_text())["invocations"]
    assert list(interrupted["steps"]) == ["teacher"] and not interrupted["finished"]
    resumed = Steps(quiet=True)
    resumed.began_at = "a later invocation"
    resumed.record(path)
    resumed("teacher", lambda: 1)
    resumed.save(finished=True)
    first, second = json.loads(path.read_text())["invocations"]
    assert first == interrupted and second["finished"] and list(second["steps"]) == ["teacher"]
    path.write_text("[]")
    with pytest.raises(EdgeIQAError, match=r"run.json: not a run record"):
        Steps(quiet=True).record(path)


def test_the_quickstart_is_the_preset_run_on_generated_data(tmp_path, monkeypatch) -> None:
    from edgeiqa import quickstart
    from edgeiqa.experiment import ExperimentConfig
    from edgeiqa.pipeline import ExperimentResult

    seen = {}

    def fake_run(cfg, quiet=False, *, steps=None):
        seen["cfg"], seen["steps"] = cfg, steps
        return ExperimentResult(Path(cfg.out), Path(cfg.out) / "report" / "report.html", 0.0, dict(steps.seconds))

    monkeypatch.setattr(quickstart, "_dataset", lambda out, seed, quiet: out / "data" / "mos.csv")
    monkeypatch.setattr(quickstart, "run_experiment", fake_run)
    result = quickstart.run_quickstart(tmp_path / "qs", seed=7, quiet=True)
    cfg, preset = seen["cfg"], ExperimentConfig.load(quickstart.preset_path("quickstart.yaml"))
    assert (cfg.out, cfg.seed, cfg.data.root) == (
        str(tmp_path / "qs" / "run"),
        7,
        str(tmp_path / "qs" / "data" / "mos.csv"),
    )
    cfg.out, cfg.seed, cfg.data.root = preset.out, preset.seed, preset.data.root
    assert cfg == preset  # nothing else is the quickstart's own: exports and bench come from the YAML
    assert result.out == tmp_path / "qs" and "generate the embedded dataset" in result.steps


@pytest.mark.parametrize("rule", ["official", "random"])
def test_the_bench_scores_the_test_images_the_experiment_held_out(tiny_synth, rule: str) -> None:
    from edgeiqa.bench.harness import DatasetSpec
    from edgeiqa.distill.config import DataConfig
    from edgeiqa.distill.runs import load_splits

    # seed 1 draws another test source than the CSV's own split (seeds 0 and 3 happen to draw the same one)
    data = DataConfig(
        root=str(tiny_synth), options={"mos_range": [0, 100]}, split=rule, split_seed=1, fractions=[0.5, 0.25, 0.25]
    )
    records, block = DatasetSpec(
        data.root,
        split="test",
        options=data.options,
        split_rule=data.split,
        split_seed=data.split_seed,
        fractions=tuple(data.fractions),
    ).load()
    held_out = [str(r.path) for r in load_splits(data).test]
    assert [path for path, _ in records] == held_out and block["split_used"] == "test"
    own = [path for path, _ in DatasetSpec(data.root, split="test", options=data.options).load()[0]]
    assert (own == held_out) == (rule == "official")  # without the rule, the CSV's own split is scored
