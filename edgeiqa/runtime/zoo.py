"""Models that ship inside the package: ``Predictor.load()``, ``edgeiqa predict photo.jpg``, ``edgeiqa models``.

Each bundled model is one folder under the zoo root (``edgeiqa/zoo/<name>/``, installed as package data)::

    card.json                     what it is, what it was trained on, how well and how fast it measured
    <artifact>.onnx (+ .json)     the exported artifact and its manifest: what the runtime runs
    checkpoint/model.safetensors  the score-calibrated student at half precision (``edgeiqa export NAME``)
    checkpoint/state.json         its contract, score map and sha256, as ``load_model`` reads it
    <notice file>                 the training data's licence notice (LIVE-C's must travel with its weights)

A folder counts as a bundled model only when its ``card.json`` names files that are all there: the
registry lists real models or nothing, never a placeholder. ``studies/bundle_model.py`` writes folders
(into a staging folder first, renamed when complete). ``EDGEIQA_ZOO`` (or ``root=``) points the
registry at another folder, which is how tests bundle a tiny model without touching the package.
Torch-free, like the rest of the runtime.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.manifest import manifest_path_for, sha256_file
from edgeiqa.runtime.runners import claiming_backend, registered

# The model `edgeiqa predict photo.jpg` and `Predictor.load()` use. Defined here and nowhere else.
DEFAULT_MODEL = "eqcnet_lite0_livec"
ZOO_ENV = "EDGEIQA_ZOO"
CARD_FILE = "card.json"
CARD_SCHEMA = "edgeiqa.card/1"
CHECKPOINT_FOLDER = "checkpoint"
NO_MODEL = "no bundled model in this install; train one (edgeiqa quickstart) or pass an artifact"
# A bundle name is also a CLI argument beside image paths: no separators, no dots that read as suffixes.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class NoBundledModel(ConfigError):
    """The install holds no bundled model (or not the one asked for)."""


@dataclass(frozen=True)
class BundledModel:
    """One bundled model: its folder and its card (see the module docstring for the layout)."""

    name: str
    folder: Path
    card: dict[str, Any]

    @property
    def artifact(self) -> Path:
        """The exported artifact the runtime runs (its manifest sits beside it)."""
        return self.folder / self.card["files"]["artifact"]

    @property
    def checkpoint(self) -> Path:
        """The half-precision checkpoint folder (what ``edgeiqa export NAME`` exports)."""
        return self.folder / self.card["files"]["checkpoint"]

    @property
    def notice(self) -> Path:
        """The training data's licence notice, shipped beside the weights."""
        return self.folder / self.card["files"]["notice"]

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_MODEL

    def verify(self) -> None:
        """Fail closed when a file differs from the sha256 the card recorded when it was bundled."""
        for key, path in (("artifact", self.artifact), ("notice", self.notice)):
            recorded = self.card.get("sha256", {}).get(key)
            if recorded != sha256_file(path):
                raise ConfigError(
                    f"{path}: sha256 differs from the one {self.folder / CARD_FILE} recorded "
                    "(a changed or replaced file in a bundled model); reinstall edgeiqa"
                )

    def summary_line(self) -> str:
        """One line for ``edgeiqa models``: name, what it is, cost at 4K, measured quality, data licence."""
        card = self.card
        model = card.get("model", {})
        artifact = card.get("artifact", {})
        parts = [
            f"{self.name}{' (default)' if self.is_default else ''}",
            card.get("summary", ""),
            f"{model.get('gmacs_4k', float('nan')):.3g} GMACs at 3840x2160",
            f"{model.get('params', 0) / 1e6:.2f} M params",
            quality_phrase(card.get("quality", {})),
            f"{artifact.get('format', '?')} {artifact.get('precision', '?')}",
            f"data: {card.get('training_data', {}).get('licence', 'see card')}",
        ]
        return " | ".join(p for p in parts if p)


def quality_phrase(quality: dict[str, Any]) -> str:
    """The headline quality: cross-validated SRCC when measured, else the held-out split's."""
    cv = quality.get("cross_validation")
    if cv:
        low, high = cv["srcc_ci95"]
        return f"SRCC {cv['srcc_mean']:.3f} ± {cv['srcc_sd']:.3f} [{low:.3f}, {high:.3f}] ({cv['folds']}-fold CV)"
    held = quality.get("held_out")
    if held:
        low, high = held.get("srcc_ci95") or (float("nan"), float("nan"))
        return f"SRCC {held['srcc']:.3f} [{low:.3f}, {high:.3f}] on {held['n']} {held['split']} photos"
    return "quality not measured"


