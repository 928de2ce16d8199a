"""The torch ``Dataset`` over :class:`ImageRecord` s, built on the runtime's own preprocessing.

Pixels go through :func:`edgeiqa.runtime.preprocess.decode_image` and ``preprocess_image``, the very
functions the device runtime calls, so in evaluation mode an item's tensors equal what the runtime
feeds the exported model, bit for bit. Training mode adds only two things, both reproducible from
(seed, epoch, index): a horizontal flip of the decoded image and jittered fragment positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from edgeiqa.data.records import ImageRecord
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.preprocess import decode_views, preprocess_image


class IQAImageDataset(Dataset):
    """Items ``{"image": 3xHxW, "fragments": 3xFxF (when the contract has them), "mos": scalar, "index": int}``.

    Tensors have the contract's dtype (float32 by default). ``mos`` is float32; with
    ``normalize_mos`` it is mapped from ``mos_range`` to 0..1 (the range is required then). Decode
    failures raise :class:`~edgeiqa.errors.ImageDecodeError` naming the file.

    Call :meth:`set_epoch` before each epoch so training-mode jitter changes between epochs; with
    ``persistent_workers`` DataLoader workers keep their own copy of the dataset and would not see it.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        contract: PreprocessContract,
        train: bool = False,
        seed: int = 0,
        mos_range: tuple[float, float] | None = None,
        normalize_mos: bool = False,
        hflip: bool = True,
    ) -> None:
        if normalize_mos and mos_range is None:
            raise ValueError("normalize_mos=True needs mos_range (e.g. table.mos_range)")
        if mos_range is not None and not float(mos_range[0]) < float(mos_range[1]):
            raise ValueError(f"mos_range must be (low, high) with low < high, got {mos_range}")
        self.records = list(records)
        self.contract = contract
        self.train = train
        self.seed = int(seed)
        self.mos_range = (float(mos_range[0]), float(mos_range[1])) if mos_range is not None else None
        self.normalize_mos = normalize_mos
        self.hflip = hflip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws the next items use."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def item_rng(self, index: int) -> np.random.Generator:
        """The generator for one item's augmentation: a function of (seed, epoch, index) only, so the
        result does not depend on worker count, batch order or what was drawn before."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def target(self, index: int) -> float:
        """The item's score as returned in ``"mos"`` (normalised when ``normalize_mos``)."""
        mos = self.records[index].mos
        if self.normalize_mos and self.mos_range is not None:
            low, high = self.mos_range
            mos = (mos - low) / (high - low)
        return mos

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        if index < 0:
            index += len(self.records)
        if not 0 <= index < len(self.records):
            raise IndexError(f"index {index} out of range for {len(self.records)} records")
        img = decode_views(self.records[index].path, self.contract)  # a jpeg_regions contract: no full frame
        rng = None
        if self.train:
            rng = self.item_rng(index)
            # Drawn unconditionally so the fragment jitter that follows does not depend on hflip.
            flip = rng.random() < 0.5
            if self.hflip and flip:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        inputs = preprocess_image(img, self.contract, rng)
        item: dict[str, torch.Tensor | int] = {name: torch.from_numpy(arr) for name, arr in inputs.items()}
        item["mos"] = torch.tensor(self.target(index), dtype=torch.float32)
        item["index"] = index
        return item
