"""Bundle a trained run's student into the package: one command, from ``student/final`` to ``edgeiqa/zoo/NAME``.

    python studies/bundle_model.py RUN_FOLDER --name NAME --card card_inputs.json [--zoo DIR]

Steps, each of which stops the bundling with one line when it fails (nothing is installed then):

1. the run's ``student/final`` checkpoint is written at half precision (``checkpoint/``: float16
   tensors; the score calibration's few numbers stay float32, since they map raw outputs a few
   thousandths apart onto MOS), and its scores are compared with the float32 source on the run's
   validation photos, held to the FP16 parity limits (rank agreement, ``--min-agreement``);
2. that half-precision checkpoint is exported through ``export_artifact`` (the normal, parity-gated
   path) as ONNX, trying FP32, then FP16, then INT8 (U8S8, calibrated on the run's training photos),
   and keeping the most faithful one that passes its gate and fits the size budget (``--precision``
   forces one);
3. params and GMACs at 3840x2160 are counted on the model, the data licence notice is copied, and
   ``card.json`` is assembled from the run (``summary.json``, ``config.yaml``), the result files the
   card inputs name, ``git rev-parse HEAD`` and a sha256 over the training data listing
   (``studies/model_card.py`` says what the inputs hold);
4. the whole zoo must stay within ``--budget-mb`` (20 MB: what the package may grow by), then the
   staging folder is renamed into place, and the model is scored once through ``Predictor.load(NAME)``.

Afterwards: ``python studies/make_models_page.py`` rewrites ``docs/models.md`` from the cards. Checks that
measure the bundled model itself (``studies/uhd_check.py``, ``studies/degrade_check.py`` on its name) can
only run after it is installed: add their files to the card inputs and run again with ``--card-only``,
which rewrites ``card.json`` and leaves the weights and artifact as they are.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.fileio import atomic_write_text
from edgeiqa.runtime.manifest import sha256_file
from edgeiqa.runtime.zoo import CARD_FILE, CHECKPOINT_FOLDER, NAME_PATTERN, list_bundled, zoo_root

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "fp16", "int8")  # most faithful first: the first that passes and fits is kept
BUDGET_MB = 20.0
# The score calibration's tensors: a handful of numbers, kept float32 (see step 1 above).
KEEP_FLOAT32 = ("calibration.",)


def _card_module():
    """``studies/model_card.py`` (the studies folder is not a package: load it by path)."""
    spec = importlib.util.spec_from_file_location("model_card", Path(__file__).with_name("model_card.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_half_checkpoint(source: Path, dest: Path) -> dict[str, Any]:
    """``source``'s weights as float16 (see :data:`KEEP_FLOAT32`) + its state.json with a new sha256."""
    import torch
    from safetensors.torch import load_file, save_file

    from edgeiqa.distill.checkpoint import resolve_checkpoint

    ckpt = resolve_checkpoint(source)
    tensors = load_file(ckpt.folder / "model.safetensors")
    half = {}
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not key.startswith(KEEP_FLOAT32):
            if tensor.abs().max().item() > torch.finfo(torch.float16).max:
                raise ConfigError(f"{ckpt.folder}: tensor {key!r} exceeds the float16 range; cannot bundle at half")
            tensor = tensor.to(torch.float16)
        half[key] = tensor.contiguous()
    dest.mkdir(parents=True)
    save_file(half, str(dest / "model.safetensors"))
    # rng and optimizer state only resume training; a bundled checkpoint is read, never resumed.
    state = {k: v for k, v in ckpt.state.items() if k not in ("rng", "optimizer")}
    source_sha = state.get("sha256", {}).get("model")
    state["sha256"] = {"model": sha256_file(dest / "model.safetensors")}
    state["bundled_from"] = {"sha256": source_sha, "dtype": "float16", "float32_kept": list(KEEP_FLOAT32)}
    atomic_write_text(dest / "state.json", json.dumps(state, indent=1))
    return {
        "folder": CHECKPOINT_FOLDER,
        "dtype": "float16",
        "sha256": state["sha256"]["model"],
        "source_sha256": source_sha,
    }


def torch_scores(checkpoint: Path, paths: tuple[str, ...]) -> np.ndarray:
    """MOS-scale scores of a checkpoint in torch (float32 compute), on the runtime's own preprocessing."""
    import torch

    from edgeiqa.export.images import iter_feeds
    from edgeiqa.export.source import load_export_source

    src = load_export_source(checkpoint)
    out = []
    with torch.no_grad():
        for feed in iter_feeds(paths, src.contract, batch_size=8):
            args = [torch.from_numpy(feed[name]) for name in src.input_names]
            out.append(src.model(*args).reshape(-1).numpy())
    return np.concatenate(out).astype(np.float64)


