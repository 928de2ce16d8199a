"""What a format exporter hands back, the manifest's tensor specs, and atomic placement of artifacts.

Exporters write into a private work folder inside ``out_dir``; :func:`place` then moves every file
into ``out_dir`` with ``os.replace`` (same filesystem, so each move is atomic): a reader never sees a
half-written artifact, and a failed export leaves the previous artifact untouched.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.manifest import tensor_spec

SCORE_OUTPUT = "score"


@dataclass
class ExportedFiles:
    """An exporter's result: the artifact (file or folder) plus companions, all inside the work folder.

    ``files`` lists every path to move into ``out_dir`` (the artifact first; OpenVINO adds its
    ``.bin``). ``details`` is JSON for the manifest's ``extra.export``.
    """

    artifact: Path
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    details: dict[str, Any] = field(default_factory=dict)
    companions: tuple[Path, ...] = ()

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.artifact, *self.companions)


def input_specs(
    contract: PreprocessContract, image_hw: tuple[int, int] | None = None, batch: int | str = "batch"
) -> list[dict[str, Any]]:
    """Manifest ``inputs``: ``image`` [batch,3,height,width] (or a fixed H, W) and ``fragments`` [batch,3,F,F]."""
    height, width = image_hw if image_hw is not None else ("height", "width")
    specs = [tensor_spec("image", [batch, 3, height, width])]
    if contract.fragments is not None:
        mosaic = contract.fragments.mosaic_size
        specs.append(tensor_spec("fragments", [batch, 3, mosaic, mosaic]))
    return specs


def output_specs(batch: int | str = "batch") -> list[dict[str, Any]]:
    return [tensor_spec(SCORE_OUTPUT, [batch])]


def dynamic_axes(contract: PreprocessContract) -> dict[str, dict[int, str]]:
    """torch.onnx dynamic axes: batch/height/width on ``image``, batch on ``fragments`` and ``score``."""
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, SCORE_OUTPUT: {0: "batch"}}
    if contract.fragments is not None:
        axes["fragments"] = {0: "batch"}
    return axes


def companions_of(artifact: Path) -> tuple[Path, ...]:
    """Files that belong to an artifact besides itself: an OpenVINO ``.xml`` has its ``.bin``."""
    return (artifact.with_suffix(".bin"),) if artifact.suffix == ".xml" else ()


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file under a folder artifact."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def place(files: tuple[Path, ...], out_dir: Path) -> list[Path]:
    """Move ``files`` into ``out_dir`` under their own names; companions first, the artifact last.

    A folder artifact replacing an existing folder is swapped in by two renames (a folder cannot be
    ``os.replace``-d over a non-empty one), and the old one deleted afterwards.
    """
    placed = []
    for source in (*files[1:], files[0]):
        target = out_dir / source.name
        if source.is_dir() and target.exists():
            trash = out_dir / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(target, trash)
            os.replace(source, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(source, target)
        placed.append(target)
    return [placed[-1], *placed[:-1]]
