"""The device runtime works where torch cannot be imported, and never even tries to import it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from edgeiqa.runtime.predictor import Predictor

# Runs in a fresh interpreter: a meta-path finder makes every torch import fail and records it.
CHILD = textwrap.dedent(
    """
    import importlib.abc, json, sys

    attempts = []

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                attempts.append(name)
                raise ImportError("torch is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockTorch())
    try:
        import torch  # noqa: F401
    except ImportError:
        blocked = True
    else:
        blocked = False
    attempts.clear()

    import edgeiqa.runtime
    from edgeiqa.errors import EdgeIQAError
    from edgeiqa.runtime import batch, decode, manifest, predictor, runners
    from edgeiqa.runtime.runners import CoreMLRunner

    artifact, image, folder = sys.argv[1:4]
    with predictor.Predictor.load(artifact, threads=1) as ort_pred:
        ort_score = float(ort_pred([image])[0])
        files = batch.predict_files(ort_pred, [folder], progress=False)
    with predictor.Predictor.load(artifact, backend="openvino", threads=1) as ov_pred:
        ov_score = float(ov_pred([image])[0])
    try:
        CoreMLRunner(folder).activate()
        coreml = "ran"
    except EdgeIQAError as exc:
        coreml = str(exc)
    print(json.dumps({
        "blocked": blocked, "attempts": attempts, "ort": ort_score, "openvino": ov_score,
        "scored": len(files.scored), "coreml": coreml,
        "torch_modules": [m for m in sys.modules if m.split(".")[0] == "torch"],
        "coremltools_imported": "coremltools" in sys.modules,
    }))
    """
)


def test_runtime_runs_without_torch(tiny_onnx: Path, image_files) -> None:
    image = image_files[0]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tiny_onnx), str(image), str(image.parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["blocked"] is True
    assert report["attempts"] == [], "something under edgeiqa.runtime tried to import torch"
    assert report["torch_modules"] == []
    assert report["coremltools_imported"] is False  # coremltools would pull torch in
    assert "Core ML prediction needs macOS" in report["coreml"] or sys.platform == "darwin"
    assert report["scored"] == len(image_files)
    with Predictor.load(tiny_onnx, threads=1) as pred:
        expected = float(pred([image])[0])
    assert report["ort"] == expected
    assert np.isclose(report["openvino"], expected, atol=1e-5)
