"""Image sets: INT8 calibration never reads the test split; feeds are the runtime's preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from export_helpers import tiny_contract, write_images

from edgeiqa.data.loaders import load_dataset
from edgeiqa.errors import ConfigError
from edgeiqa.export.images import ImageSet, iter_feeds, load_image_set, ort_calibration_reader
from edgeiqa.runtime.preprocess import preprocess


@pytest.fixture
def split_csv(tmp_path: Path) -> Path:
    """A generic-CSV dataset: 6 train, 3 val, 3 test images."""
    paths = write_images(tmp_path / "imgs", 12, seed=3)
    splits = ["train"] * 6 + ["val"] * 3 + ["test"] * 3
    lines = ["path,mos,split"] + [f"imgs/{p.name},{i},{s}" for i, (p, s) in enumerate(zip(paths, splits))]
    csv = tmp_path / "mos.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def test_calibration_refuses_the_test_split(split_csv: Path):
    table = load_dataset("csv", split_csv)
    with pytest.raises(ConfigError, match="must come from the train or val split, not 'test'"):
        ImageSet.from_table(table, "test")
    with pytest.raises(ConfigError, match="not 'test'"):
        load_image_set(split_csv, split="test")


def test_calibration_reader_never_sees_test_images(split_csv: Path):
    table = load_dataset("csv", split_csv)
    test_paths = {str(r.path) for r in table.split("test")}
    for split, expected in (("train", 6), ("val", 3)):
        images = load_image_set(split_csv, split=split, n=300)
        reader = ort_calibration_reader(images.paths, tiny_contract())
        fed = 0
        while (feed := reader.get_next()) is not None:
            fed += feed["image"].shape[0]
        assert fed == expected == len(reader.seen)
        assert not test_paths & set(reader.seen)
        assert set(reader.seen) == {str(r.path) for r in table.split(split)}


def test_choice_of_n_is_reproducible_and_described(split_csv: Path):
    first = load_image_set(split_csv, split="train", n=4, seed=7)
    again = load_image_set(split_csv, split="train", n=4, seed=7)
    other = load_image_set(split_csv, split="train", n=4, seed=8)
    assert first.paths == again.paths and len(first) == 4
    assert first.paths != other.paths
    assert first.describe() == {"source": split_csv.parent.name, "split": "train", "n": 4, "mos": True, "available": 6}


def test_validation_sets_keep_mos_and_folders_have_none(split_csv: Path, tmp_path: Path):
    val = load_image_set(split_csv, split=None, n=None, calibration=False)
    assert len(val) == 12 and val.mos == tuple(float(i) for i in range(12))
    folder = load_image_set(tmp_path / "imgs", n=5)
    assert len(folder) == 5 and folder.mos is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty: no image files found"):
        ImageSet.from_folder(tmp_path / "empty")


def test_feeds_are_the_runtime_preprocessing_batched(tmp_path: Path):
    paths = [str(p) for p in write_images(tmp_path, 5, seed=4)]
    contract = tiny_contract()
    batches = list(iter_feeds(paths, contract, batch_size=2))
    assert [b["image"].shape for b in batches] == [(2, 3, 32, 32), (2, 3, 32, 32), (1, 3, 32, 32)]
    assert batches[0]["fragments"].shape == (2, 3, 16, 16) and batches[0]["image"].dtype == np.float32
    np.testing.assert_array_equal(batches[1]["image"][1], preprocess(paths[3], contract)["image"])
    padded = list(iter_feeds(paths, contract, batch_size=2, fixed_batch=True))
    assert padded[-1]["image"].shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(padded[-1]["image"][0], padded[-1]["image"][1])


def test_aspect_preserving_contracts_are_not_stacked_across_shapes(tmp_path: Path):
    paths = [str(p) for p in write_images(tmp_path, 4, seed=5)]  # alternating portrait / landscape
    contract = tiny_contract(size_policy="short_side", size_multiple=8)
    shapes = [b["image"].shape for b in iter_feeds(paths, contract, batch_size=8)]
    assert shapes == [(1, 3, 40, 32), (1, 3, 32, 40), (1, 3, 40, 32), (1, 3, 32, 40)]