def half_fidelity(source: Path, half: Path, paths: tuple[str, ...], min_agreement: float) -> dict[str, Any]:
    """How the half-precision checkpoint scores against its float32 source; refused below ``min_agreement``."""
    from edgeiqa.metrics import srcc

    full, reduced = torch_scores(source, paths), torch_scores(half, paths)
    diff = np.abs(full - reduced)
    record = {
        "images": len(paths),
        "rank_agreement": float(srcc(reduced, full)),
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "min_agreement": min_agreement,
    }
    if not record["rank_agreement"] >= min_agreement:
        raise ConfigError(
            f"{half}: float16 weights rank {len(paths)} photos at SRCC {record['rank_agreement']:.4f} against "
            f"the float32 source, below {min_agreement}; bundle it at full precision instead"
        )
    return record


def image_sets(run: Path):
    """INT8 calibration photos (the run's training split) and parity photos (its validation split)."""
    from edgeiqa.distill.runs import load_splits
    from edgeiqa.experiment import ExperimentConfig
    from edgeiqa.export.images import ImageSet

    cfg = ExperimentConfig.load(run / "config.yaml")
    table, section = load_splits(cfg.data).table, cfg.export
    calib = ImageSet.from_table(table, section.calibration.split, n=section.calibration.n_images)
    return calib, ImageSet.validation_from_table(table, section.validation_split), section.calibration.settings()


def export_within_budget(staging: Path, precisions: tuple[str, ...], room: int, run: Path) -> dict[str, Any]:
    """The first ONNX precision whose artifact passes its parity gate and fits ``room`` bytes."""
    from edgeiqa.export.exporter import export_artifact
    from edgeiqa.export.options import ExportOptions

    calib, val, int8 = image_sets(run)
    fixed = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
    tried = []
    for precision in precisions:
        result = export_artifact(
            staging / CHECKPOINT_FOLDER, "onnx", precision, staging, calib, val, ExportOptions(int8=int8), False
        )
        size = result.size_bytes + result.manifest_path.stat().st_size
        verdict = result.verdict.value if hasattr(result.verdict, "value") else str(result.verdict)
        tried.append({"precision": precision, "verdict": verdict, "bytes": size})
        if verdict == "passed" and fixed + size <= room:
            gate = result.parity
            return {
                "file": result.artifact.name,
                "format": "onnx",
                "precision": precision,
                "size_bytes": size,
                "parity": gate.to_dict() if gate is not None else None,
                "chosen_from": tried,
                "rule": "the most faithful of fp32, fp16, int8 that passes its parity gate and fits the budget",
            }
        result.artifact.unlink()
        result.manifest_path.unlink()
    raise ConfigError(f"{staging}: no ONNX precision passed its gate within the size budget (tried {tried})")


def model_facts(checkpoint: Path) -> dict[str, Any]:
    """Registry name, params and GMACs at 3840x2160 of the bundled checkpoint's model."""
    from edgeiqa.distill.saved_model import load_model
    from edgeiqa.models.info import model_info

    loaded = load_model(checkpoint)
    info = model_info(getattr(loaded.model, "model", loaded.model), (2160, 3840))
    return {"registry": loaded.name, "params": info.params, "gmacs_4k": info.gmacs, "input_4k": "3840x2160"}


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def others_bytes(zoo: Path, name: str) -> int:
    """What the other bundled models already take (the one being replaced does not count)."""
    return sum(folder_bytes(m.folder) for m in list_bundled(zoo) if m.name != name)


