"""Helpers for the benchmark tests: two tiny real ONNX scorers (built with onnx.helper), manifests, a
tiny CSV dataset of PNGs, and hand-made result dicts for the report rules.

``linear``: score = w1 . mean_hw(image) + w2 . mean_hw(fragments) + 3 (2 MatMuls of K=3: 6 MACs).
``conv``: a 3->8 3x3 convolution (pad 1) on the image, ReLU, mean, an 8->1 MatMul, plus the same
fragment term: at a 32 px working size 32*32*8*27 + 8 + 3 = 221,195 MACs.
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract
from edgeiqa.runtime.manifest import ArtifactManifest, manifest_path_for, sha256_file, tensor_spec, write_manifest

CONV_MACS = 32 * 32 * 8 * 27 + 8 + 3
LINEAR_MACS = 6


def tiny_contract() -> PreprocessContract:
    return PreprocessContract(working_size=32, fragments=FragmentSpec(grid=2, patch=8), max_pixels=100_000)


def build_onnx(path: Path, kind: str = "linear", batch: int | str = "batch") -> Path:
    """Write a tiny scorer with inputs image [b,3,H,W], fragments [b,3,F,F] and output score [b];
    an int ``batch`` fixes the batch dimension (a static engine)."""
    from onnx import TensorProto, checker, helper, numpy_helper, save

    f32 = TensorProto.FLOAT
    rng = np.random.default_rng(1)
    inputs = [
        helper.make_tensor_value_info("image", f32, [batch, 3, "height", "width"]),
        helper.make_tensor_value_info("fragments", f32, [batch, 3, "fsize", "fsize"]),
    ]
    init = [
        numpy_helper.from_array(np.array([0.3, 0.2, -0.1], np.float32).reshape(3, 1), "w_frag"),
        numpy_helper.from_array(np.array([3.0], np.float32), "bias"),
        numpy_helper.from_array(np.array([-1], np.int64), "flat"),
    ]
    if kind == "linear":
        init.append(numpy_helper.from_array(np.array([0.5, -0.25, 0.125], np.float32).reshape(3, 1), "w_image"))
        nodes = [helper.make_node("ReduceMean", ["image"], ["m_image"], axes=[2, 3], keepdims=0)]
    else:
        init += [
            numpy_helper.from_array(rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32), "conv_w"),
            numpy_helper.from_array(rng.normal(0, 0.3, (8, 1)).astype(np.float32), "w_image"),
        ]
        nodes = [
            helper.make_node("Conv", ["image", "conv_w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("ReduceMean", ["r"], ["m_image"], axes=[2, 3], keepdims=0),
        ]
    nodes += [
        helper.make_node("MatMul", ["m_image", "w_image"], ["s_image"]),
        helper.make_node("ReduceMean", ["fragments"], ["m_frag"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["m_frag", "w_frag"], ["s_frag"]),
        helper.make_node("Add", ["s_image", "s_frag"], ["s"]),
        helper.make_node("Reshape", ["s", "flat"], ["s_flat"]),
        helper.make_node("Add", ["s_flat", "bias"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes, f"tiny_{kind}", inputs, [helper.make_tensor_value_info("score", f32, [batch])], initializer=init
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    checker.check_model(model)
    save(model, str(path))
    return path


def write_manifest_for(artifact: Path, precision: str = "fp32", **extra: Any) -> Path:
    contract = tiny_contract()
    manifest = ArtifactManifest(
        format="onnx",
        precision=precision,
        artifact=artifact.name,
        model="tiny_iqa",
        inputs=[
            tensor_spec("image", ["batch", 3, "height", "width"]),
            tensor_spec("fragments", ["batch", 3, "fsize", "fsize"]),
        ],
        outputs=[tensor_spec("score", ["batch"])],
        preprocess=contract.to_dict(),
        sha256={"artifact": sha256_file(artifact)},
        extra=dict(extra),  # the runtime verifies it on load
    )
    return write_manifest(manifest, manifest_path_for(artifact))


def tiny_artifact(
    folder: Path, name: str, kind: str, precision: str = "fp32", batch: int | str = "batch", **extra: Any
) -> Path:
    path = build_onnx(folder / name, kind, batch)
    write_manifest_for(path, precision, **extra)
    return path


def tiny_dataset(folder: Path, n: int = 8) -> Path:
    """``n`` 48x40 PNGs blurred more and more, with MOS rising from 20; the last 2 are 'train'."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:40, 0:48].astype(np.float32)
    rng = np.random.default_rng(0)
    base = np.stack([x * 5, y * 6, (x + y) * 2.5 + 20], axis=-1) + 40 * np.sin(x[..., None] / 2.0 + np.arange(3))
    base = (base + rng.normal(0, 8, base.shape)).clip(0, 255).astype(np.uint8)
    rows = []
    for i in range(n):
        img = Image.fromarray(base).filter(ImageFilter.GaussianBlur(radius=0.4 * i))
        img.save(folder / f"img{i}.png")
        rows.append({"path": f"img{i}.png", "mos": 20 + 10 * i, "split": "train" if i >= n - 2 else "test"})
    csv_path = folder / "mos.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "mos", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return csv_path


# ------------------------------------------------------------------------------ hand-made result data


def entry(
    label: str,
    p50: float,
    srcc: float | None,
    fmt: str = "onnx",
    precision: str = "fp32",
    backend: str = "onnxruntime",
    size: int = 1000,
    **overrides: Any,
) -> dict[str, Any]:
    """One valid ``results`` entry with a batch-1 latency of ``p50`` ms and the given SRCC."""
    lat = {
        "batch": 1,
        "n": 10,
        "warmup": 2,
        "mean_ms": p50,
        "std_ms": 0.0,
        "p50_ms": p50,
        "p90_ms": p50,
        "p99_ms": p50,
        "min_ms": p50,
        "max_ms": p50,
        "total_s": p50 / 100,
        "throughput_ips": 1000 / p50,
    }
    acc = (
        None
        if srcc is None
        else {"srcc": srcc, "plcc": srcc, "krcc": srcc, "plcc_logistic": srcc, "rmse": 1.0, "mae": 1.0, "n": 20}
    )
    data = {
        "artifact": f"/x/{label}",
        "label": label,
        "kind": "torch" if fmt == "torch" else "artifact",
        "format": fmt,
        "precision": precision,
        "backend": backend,
        "precision_used": precision,
        "latency": [lat],
        "accuracy": acc,
        "end_to_end": None,
        "gmacs": 0.5,
        "params": 1000,
        "size_bytes": size,
        "peak_rss_mb": 100.0,
        "worker_pid": 1,
        "error": None,
    }
    data.update(overrides)
    return data


def result_dict(device: str, entries: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    data = {
        "schema": "edgeiqa.bench/1",
        "created": "2025-01-01T00:00:00+00:00",
        "device": {"name": device, "cpu_model": "Test CPU"},
        "settings": {"batches": [1]},
        "dataset": {"name": "csv", "split_used": "test", "n": 20},
        "ablation": None,
        "results": copy.deepcopy(entries),
    }
    data.update(overrides)
    return data
