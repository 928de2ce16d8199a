"""``edgeiqa quickstart``: the toolkit's main job on the embedded data, from nothing to a report.

The quickstart is ``edgeiqa run`` on the packaged ``configs/quickstart.yaml`` plus the one thing that
is its own: it first generates the embedded dataset (``<out>/data/``, resumable: a present ``mos.csv``
means a complete dataset) and points ``data.root`` at it. Everything else (models, stages, the
artifacts exported, how they are benchmarked) is in the preset; the experiment runs in ``<out>/run/``
(see :mod:`edgeiqa.pipeline` for its steps and folders).
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

from edgeiqa.errors import EdgeIQAError
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.pipeline import ExperimentResult, Steps, run_experiment

PRESET = "quickstart.yaml"


def preset_path(name: str) -> Path:
    """A packaged experiment preset (``edgeiqa/presets/NAME``; the repo's ``configs/`` links there)."""
    path = Path(str(resources.files("edgeiqa") / "presets" / name))
    if not path.exists():
        raise EdgeIQAError(f"no preset {name!r} in {path.parent}")
    return path


def _dataset(out: Path, seed: int, quiet: bool) -> Path:
    from edgeiqa.data.synth import synthesize

    csv_path = out / "data" / "mos.csv"
    if csv_path.exists():
        return csv_path  # generation is atomic: a present mos.csv means a complete dataset
    return synthesize(out / "data", seed=seed, max_side=256, progress=not quiet).csv_path


def run_quickstart(out: Path | str = "runs/quickstart", seed: int = 0, quiet: bool = False) -> ExperimentResult:
    """The preset on freshly generated data; ``out`` and ``seed`` are what ``edgeiqa run``'s ``--out``
    and ``--seed`` are (the experiment's folder is ``<out>/run``). ``result.out`` is ``out``."""
    out = Path(out)
    steps = Steps(quiet)
    csv_path = steps("generate the embedded dataset", lambda: _dataset(out, seed, quiet))
    cfg = ExperimentConfig.load(preset_path(PRESET))
    cfg.out, cfg.seed, cfg.data.root = str(out / "run"), seed, str(csv_path)
    return dataclasses.replace(run_experiment(cfg, quiet, steps=steps), out=out)
