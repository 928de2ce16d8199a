"""IQAImageDataset: identical to the runtime's preprocessing in eval mode, reproducible jitter in training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from edgeiqa.data.records import ImageRecord
from edgeiqa.data.torch_dataset import IQAImageDataset
from edgeiqa.errors import ImageDecodeError
from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract
from edgeiqa.runtime.preprocess import decode_image, preprocess, preprocess_image

# Small enough to be fast; the 64x48 images are larger than the 2x2 mosaic of 12 px patches, so
# fragment positions have room to move.
CONTRACT = PreprocessContract(working_size=32, fragments=FragmentSpec(grid=2, patch=12))


def noisy_image(path: Path, seed: int, size=(64, 48)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def records(tmp_path) -> list[ImageRecord]:
    names = ["a.png", "b.jpg", "c.png", "d.jpg"]
    return [ImageRecord(noisy_image(tmp_path / n, i), 10.0 * (i + 1)) for i, n in enumerate(names)]


REGIONS = dataclasses.replace(CONTRACT, jpeg_regions=True)


@pytest.mark.parametrize("contract", [CONTRACT, PreprocessContract(working_size=32, fragments=None), REGIONS])
def test_eval_items_equal_the_runtime_preprocess(records, contract):
    dataset = IQAImageDataset(records, contract)
    for index, record in enumerate(records):
        item = dataset[index]
        expected = preprocess(record.path, contract)
        assert set(item) == set(expected) | {"mos", "index"}
        for name, array in expected.items():
            assert item[name].dtype == torch.float32 and torch.equal(item[name], torch.from_numpy(array))
        assert item["image"].shape == (3, 32, 32)
        assert item["mos"].dtype == torch.float32 and item["mos"].shape == () and item["mos"].item() == record.mos
        assert item["index"] == index
    assert len(dataset) == 4 and torch.equal(dataset[-1]["image"], dataset[3]["image"])


def test_train_jitter_is_reproducible_for_seed_and_epoch(records):
    def fragments(seed: int, epoch: int) -> list[torch.Tensor]:
        dataset = IQAImageDataset(records, CONTRACT, train=True, seed=seed, hflip=False)
        dataset.set_epoch(epoch)
        return [dataset[i]["fragments"] for i in range(len(records))]

    first = fragments(seed=1, epoch=0)
    assert all(torch.equal(a, b) for a, b in zip(first, fragments(seed=1, epoch=0)))
    assert not all(torch.equal(a, b) for a, b in zip(first, fragments(seed=1, epoch=1)))
    assert not all(torch.equal(a, b) for a, b in zip(first, fragments(seed=2, epoch=0)))
    eval_set = IQAImageDataset(records, CONTRACT)
    assert not all(torch.equal(a, eval_set[i]["fragments"]) for i, a in enumerate(first))
    # the draw depends on (seed, epoch, index) only, not on the order items are read in
    dataset = IQAImageDataset(records, CONTRACT, train=True, seed=1, hflip=False)
    assert torch.equal(dataset[3]["fragments"], first[3]) and torch.equal(dataset[0]["fragments"], first[0])


def test_train_hflip_mirrors_both_views_with_the_same_draw(records):
    dataset = IQAImageDataset(records, CONTRACT, train=True, seed=5, hflip=True)
    flipped = 0
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for index, record in enumerate(records):
            rng = dataset.item_rng(index)
            img = decode_image(record.path, CONTRACT)
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                flipped += 1
            expected = preprocess_image(img, CONTRACT, rng)
            item = dataset[index]
            assert torch.equal(item["image"], torch.from_numpy(expected["image"]))
            assert torch.equal(item["fragments"], torch.from_numpy(expected["fragments"]))
    assert 0 < flipped < 16  # both branches were exercised
    no_flip = IQAImageDataset(records, CONTRACT, train=True, seed=5, hflip=False)
    assert all(
        torch.equal(no_flip[i]["image"], torch.from_numpy(preprocess(r.path, CONTRACT)["image"]))
        for i, r in enumerate(records)
    )


def test_normalized_mos(records):
    dataset = IQAImageDataset(records, CONTRACT, mos_range=(0.0, 50.0), normalize_mos=True)
    assert [dataset[i]["mos"].item() for i in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    with pytest.raises(ValueError, match="normalize_mos=True needs mos_range"):
        IQAImageDataset(records, CONTRACT, normalize_mos=True)


def test_dataloader_batches(records):
    loader = DataLoader(IQAImageDataset(records, CONTRACT), batch_size=2, shuffle=False)
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["image"].shape == (2, 3, 32, 32) and batches[0]["fragments"].shape == (2, 3, 24, 24)
    assert batches[1]["mos"].tolist() == [30.0, 40.0] and batches[1]["index"].tolist() == [2, 3]


def test_decode_errors_name_the_file(tmp_path, records):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    dataset = IQAImageDataset(records + [ImageRecord(broken, 1.0)], CONTRACT)
    with pytest.raises(ImageDecodeError, match=str(broken)):
        dataset[4]
    with pytest.raises(IndexError):
        dataset[5]


def test_jpeg_regions_training_views_equal_the_runtime_and_jitter_like_full_frames(records):
    """The new decode path in training: eval items are the runtime's own arrays (above); in training the
    flipped, jittered fragments equal those cut from a flipped full frame, and the JPEGs did take the
    region path (a PNG keeps today's full-frame path)."""
    from edgeiqa.runtime.jpeg_views import JpegViews
    from edgeiqa.runtime.preprocess import decode_views

    assert isinstance(decode_views(records[1].path, REGIONS), JpegViews)
    assert isinstance(decode_views(records[0].path, REGIONS), Image.Image)
    regions = IQAImageDataset(records, REGIONS, train=True, seed=4, hflip=True)
    today = IQAImageDataset(records, CONTRACT, train=True, seed=4, hflip=True)
    for index in range(len(records)):
        assert torch.equal(regions[index]["fragments"], today[index]["fragments"])
