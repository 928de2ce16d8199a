"""An ensemble teacher: several trained members and test-time views, scored as one.

The teacher runs once per image, offline, so it may be as slow as it likes: members of different
backbones, working sizes and seeds, each looking at the image as trained and (``tta``) mirrored. Every
member outputs the MOS normalised to 0..1 (the scale teachers are trained on), so the ensemble's score
is the plain mean over members and views, and the spread (their standard deviation) says per image how
much the members disagree.

Layout: ``<run>/teacher/members/<k>-<model>/`` (one checkpoint folder each, trained and resumed like a
single teacher) and ``<run>/teacher/ensemble.json`` (the member folders, the views, the MOS range).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgeiqa.data.records import ImageRecord
from edgeiqa.distill.modules import teacher_forward, to_device
from edgeiqa.distill.saved_model import LoadedModel, load_model
from edgeiqa.distill.views_data import ViewsDataset, collate_views
from edgeiqa.errors import ConfigError
from edgeiqa.fileio import atomic_write_text, read_json_file

ENSEMBLE_FILE = "ensemble.json"
MEMBERS_FOLDER = "members"
TTA_VIEWS = ("identity", "flip")


def is_ensemble(folder: Path) -> bool:
    return (Path(folder) / ENSEMBLE_FILE).is_file()


def write_ensemble(folder: Path, members: Sequence[Path], tta: Sequence[str], mos_range: tuple[float, float]) -> Path:
    unknown = sorted(set(tta) - set(TTA_VIEWS))
    if unknown or not tta:
        raise ConfigError(f"teacher.tta: unknown view(s) {unknown or '(none given)'}; views are {list(TTA_VIEWS)}")
    record = {
        "members": [str(Path(m).relative_to(folder)) for m in members],
        "tta": list(tta),
        "mos_range": list(mos_range),
    }
    atomic_write_text(Path(folder) / ENSEMBLE_FILE, json.dumps(record, indent=1))
    return Path(folder) / ENSEMBLE_FILE


@dataclass
class EnsembleTeacher:
    """Loaded members + views. :meth:`score` gives (mean, spread, per-member means), normalised 0..1."""

    folder: Path
    members: list[LoadedModel]
    tta: tuple[str, ...]
    mos_range: tuple[float, float]
    # One per member: its folder's name as ensemble.json lists it (a checkpoint's own folder is an
    # epoch_NNNN folder, the same for every member, so it cannot name one).
    member_names: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return self.member_names or [m.folder.name for m in self.members]

    def to_mos(self, scores: np.ndarray) -> np.ndarray:
        """Scores of :meth:`score` (normalised 0..1) on the MOS scale the teacher was trained on."""
        low, high = self.mos_range
        return scores * (high - low) + low

    def score(
        self, records: Sequence[ImageRecord], device: torch.device | str = "cpu", batch_size: int = 8, workers: int = 0
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        per_view: list[np.ndarray] = []
        per_member: dict[str, np.ndarray] = {}
        for name, member in zip(self.names, self.members):
            views = [_member_scores(member, records, view, device, batch_size, workers) for view in self.tta]
            per_member[name] = np.mean(views, axis=0)
            per_view += views
        stacked = np.stack(per_view)
        return stacked.mean(axis=0), stacked.std(axis=0), per_member


def _member_scores(
    member: LoadedModel,
    records: Sequence[ImageRecord],
    view: str,
    device: torch.device | str,
    batch_size: int,
    workers: int,
) -> np.ndarray:
    model = member.model.to(device)
    dataset = ViewsDataset(records, None, member.views, (0.0, 1.0), mirror=view == "flip")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_views, num_workers=workers)
    scores = []
    with torch.no_grad():
        for batch in loader:
            scores.append(teacher_forward(model, to_device(batch, torch.device(device))["teacher"]).float().cpu())
    return torch.cat(scores).numpy() if scores else np.zeros(0, dtype=np.float32)


def load_ensemble(folder: Path | str, verify: bool = True) -> EnsembleTeacher:
    """The ensemble in ``folder`` (``ensemble.json``), or a single teacher checkpoint as a one-member one."""
    folder = Path(folder)
    if not is_ensemble(folder):
        member = load_model(folder, verify=verify)
        if member.kind != "teacher":
            raise ConfigError(f"{folder}: not a teacher (a {member.kind} checkpoint)")
        return EnsembleTeacher(folder, [member], ("identity",), member.mos_range or (0.0, 1.0), [folder.name])
    record = read_json_file(folder / ENSEMBLE_FILE, "ensemble record", ConfigError)
    members, names = [], []
    for rel in record.get("members", []):
        path = (folder / rel).resolve()
        if folder.resolve() not in path.parents:
            raise ConfigError(f"{folder / ENSEMBLE_FILE}: member {rel!r} lies outside the teacher folder")
        members.append(load_model(path, verify=verify))
        names.append(Path(rel).name)
    if not members:
        raise ConfigError(f"{folder / ENSEMBLE_FILE}: lists no members")
    return EnsembleTeacher(
        folder, members, tuple(record.get("tta", ["identity"])), tuple(float(v) for v in record["mos_range"]), names
    )  # type: ignore[arg-type]
