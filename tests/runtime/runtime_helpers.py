"""Helpers for the runtime tests: a tiny real ONNX model (built without torch), manifests, images.

The model takes ``image`` [batch,3,H,W] and ``fragments`` [batch,3,F,F] and outputs ``score``
[batch] = w1 . mean_hw(image) + w2 . mean_hw(fragments) + 0.05 * mean(image^2) + 3. It is sensitive
to normalisation, channel order, working size and fragment positions, which is what the runtime
must reproduce; :func:`tiny_reference` is the same formula in numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract
from edgeiqa.runtime.manifest import ArtifactManifest, manifest_path_for, sha256_file, tensor_spec, write_manifest

W_IMAGE = np.array([0.5, -0.25, 0.125], dtype=np.float32)
W_FRAG = np.array([0.3, 0.2, -0.1], dtype=np.float32)
BIAS = 3.0
CONTRAST = 0.05


def tiny_contract(**overrides) -> PreprocessContract:
    values = dict(working_size=32, fragments=FragmentSpec(grid=2, patch=8), max_pixels=100_000)
    values.update(overrides)
    return PreprocessContract(**values)


def tiny_reference(feed: dict[str, np.ndarray]) -> np.ndarray:
    """The tiny model in numpy, on batched inputs."""
    image = feed["image"].astype(np.float64)
    score = image.mean(axis=(2, 3)) @ W_IMAGE + CONTRAST * (image**2).mean(axis=(1, 2, 3)) + BIAS
    if "fragments" in feed:
        score = score + feed["fragments"].astype(np.float64).mean(axis=(2, 3)) @ W_FRAG
    return score


def build_tiny_onnx(path: Path, fragments: bool = True) -> Path:
    """Write the tiny model with onnx.helper (opset 17, dynamic batch/height/width)."""
    from onnx import TensorProto, checker, helper, numpy_helper, save

    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("image", f32, ["batch", 3, "height", "width"])]
    init = [
        numpy_helper.from_array(W_IMAGE.reshape(3, 1), "w_image"),
        numpy_helper.from_array(np.array([CONTRAST], np.float32), "contrast"),
        numpy_helper.from_array(np.array([BIAS], np.float32), "bias"),
        numpy_helper.from_array(np.array([-1], np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m_image"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["m_image", "w_image"], ["s_image"]),
        helper.make_node("Mul", ["image", "image"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["m_sq"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["m_sq", "flat"], ["m_sq_flat"]),
        helper.make_node("Mul", ["m_sq_flat", "contrast"], ["s_sq"]),
        helper.make_node("Reshape", ["s_image", "flat"], ["s_image_flat"]),
        helper.make_node("Add", ["s_image_flat", "s_sq"], ["s_a"]),
    ]
    last = "s_a"
    if fragments:
        inputs.append(helper.make_tensor_value_info("fragments", f32, ["batch", 3, "fsize", "fsize"]))
        init.append(numpy_helper.from_array(W_FRAG.reshape(3, 1), "w_frag"))
        nodes += [
            helper.make_node("ReduceMean", ["fragments"], ["m_frag"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["m_frag", "w_frag"], ["s_frag"]),
            helper.make_node("Reshape", ["s_frag", "flat"], ["s_frag_flat"]),
            helper.make_node("Add", ["s_a", "s_frag_flat"], ["s_b"]),
        ]
        last = "s_b"
    nodes.append(helper.make_node("Add", [last, "bias"], ["score"]))
    output = helper.make_tensor_value_info("score", f32, ["batch"])
    graph = helper.make_graph(nodes, "tiny_iqa", inputs, [output], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime/OpenVINO release we support
    checker.check_model(model)
    save(model, str(path))
    return path


def write_tiny_manifest(artifact: Path, contract: PreprocessContract, fmt: str = "onnx", **overrides) -> Path:
    inputs = [tensor_spec("image", ["batch", 3, "height", "width"])]
    if contract.fragments is not None:
        inputs.append(tensor_spec("fragments", ["batch", 3, "fsize", "fsize"]))
    values = dict(
        format=fmt,
        precision="fp32",
        artifact=artifact.name,
        model="tiny_iqa",
        inputs=inputs,
        outputs=[tensor_spec("score", ["batch"])],
        preprocess=contract.to_dict(),
        score_mapping={"kind": "logistic4", "params": [0.0, 1.0, 0.0, 1.0], "folded": True, "mos_range": [0, 1]},
        # The real digest: the runtime verifies it on load (a file the manifest does not vouch for is refused).
        sha256={"artifact": sha256_file(artifact) if artifact.exists() else "0" * 64, "checkpoint": None},
    )
    values.update(overrides)
    return write_manifest(ArtifactManifest(**values), manifest_path_for(artifact))


def smooth_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like RGB test image: gradients plus mild noise (JPEG-friendly, not flat)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200, y / height * 180, (x + y) / (width + height) * 160 + 40], axis=-1)
    base += 30 * np.sin(x[..., None] / (7 + seed) + np.array([0, 1, 2]))
    noisy = base + rng.normal(0, 6, base.shape)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8), "RGB")
