"""Gradients flow end to end: teacher and student each overfit 32 images of the embedded dataset.

Scored in eval mode (BatchNorm running statistics, fixed patch grid), as deployment would, with
SRCC from scipy against the pseudo-MOS. Targets are MOS / 100, the 0..1 range the pivots start on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import spearmanr

from edgeiqa.models import EQCNet, collate_teacher_views, create_model, teacher_views
from edgeiqa.runtime.preprocess import preprocess_image

pytestmark = pytest.mark.slow  # ~6 s per model on an idle core, ~17 s on a busy one

MAX_STEPS = 200
TARGET_SRCC = 0.95


def _student_inputs(model: EQCNet, images: Sequence[Image.Image]) -> tuple[torch.Tensor, ...]:
    arrays = [preprocess_image(img, model.contract) for img in images]
    return tuple(torch.from_numpy(np.stack([a[k] for a in arrays])) for k in model.contract.input_names)


def _teacher_inputs(model: torch.nn.Module, images: Sequence[Image.Image]) -> tuple[torch.Tensor, ...]:
    batch = collate_teacher_views([teacher_views(img, model.view_spec) for img in images])
    return batch["global_view"], batch["patches"], batch["patch_mask"]


def _overfit(
    model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], target: torch.Tensor
) -> tuple[float, int, float]:
    """Full-batch AdamW until eval-mode SRCC reaches the target; returns (srcc, steps, seconds)."""
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    start, srcc = time.perf_counter(), float("nan")
    for step in range(1, MAX_STEPS + 1):
        model.train()
        embedding = model.forward_features(*inputs)
        loss = F.mse_loss(model.forward_head(embedding), target)
        if hasattr(model, "order_losses"):
            loss = loss + 0.1 * sum(model.order_losses(embedding, target).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            with torch.no_grad():
                scores = model.eval()(*inputs)
            srcc = float(spearmanr(scores.numpy(), target.numpy())[0])
            if srcc >= TARGET_SRCC:
                break
    return srcc, step, time.perf_counter() - start


@pytest.mark.parametrize("name", ["test_eqcnet", "test_eiqanet"])
def test_model_overfits_32_images(name: str, synth_batch: tuple[list[Image.Image], np.ndarray]) -> None:
    images, mos = synth_batch
    assert len(images) == 32 and mos.min() < 40 and mos.max() > 90  # a spread of qualities
    torch.manual_seed(0)
    model = create_model(name)
    make_inputs = _student_inputs if isinstance(model, EQCNet) else _teacher_inputs
    srcc, steps, seconds = _overfit(model, make_inputs(model, images), torch.from_numpy(mos / 100.0))
    print(f"{name}: SRCC {srcc:.3f} after {steps} steps in {seconds:.1f} s")
    assert srcc >= TARGET_SRCC, f"{name} reached SRCC {srcc:.3f} in {steps} steps ({seconds:.1f} s)"
