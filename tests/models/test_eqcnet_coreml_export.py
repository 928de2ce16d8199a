"""Every student variant converts to Core ML (an ML program); on Linux only conversion and the spec are
checked, since MLModel.predict needs macOS."""

from __future__ import annotations

import pytest
import torch

from edgeiqa.models import create_model, list_models

STUDENTS = list_models("*eqcnet*")
pytestmark = pytest.mark.slow  # 3.5-6 s per conversion


@pytest.mark.parametrize("name", STUDENTS)
def test_coreml_conversion(name: str) -> None:
    ct = pytest.importorskip("coremltools")
    model = create_model(name).eval()
    example = model.example_inputs(1, (64, 64))
    traced = torch.jit.trace(model, example)
    inputs = [ct.TensorType(name=n, shape=tuple(x.shape)) for n, x in zip(model.contract.input_names, example)]
    mlmodel = ct.convert(
        traced,
        inputs=inputs,
        outputs=[ct.TensorType(name="score")],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT32,
        skip_model_load=True,
    )
    spec = mlmodel.get_spec()
    assert [i.name for i in spec.description.input] == list(model.contract.input_names)
    assert [o.name for o in spec.description.output] == ["score"]
    blocks = spec.mlProgram.functions["main"].block_specializations.values()
    ops = {op.type for block in blocks for op in block.operations}
    assert {"conv", "upsample_bilinear", "softmax"} <= ops and "conv_transpose" not in ops
