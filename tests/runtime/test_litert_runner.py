"""The LiteRT runner: its error messages, and how it adapts the NCHW float feed to a model's inputs."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from runtime_helpers import tiny_contract

from edgeiqa.errors import MissingDependencyError
from edgeiqa.runtime.manifest import ArtifactManifest
from edgeiqa.runtime.runners import RunnerError, backends_for_format, runner_for
from edgeiqa.runtime.runners.litert_runner import INTERPRETER_MODULES, LiteRTRunner, _Port


def test_missing_interpreter_names_the_extra(tmp_path, monkeypatch):
    real = importlib.import_module

    def no_litert(name, *args, **kwargs):
        if name in INTERPRETER_MODULES:
            raise ImportError(f"No module named {name.split('.')[0]!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_litert)
    path = tmp_path / "m.tflite"
    path.write_bytes(b"TFL3")
    with pytest.raises(MissingDependencyError, match=r"ai-edge-litert.*pip install 'edgeiqa\[litert\]'") as info:
        LiteRTRunner(path).activate()
    assert "\n" not in str(info.value)


def test_missing_and_bad_files_are_one_line_runner_errors(tmp_path):
    with pytest.raises(RunnerError, match="artifact not found"):
        LiteRTRunner(tmp_path / "absent.tflite").activate()
    pytest.importorskip("ai_edge_litert")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 8)
    with pytest.raises(RunnerError, match="bad.tflite: LiteRT cannot load this model") as info:
        LiteRTRunner(bad).activate()
    assert "\n" not in str(info.value)
    with pytest.raises(RunnerError, match="litert threads must be >= 1"):
        LiteRTRunner(bad, threads=0)


def test_manifest_format_litert_picks_the_litert_runner(tmp_path):
    contract = tiny_contract()
    manifest = ArtifactManifest(
        format="litert",
        precision="fp32",
        artifact="m.tflite",
        model="m",
        inputs=[{"name": "image", "shape": [1, 3, 32, 32], "dtype": "float32"}],
        outputs=[{"name": "score", "shape": [1], "dtype": "float32"}],
        preprocess=contract.to_dict(),
    )
    runner = runner_for(manifest, tmp_path / "m.tflite", threads=2)
    assert isinstance(runner, LiteRTRunner) and runner.threads == 2
    assert backends_for_format("litert") == ("litert",) and backends_for_format("ort") == ("onnxruntime",)


def _details(shape, dtype=np.float32, quantization=(0.0, 0)):
    return {
        "index": 0,
        "shape": np.array(shape),
        "shape_signature": np.array(shape),
        "dtype": dtype,
        "quantization": quantization,
    }


def test_ports_transpose_nhwc_and_quantize_int8_inputs():
    feed = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) / 100.0
    feed[1, 2, 3, 4] = 5.0  # past int8's range at scale 0.01
    nchw = _Port(_details([1, 3, 4, 5]))
    assert not nchw.nhwc and not nchw.quantized and nchw.to_model(feed).shape == (2, 3, 4, 5)
    nhwc = _Port(_details([1, 4, 5, 3]))
    assert nhwc.nhwc and np.array_equal(nhwc.to_model(feed), feed.transpose(0, 2, 3, 1))
    q = _Port(_details([1, 3, 4, 5], np.int8, (0.01, -3)))
    quantized = q.to_model(feed)
    assert quantized.dtype == np.int8
    assert np.array_equal(quantized, np.clip(np.rint(feed / 0.01 - 3), -128, 127).astype(np.int8))
    assert quantized.max() == 127  # values past the range saturate instead of wrapping
    out = _Port(_details([1], np.int8, (0.5, -128)))
    assert np.allclose(out.from_model(np.array([-128, 0, 127], np.int8)), [0.0, 64.0, 127.5])
    dynamic = _Port(_details([-1, 3, 4, 5]))
    assert dynamic.dynamic_batch and not nchw.dynamic_batch
