"""Seeded random inputs in a preprocessing contract's shapes: what export traces and tests feed.

One function, used by the exporters (``edgeiqa.export.source``) and by ``EQCNet.example_inputs``, so a
test that traces a model with it checks the same inputs the shipped export uses.
"""

from __future__ import annotations

import torch

from edgeiqa.runtime.contract import PreprocessContract


def example_inputs(
    contract: PreprocessContract,
    batch: int = 2,
    image_hw: tuple[int, int] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, ...]:
    """``image`` [batch, 3, H, W] (working size unless ``image_hw``) and, with fragments, the mosaic."""
    generator = torch.Generator().manual_seed(seed)
    size = contract.working_size
    h, w = image_hw or (size, size)
    inputs = [torch.randn(batch, 3, h, w, generator=generator)]
    if contract.fragments is not None:
        mosaic = contract.fragments.mosaic_size
        inputs.append(torch.randn(batch, 3, mosaic, mosaic, generator=generator))
    return tuple(x.to(device) if device is not None else x for x in inputs)
