"""Checkpoints: safetensors weights + a JSON of everything else, written so a kill never corrupts one.

Layout of a run's stage folder::

    <stage>/epoch_0003/model.safetensors     weights (what export and the runtime read)
    <stage>/epoch_0003/optimizer.safetensors optimizer tensors, flattened (resume only)
    <stage>/epoch_0003/state.json            config, contract, stage, epoch, metrics, RNG, sha256 of both
    <stage>/last.json                        {"dir": "epoch_0003"}: replaced atomically after the folder is complete
    <stage>/best.json                        same for the best validation epoch

A checkpoint folder is written as ``epoch_0003.tmp`` and renamed when complete, so a process killed
mid-write leaves only a ``.tmp`` folder, which :func:`latest_checkpoint` ignores and removes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.fileio import atomic_write_text
from edgeiqa.runtime.manifest import sha256_file

KEEP_LAST = 2


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": repr(random.getstate()),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state().tolist(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    import ast

    random.setstate(ast.literal_eval(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, slot in sd["state"].items():
        for key, value in slot.items():
            if torch.is_tensor(value):
                tensors[f"{pid}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split("/", 1)
        state.setdefault(int(pid), {})[key] = value
    for pid, slot in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(slot)
    return {"state": state, "param_groups": meta["param_groups"]}


@dataclass
class Checkpoint:
    folder: Path
    state: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])

    def model_state(self) -> dict[str, torch.Tensor]:
        return load_file(self.folder / "model.safetensors")

    def optimizer_state(self) -> dict[str, Any] | None:
        path = self.folder / "optimizer.safetensors"
        if not path.exists():
            return None
        return _unflatten_optimizer(load_file(path), self.state["optimizer"])


def save_checkpoint(
    stage_dir: Path,
    epoch: int,
    model: torch.nn.Module,
    state: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    is_best: bool = False,
) -> Path:
    """Write epoch ``epoch`` atomically and point ``last.json`` (and ``best.json``) at it."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    name = f"epoch_{epoch:04d}"
    tmp = stage_dir / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # clone(): safetensors refuses tensors that share memory (a student whose two views share one backbone).
    weights = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"))
    full_state = dict(state, epoch=epoch, rng=rng_state(), sha256={"model": sha256_file(tmp / "model.safetensors")})
    if optimizer is not None:
        tensors, meta = _flatten_optimizer(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        full_state["optimizer"] = meta
    atomic_write_text(tmp / "state.json", json.dumps(full_state, indent=1, default=str))
    final = stage_dir / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_text(stage_dir / "last.json", json.dumps({"dir": name}))
    if is_best:
        atomic_write_text(stage_dir / "best.json", json.dumps({"dir": name}))
    _prune(stage_dir)
    return final


def _pointed(stage_dir: Path, pointer: str) -> str | None:
    path = stage_dir / pointer
    return json.loads(path.read_text())["dir"] if path.exists() else None


def _prune(stage_dir: Path) -> None:
    keep = {_pointed(stage_dir, "last.json"), _pointed(stage_dir, "best.json")}
    epochs = sorted(p for p in stage_dir.glob("epoch_*") if p.is_dir() and not p.name.endswith(".tmp"))
    keep.update(p.name for p in epochs[-KEEP_LAST:])
    for folder in epochs:
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def read_checkpoint(folder: Path, verify: bool = True) -> Checkpoint:
    """Read one checkpoint folder; the weights must match the sha256 in state.json unless ``verify=False``."""
    state_path = folder / "state.json"
    if not state_path.exists():
        raise ConfigError(f"{folder}: not a checkpoint folder (no state.json)")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{state_path}: cannot read checkpoint state ({exc})") from exc
    if not isinstance(state, dict):
        raise ConfigError(f"{state_path}: checkpoint state is not a JSON object")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{folder}: checkpoint has no model.safetensors")
    if verify:
        recorded = (state.get("sha256") or {}).get("model")
        actual = sha256_file(weights)
        if recorded != actual:
            raise ConfigError(
                f"{weights}: sha256 {actual} differs from {recorded} recorded in state.json "
                "(corrupt or replaced checkpoint); pass --no-verify to load it anyway"
            )
    return Checkpoint(folder, state)


def latest_checkpoint(stage_dir: Path, which: str = "last", verify: bool = True) -> Checkpoint | None:
    """The checkpoint ``last.json`` (or ``best.json``) points at; half-written ``.tmp`` folders are removed."""
    if not stage_dir.exists():
        return None
    for tmp in stage_dir.glob("*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()
    name = _pointed(stage_dir, f"{which}.json")
    return read_checkpoint(stage_dir / name, verify) if name else None


def resolve_checkpoint(path: Path | str, verify: bool = True) -> Checkpoint:
    """A checkpoint folder, a stage folder (its best, else last) or a run folder's final stage."""
    path = Path(path)
    if (path / "state.json").exists():
        return read_checkpoint(path, verify)
    for which in ("best", "last"):
        if (path / f"{which}.json").exists():
            found = latest_checkpoint(path, which, verify)
            if found is not None:
                return found
    final = path / "final"
    if final.exists():
        return resolve_checkpoint(final, verify)
    raise EdgeIQAError(f"{path}: no checkpoint found (expected state.json, best.json/last.json or final/)")
