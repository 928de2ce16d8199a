"""Every student variant exports to ONNX (opset 17, TorchScript exporter) with dynamic batch/height/width,
and onnxruntime agrees with torch to 1e-4 on batches and sizes other than the traced ones."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch

from edgeiqa.export.artifact import dynamic_axes
from edgeiqa.models import EQCNet, create_model, list_models

STUDENTS = list_models("*eqcnet*")


def _varied(model: EQCNet, batch: int, hw: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """Inputs whose images differ in contrast and brightness, not only in noise."""
    torch.manual_seed(batch)
    scale = torch.arange(1, batch + 1, dtype=torch.float32).view(-1, 1, 1, 1)
    return tuple(x * scale * 0.5 + scale - 1.5 for x in model.example_inputs(batch, hw))


def _sharpened(name: str) -> tuple[EQCNet, list[tuple[torch.Tensor, ...]]]:
    """A student whose scores differ clearly between the test inputs, so 1e-4 agreement means something.

    A randomly initialised network maps all inputs to nearly the same embedding, and near-uniform pivot
    weights then give nearly the same score; placing pivots on the test inputs' embeddings and
    sharpening the softmax spreads the scores over the pivot range.
    """
    torch.manual_seed(0)
    model = create_model(name).eval()
    cases = [_varied(model, 3, (96, 80)), _varied(model, 1, (75, 130))]  # neither traced batch nor size
    with torch.no_grad():
        embeddings = torch.cat([model.forward_features(*inputs) for inputs in cases])
        model.head.pivots[: len(embeddings)] = embeddings
        model.head.log_scale.fill_(math.log(100.0))
    return model, cases


@pytest.mark.parametrize("name", STUDENTS)
def test_onnx_export_with_dynamic_axes_matches_torch(name: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    model, cases = _sharpened(name)
    names = list(model.contract.input_names)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            model.example_inputs(1, (64, 64)),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=names,
            output_names=["score"],
            dynamic_axes=dynamic_axes(model.contract),
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == names
    assert session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    for inputs in cases:
        batch = len(inputs[0])
        with torch.no_grad():
            expected = model(*inputs).numpy()
        (got,) = session.run(["score"], {n: x.numpy() for n, x in zip(names, inputs)})
        assert got.shape == (batch,) and (batch == 1 or np.ptp(expected) > 1e-3)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
