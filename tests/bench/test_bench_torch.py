"""The torch pseudo-artifact: a calibrated student checkpoint timed with torch eager in its own process."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_helpers import tiny_artifact, tiny_dataset

from edgeiqa.bench.harness import BenchOptions, DatasetSpec, bench_artifacts

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A final student checkpoint of the tiny CI student, as the calibrate stage writes it."""
    from edgeiqa.distill.calibration import CalibratedModel, ScoreCalibration
    from edgeiqa.distill.checkpoint import save_checkpoint
    from edgeiqa.models import create_model

    torch.manual_seed(0)
    # Independent backbones: safetensors refuses to save the tied (shared) weights of the default student.
    kwargs = {"shared_backbone": False}
    student = create_model("test_eqcnet", **kwargs)
    # The map ScoreCalibration() starts from, recorded the way the calibrate stage records its fit.
    mapping = {"kind": "logistic4", "params": [200.0, -200.0, 0.5, 100.0], "folded": True, "mos_range": [0, 100]}
    state = {
        "kind": "student",
        "model": "test_eqcnet",
        "model_kwargs": kwargs,
        "contract": student.contract.to_dict(),
        "stage": "final",
        "score_mapping": mapping,
    }
    folder = tmp_path_factory.mktemp("run") / "student" / "final"
    save_checkpoint(folder, 0, CalibratedModel(student, ScoreCalibration()), state, is_best=True)
    return folder


@pytest.mark.slow  # two worker processes, one importing torch + timm: 8-16 s on the shared 2-core machines
def test_torch_eager_fp32_on_cpu_is_benchmarked_beside_an_artifact(checkpoint, tmp_path) -> None:
    from edgeiqa.models import create_model

    art = tiny_artifact(tmp_path, "fp32.onnx", "linear")
    data = DatasetSpec(str(tiny_dataset(tmp_path / "data")), options={"mos_range": (0, 100)})
    result = bench_artifacts(
        [art, checkpoint], data, BenchOptions(batches=(1, 2), min_seconds=0.02, warmup=1, threads=1)
    )
    onnx_entry, torch_entry = result.results
    assert torch_entry["error"] is None and torch_entry["label"] == "torch fp32 cpu"
    assert (torch_entry["format"], torch_entry["precision"], torch_entry["backend"]) == ("torch", "fp32", "torch")
    assert torch_entry["runtime"]["device"] == "cpu" and torch_entry["runtime"]["torch_threads"] == 1
    assert torch_entry["input_shapes"] == {"image": [1, 3, 64, 64], "fragments": [1, 3, 32, 32]}
    assert torch_entry["compute_source"] == "torch-flop-counter" and torch_entry["gmacs"] > 0
    assert torch_entry["params"] == sum(
        p.numel() for p in create_model("test_eqcnet", shared_backbone=False).parameters()
    )
    assert (
        torch_entry["size_bytes"] == (Path(torch_entry["runtime"]["checkpoint"]) / "model.safetensors").stat().st_size
    )
    assert torch_entry["accuracy"]["n"] == 6 and [lat["batch"] for lat in torch_entry["latency"]] == [1, 2]
    assert torch_entry["worker_pid"] != onnx_entry["worker_pid"]


def test_cuda_without_cuda_is_a_recorded_failure(checkpoint) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    result = bench_artifacts(
        [checkpoint],
        options=BenchOptions(
            batches=(1,), min_seconds=0.01, warmup=0, isolate=False, torch_devices=("cuda",), input_size=(64, 64)
        ),
    )
    assert [e["label"] for e in result.results] == ["torch fp32 cuda", "torch fp16 cuda"]
    assert all("CUDA is not available" in e["error"] for e in result.results)