def bundle(
    run: Path,
    name: str,
    card_inputs: Path,
    zoo: Path,
    precisions: tuple[str, ...] = PRECISIONS,
    budget_mb: float = BUDGET_MB,
    replace: bool = False,
    min_agreement: float | None = None,
) -> Path:
    """Write ``zoo/name`` from ``run`` (see the module docstring); returns the installed folder."""
    from edgeiqa.export.options import Tolerances

    cards = _card_module()
    _check_arguments(run, name, zoo, replace)
    inputs = cards.read_inputs(card_inputs)
    room = int(budget_mb * 1e6) - others_bytes(zoo, name)
    staging = zoo / f".{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        checkpoint = write_half_checkpoint(run / "student" / "final", staging / CHECKPOINT_FOLDER)
        _check_budget(staging, room, budget_mb)  # before the exports: the weights alone may not fit
        _, val, _ = image_sets(run)
        limit = Tolerances().fp16_min_agreement if min_agreement is None else min_agreement
        checkpoint["vs_float32"] = half_fidelity(
            run / "student" / "final", staging / CHECKPOINT_FOLDER, val.paths, limit
        )
        notice = staging / Path(inputs["notice"]).name
        shutil.copyfile(inputs["notice"], notice)
        artifact = export_within_budget(staging, precisions, room, run)
        facts = {
            "model": model_facts(staging / CHECKPOINT_FOLDER),
            "artifact": artifact,
            "checkpoint": checkpoint,
            "files": {"artifact": artifact["file"], "checkpoint": CHECKPOINT_FOLDER, "notice": notice.name},
            "sha256": {"artifact": sha256_file(staging / artifact["file"]), "notice": sha256_file(notice)},
            "size_bytes": folder_bytes(staging),
            "state_provenance": json.loads((staging / CHECKPOINT_FOLDER / "state.json").read_text()).get("provenance"),
        }
        card = cards.build_card(name, inputs, run, facts, ROOT)
        atomic_write_text(staging / CARD_FILE, json.dumps(card, indent=1, default=str))
        _check_budget(staging, room, budget_mb)
        for path in staging.rglob("*"):  # safetensors writes 0600; installed package data must be readable
            path.chmod(0o755 if path.is_dir() else 0o644)
        return _install(staging, zoo / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def recard(run: Path, folder: Path, card_inputs: Path) -> Path:
    """Rewrite an installed bundle's ``card.json`` from new card inputs (checks measured on the bundled model
    itself, which exist only after bundling), keeping what the bundling measured; the weights stay as they are."""
    cards = _card_module()
    inputs = cards.read_inputs(card_inputs)
    old = json.loads((folder / CARD_FILE).read_text())
    if sha256_file(Path(inputs["notice"])) != old["sha256"]["notice"]:
        raise ConfigError(f"{inputs['notice']}: not the notice bundled in {folder}; bundle again with --replace")
    facts = {key: old[key] for key in ("model", "artifact", "checkpoint", "files", "sha256", "size_bytes")}
    facts["state_provenance"] = old["provenance"].get("checkpoint_provenance")
    card = cards.build_card(folder.name, inputs, run, facts, ROOT)
    card["provenance"]["git"] = old["provenance"]["git"]  # the commit the weights were bundled at
    atomic_write_text(folder / CARD_FILE, json.dumps(card, indent=1, default=str))
    (folder / CARD_FILE).chmod(0o644)
    return folder


def _check_arguments(run: Path, name: str, zoo: Path, replace: bool) -> None:
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"--name {name!r}: use lower-case letters, digits, '_' and '-' (it is a CLI argument)")
    for needed in ("summary.json", "config.yaml", "student/final"):
        if not (run / needed).exists():
            raise ConfigError(f"{run}: no {needed} (a finished, evaluated training run is needed)")
    if (zoo / name).exists() and not replace:
        raise ConfigError(f"{zoo / name}: already bundled; pass --replace to bundle it again")


def _check_budget(staging: Path, room: int, budget_mb: float) -> None:
    size = folder_bytes(staging)
    if size > room:
        raise ConfigError(
            f"{staging.name}: {size / 1e6:.2f} MB does not fit the {budget_mb:g} MB the zoo may take "
            f"({room / 1e6:.2f} MB left beside the other bundled models)"
        )


def _install(staging: Path, final: Path) -> Path:
    """Rename the complete staging folder into place: a reader sees the old model or the new one."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def smoke_score(folder: Path) -> float:
    """One shipped photo through ``Predictor`` on the bundled artifact: it loads, verifies and scores."""
    from edgeiqa.data.pristine import bundled_paths
    from edgeiqa.runtime.predictor import Predictor
    from edgeiqa.runtime.zoo import bundled

    model = bundled(folder.name, folder.parent)
    with Predictor.load(model.artifact) as predictor:
        return float(predictor(next(iter(bundled_paths().values())))[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="training run folder (student/final, summary.json, config.yaml)")
    parser.add_argument("--name", required=True, help="bundled model name (edgeiqa models, predict, export)")
    parser.add_argument("--card", required=True, type=Path, help="card_inputs.json (see studies/model_card.py)")
    parser.add_argument("--zoo", type=Path, help=f"zoo folder (default: $EDGEIQA_ZOO or {zoo_root()})")
    parser.add_argument("--precision", choices=PRECISIONS, help="force this ONNX precision (default: first that fits)")
    parser.add_argument("--budget-mb", type=float, default=BUDGET_MB, help="what the whole zoo may take (MB)")
    parser.add_argument("--min-agreement", type=float, help="float16 vs float32 rank agreement (default: FP16's)")
    parser.add_argument("--replace", action="store_true", help="replace a model already bundled under NAME")
    parser.add_argument("--card-only", action="store_true", help="only rewrite the installed bundle's card.json")
    args = parser.parse_args(argv)
    zoo = zoo_root(args.zoo)
    precisions = (args.precision,) if args.precision else PRECISIONS
    try:
        if args.card_only:
            if not (zoo / args.name / CARD_FILE).is_file():
                raise ConfigError(f"{zoo / args.name}: nothing bundled there to re-card")
            print(f"rewrote {recard(args.run, zoo / args.name, args.card) / CARD_FILE}")
            return 0
        folder = bundle(
            args.run, args.name, args.card, zoo, precisions, args.budget_mb, args.replace, args.min_agreement
        )
        card = json.loads((folder / CARD_FILE).read_text())
        size, precision = card["size_bytes"] / 1e6, card["artifact"]["precision"]
        print(
            f"bundled {args.name} -> {folder} ({size:.2f} MB, onnx {precision}); "
            f"one photo scores {smoke_score(folder):.3f}; now run: python studies/make_models_page.py"
        )
    except EdgeIQAError as exc:
        print(f"bundle_model: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
