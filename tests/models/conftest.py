"""Fixtures for the model tests: one torch thread, and a 32-image batch of the embedded dataset."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    # The test machines have 2 cores shared by parallel jobs; torch's intra-op threads spin while
    # waiting and made small models 5-10x slower under contention than a single thread.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synth_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Image.Image], np.ndarray]:
    """32 images of the embedded synthetic dataset spread evenly over its MOS range, and their MOS (0..100)."""
    from edgeiqa.data.synth import synthesize

    root = tmp_path_factory.mktemp("synth") / "data"
    summary = synthesize(root, seed=0, max_side=96, max_sources=4, progress=False)
    with open(summary.csv_path, newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: (float(r["mos"]), r["path"]))
    picks = np.linspace(0, len(rows) - 1, 32).round().astype(int)
    chosen = [rows[i] for i in picks]
    images = [Image.open(Path(root) / r["path"]).convert("RGB") for r in chosen]
    return images, np.array([float(r["mos"]) for r in chosen], dtype=np.float32)