def zoo_root(root: str | os.PathLike | None = None) -> Path:
    """Where bundled models live: ``root``, else ``$EDGEIQA_ZOO``, else the package's ``edgeiqa/zoo``."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ZOO_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1] / "zoo"


def _read(folder: Path) -> BundledModel | None:
    """The model in ``folder``, or None when it is not a complete bundle (no card, a staging folder)."""
    card_path = folder / CARD_FILE
    if folder.name.startswith(".") or not card_path.is_file():
        return None
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{card_path}: cannot read the model card ({exc})") from exc
    if not isinstance(card, dict) or card.get("schema") != CARD_SCHEMA or card.get("name") != folder.name:
        raise ConfigError(f"{card_path}: not an {CARD_SCHEMA} card for a model named {folder.name!r}")
    model = BundledModel(folder.name, folder, card)
    files = card.get("files") or {}
    for key in ("artifact", "checkpoint", "notice"):
        if key not in files or not (folder / files[key]).exists():
            raise ConfigError(f"{card_path}: files.{key} {files.get(key)!r} is missing from {folder}")
    if not manifest_path_for(model.artifact).is_file():
        raise ConfigError(f"{model.artifact}: the bundled artifact has no manifest beside it")
    return model


def list_bundled(root: str | os.PathLike | None = None) -> list[BundledModel]:
    """Every bundled model, by name; empty when none is bundled (a fresh install before the first one)."""
    folder = zoo_root(root)
    if not folder.is_dir():
        return []
    found = (_read(child) for child in sorted(folder.iterdir()) if child.is_dir())
    return [model for model in found if model is not None]


def bundled(name: str | None = None, root: str | os.PathLike | None = None) -> BundledModel:
    """The bundled model called ``name`` (default: :data:`DEFAULT_MODEL`); one-line error when absent."""
    models = {m.name: m for m in list_bundled(root)}
    wanted = name or DEFAULT_MODEL
    if not models:
        raise NoBundledModel(NO_MODEL)
    if wanted not in models:
        what = "the default model" if name is None else "no bundled model named"
        raise NoBundledModel(f"{what} {wanted!r} is not in this install (bundled: {', '.join(models)})")
    return models[wanted]


def artifact_suffixes() -> tuple[str, ...]:
    """File suffixes of every format a registered backend runs, plus the manifest's ``.json``."""
    return (".json", *dict.fromkeys(s for b in registered() for s in b.suffixes))


def names_a_model(arg: str | os.PathLike) -> bool:
    """The rule that tells a model argument from an image (``edgeiqa predict [MODEL] IMAGE...``).

    A model is: a path with an artifact suffix (``.onnx``, ``.xml``, ``.tflite``, a ``.json`` manifest,
    ...), present or not, so a mistyped artifact is reported missing instead of being scored as a photo;
    an existing path with a manifest beside it (a ``.mlpackage``) or that a backend claims (a checkpoint
    folder); a bundled model's name when no file of that name exists. Anything else is an image or a
    folder of images, and with no model among the arguments the bundled default scores them.
    """
    path = Path(arg)
    if path.suffix.lower() in artifact_suffixes():
        return True
    if path.exists():
        return manifest_path_for(path).exists() or claiming_backend(path) is not None
    return str(arg) in {m.name for m in list_bundled()}


def split_model_argument(args: Sequence[str], listed: bool = False) -> tuple[str | None, list[str]]:
    """``[MODEL] IMAGE...`` as (model or None for the default, images), by :func:`names_a_model`'s rule;
    ``listed``: images also come from elsewhere (``--list``), so a model may stand alone."""
    if not args or not names_a_model(args[0]):
        return None, list(args)
    if len(args) == 1 and not listed:
        raise ConfigError(f"{args[0]}: names a model, but no image files or folders follow it")
    return args[0], list(args[1:])


def bundled_run_line(model_arg: str | None, info: dict[str, Any]) -> str | None:
    """``scored with bundled model NAME (onnx fp32 on onnxruntime)`` when a bundled model ran, else None."""
    if model_arg is not None and Path(model_arg).exists():
        return None
    name = model_arg or DEFAULT_MODEL
    if name not in {m.name for m in list_bundled()}:
        return None
    backend = info.get("runner", {}).get("backend", "?")
    return f"scored with bundled model {name} ({info.get('format')} {info.get('precision')} on {backend})"


def resolve_model(arg: str | os.PathLike | None) -> Path:
    """What ``Predictor.load`` runs: ``None`` is the default model, an existing path is itself, a bare
    name that is no file is a bundled model's artifact; anything else is returned for the loader to report.
    """
    if arg is None:
        return _checked(bundled(None)).artifact
    path = Path(arg)
    text = str(arg)
    if path.exists() or not NAME_PATTERN.match(text):
        return path
    return _checked(bundled(text)).artifact


def resolve_checkpoint_name(arg: str | os.PathLike) -> Path:
    """What ``edgeiqa export NAME`` exports: a bundled model's checkpoint folder, or the path as given."""
    path = Path(arg)
    if path.exists() or not NAME_PATTERN.match(str(arg)):
        return path
    return _checked(bundled(str(arg))).checkpoint


def bundled_owner(path: str | os.PathLike) -> BundledModel | None:
    """The bundled model a file or folder belongs to (an export of ``NAME`` reads its checkpoint), or None."""
    resolved = Path(path).resolve()
    for model in list_bundled():
        if resolved == model.folder.resolve() or model.folder.resolve() in resolved.parents:
            return model
    return None


def _checked(model: BundledModel) -> BundledModel:
    model.verify()
    return model
