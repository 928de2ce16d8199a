"""A bundled model's ``card.json``, assembled from what was measured: never typed in by hand.

``studies/bundle_model.py`` calls :func:`build_card`. What the card says comes from four places:

* the training run: ``summary.json`` (held-out quality with its bootstrap interval), ``config.yaml``
  (recorded whole, with its sha256), the final checkpoint's sha256;
* the model itself: params and GMACs at 3840x2160, the artifact's manifest (format, precision, parity);
* the repository and the data: ``git rev-parse HEAD`` (and whether the tree had uncommitted changes),
  a sha256 over the training data listing (every image's path under the data root, its MOS, its split and
  the sha256 of its bytes, sorted);
* ``card_inputs.json``, written by whoever bundles, with the words and the result files::

    {
      "summary": "one line: what the model is",
      "intended_use": "what it is for",
      "limitations": ["what it has never seen", "..."],
      "training_data": "which photos and labels it learned from",
      "licence": "one line for `edgeiqa models`, e.g. LIVE-C notice: use, copy, distribute with it",
      "notice": "path/to/LIVE_README.txt",
      "cross_validation": "studies/results/X.json",          (optional) {"folds": [{"srcc", "plcc"?, "ridge_srcc"?}]}
                                                             or a transfer_ladder.py --split-rule folds file
      "reproduction": "studies/results/R.json",             (optional) studies/reproduce_default.py output
      "uhd_check": {"file": "studies/results/Y.json", "model": "NAME"},   (optional) studies/uhd_check.py output
      "degrade_check": {"file": "studies/results/D.json", "model": "NAME"},  (optional) studies/degrade_check.py output
      "speed": ["studies/results/Z.json", ...]              (optional) edgeiqa bench result files
      "speed_note": "which photos, which settings"          (optional) one line shown under the speed table
    }

Relative paths are read from the current folder. A missing optional section is written as not measured;
a missing required one, or a result file of the wrong shape, stops the bundling with one line.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import subprocess
from pathlib import Path
from typing import Any

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.manifest import sha256_file

REQUIRED_TEXT = ("summary", "intended_use", "training_data", "licence", "notice")
UHD_SIZE = (2160, 3840)  # height, width: the cost every card quotes


def read_inputs(path: Path) -> dict[str, Any]:
    """``card_inputs.json``, checked: every required field present and of the right type."""
    try:
        inputs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the card inputs ({exc})") from exc
    if not isinstance(inputs, dict):
        raise ConfigError(f"{path}: the card inputs must be a JSON object")
    for key in REQUIRED_TEXT:
        if not isinstance(inputs.get(key), str) or not inputs[key].strip():
            raise ConfigError(f"{path}: key {key!r} must be a non-empty string")
    limits = inputs.get("limitations")
    if not isinstance(limits, list) or not limits or not all(isinstance(x, str) for x in limits):
        raise ConfigError(f"{path}: key 'limitations' must be a non-empty list of strings")
    if not Path(inputs["notice"]).is_file():
        raise ConfigError(f"{path}: notice file {inputs['notice']!r} not found (the data licence must travel)")
    return inputs


def _read_json(path: str | Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} results ({exc})") from exc


def _source(path: str | Path) -> dict[str, str]:
    return {"file": str(path), "sha256": sha256_file(Path(path))}


def cross_validation(path: str) -> dict[str, Any]:
    """Mean, sd and a t-interval of the mean over folds; how many folds beat the ridge floor."""
    from scipy import stats

    data = _read_json(path, "cross-validation")
    folds = data.get("folds") if "splits" not in data else ladder_folds(data, path)
    if not isinstance(folds, list) or len(folds) < 2 or not all(isinstance(f.get("srcc"), float) for f in folds):
        raise ConfigError(f"{path}: expected 'folds': a list of at least 2 objects with a float 'srcc'")
    srcc = [f["srcc"] for f in folds]
    mean, sd = statistics.fmean(srcc), statistics.stdev(srcc)
    half = float(stats.t.ppf(0.975, len(srcc) - 1)) * sd / math.sqrt(len(srcc))
    result = {"folds": len(srcc), "srcc_mean": mean, "srcc_sd": sd, "srcc_ci95": [mean - half, mean + half]}
    result["srcc_min"] = min(srcc)
    if all("plcc" in f for f in folds):
        result["plcc_mean"] = statistics.fmean(f["plcc"] for f in folds)
    if all("ridge_srcc" in f for f in folds):
        result["folds_beating_ridge"] = sum(f["srcc"] > f["ridge_srcc"] for f in folds)
    return dict(result, per_fold=folds, source=_source(path))


def ladder_folds(data: dict[str, Any], path: str) -> list[dict[str, float]]:
    """The folds of a ``studies/transfer_ladder.py --split-rule folds`` file: per finished fold, the config's
    student distilled (its test SRCC and PLCC) and that fold's ridge floor."""
    rule = data.get("recipe", {}).get("settings", {}).get("data", {}).get("split")
    if rule != "folds":
        raise ConfigError(f"{path}: not a cross-validation (its splits follow data.split {rule!r}, not 'folds')")
    student, folds = data["students"][0], []
    for _, split in sorted(data["splits"].items(), key=lambda kv: int(kv[0])):
        summary = split.get("summaries", {}).get(student)
        if summary is not None:
            fold = {"srcc": summary["student"]["srcc"], "plcc": summary["student"]["plcc"]}
            folds.append(fold | ({"ridge_srcc": split["ridge"]["srcc"]} if "ridge" in split else {}))
    return folds


def reproduction(path: str) -> dict[str, Any]:
    """A fresh training of the same recipe against the bundled checkpoint (``studies/reproduce_default.py``
    output): both test SRCCs, their paired difference, rank agreement and the verdict at its tolerance."""
    data = _read_json(path, "reproduction")
    row = (data.get("rows") or {}).get("checkpoint")
    if not row or "reproduces" not in row:
        raise ConfigError(f"{path}: no 'checkpoint' row with a verdict ('reproduces') in it")
    return {
        "run": data.get("run"),
        "photos": data.get("photos"),
        "fresh_srcc": row["fresh_srcc"],
        "bundled_srcc": row["bundled_srcc"],
        "fresh_minus_bundled": row["fresh_minus_bundled"],
        "rank_agreement": row["fresh_vs_bundled_srcc"],
        "tolerance": row["tolerance"],
        "reproduces": row["reproduces"],
        "settings_differ": sorted(data.get("settings_differ") or {}),
        "source": _source(path),
    }


def uhd_check(spec: dict[str, str]) -> dict[str, Any]:
    """One model's within-photo ordering of graded UHD distortions (``studies/uhd_check.py`` output)."""
    data = _read_json(spec["file"], "UHD check")
    entry = (data.get("models") or {}).get(spec["model"])
    if not entry or not isinstance(entry.get("ordering"), dict):
        raise ConfigError(f"{spec['file']}: no model {spec['model']!r} with an 'ordering' in it")
    ordering = entry["ordering"]
    return {
        "what": data.get("what"),
        "photos": data.get("photos"),
        "images": data.get("images"),
        "ordering": ordering,
        "worst": min(ordering.values()),
        "source": _source(spec["file"]),
    }


def degrade_check(spec: dict[str, str]) -> dict[str, Any]:
    """One model's label-free sanity check (``studies/degrade_check.py`` output): per damage type, how many
    damaged copies scored below their original."""
    data = _read_json(spec["file"], "degrade check")
    entry = (data.get("models") or {}).get(spec["model"])
    damage = {k: v for k, v in (entry or {}).items() if isinstance(v, dict) and "lower" in v}
    if not damage:
        raise ConfigError(f"{spec['file']}: no model {spec['model']!r} with damage counts in it")
    return {
        "what": data.get("what"),
        "photos": len(data.get("photos") or []),
        "lower": {k: {"lower": v["lower"], "of": v["of"]} for k, v in sorted(damage.items())},
        "source": _source(spec["file"]),
    }


def speed(paths: list[str]) -> list[dict[str, Any]]:
    """One row per benchmarked artifact and batch: the CPU it ran on, p50/p90 latency, file->score rate."""
    rows = []
    for path in paths:
        data = _read_json(path, "benchmark")
        device = data.get("device") or {}
        for result in data.get("results") or []:
            if result.get("error"):
                continue
            for lat in result.get("latency") or []:
                rows.append(
                    {
                        "format": result.get("format"),
                        "precision": result.get("precision"),
                        "backend": result.get("backend"),
                        "batch": lat.get("batch"),
                        "p50_ms": lat.get("p50_ms"),
                        "p90_ms": lat.get("p90_ms"),
                        "images_per_s": (result.get("end_to_end") or {}).get("images_per_s"),
                        "peak_rss_mb": result.get("peak_rss_mb"),
                        "srcc": (result.get("accuracy") or {}).get("srcc"),
                        "scored_images": (result.get("accuracy") or {}).get("n"),
                        "cpu": f"{device.get('cpu_model', '?')}, {device.get('cores_usable', '?')} cores",
                        "input": (data.get("settings") or {}).get("input_size"),
                        "source": _source(path),
                    }
                )
    if paths and not rows:
        raise ConfigError(f"{', '.join(paths)}: no benchmark result without an error in these files")
    return rows


def held_out(summary: dict[str, Any], key: str = "student") -> dict[str, Any]:
    """The run's own test-split metrics for the student, as ``summary.json`` recorded them."""
    metrics = summary.get(key)
    if not isinstance(metrics, dict) or "srcc" not in metrics:
        raise ConfigError(f"summary.json has no {key!r} metrics: evaluate the run first (edgeiqa distill)")
    keep = ("srcc", "srcc_ci95", "plcc", "krcc", "rmse", "n")
    return {"split": summary.get("split"), "dataset": summary.get("dataset"), **{k: metrics.get(k) for k in keep}}


def git_commit(repo: Path) -> dict[str, Any]:
    """The commit the bundling ran at, and whether tracked files differed from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        if done.returncode != 0:
            raise ConfigError(f"{repo}: git {' '.join(args)} failed ({done.stderr.strip()})")
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def data_listing_sha256(config_path: Path) -> dict[str, Any]:
    """sha256 over the run's data listing (path under the root, MOS, split, sha256 of the bytes), sorted."""
    from edgeiqa.distill.runs import load_splits
    from edgeiqa.experiment import ExperimentConfig

    cfg = ExperimentConfig.load(config_path)
    table = load_splits(cfg.data).table
    root = Path(cfg.data.root)
    base = root if root.is_dir() else root.parent
    lines = sorted(
        f"{Path(r.path).resolve().relative_to(base.resolve())}\t{r.mos!r}\t{r.split}\t{sha256_file(Path(r.path))}"
        for r in table.records
    )
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return {"dataset": cfg.data.dataset, "root": str(cfg.data.root), "images": len(lines), "sha256": digest}


def build_card(
    name: str,
    inputs: dict[str, Any],
    run: Path,
    facts: dict[str, Any],
    repo: Path,
) -> dict[str, Any]:
    """The card: ``facts`` holds what the bundler measured (model, artifact, checkpoint, files, sha256)."""
    summary = _read_json(run / "summary.json", "training run")
    config = run / "config.yaml"
    quality: dict[str, Any] = {"held_out": held_out(summary)}
    if inputs.get("cross_validation"):
        quality["cross_validation"] = cross_validation(inputs["cross_validation"])
    if inputs.get("reproduction"):
        quality["reproduction"] = reproduction(inputs["reproduction"])
    return {
        "schema": "edgeiqa.card/1",
        "name": name,
        "summary": inputs["summary"],
        "intended_use": inputs["intended_use"],
        "limitations": inputs["limitations"],
        "training_data": {
            "description": inputs["training_data"],
            "licence": inputs["licence"],
            "notice_file": facts["files"]["notice"],
        },
        "model": facts["model"],
        "artifact": facts["artifact"],
        "checkpoint": facts["checkpoint"],
        "quality": quality,
        "uhd_check": uhd_check(inputs["uhd_check"]) if inputs.get("uhd_check") else None,
        "degrade_check": degrade_check(inputs["degrade_check"]) if inputs.get("degrade_check") else None,
        "speed": speed(inputs.get("speed") or []),
        "speed_note": inputs.get("speed_note"),
        "provenance": {
            "run": str(run),
            "config": _read_yaml(config),
            "config_sha256": sha256_file(config),
            "data": data_listing_sha256(config),
            "git": git_commit(repo),
            "checkpoint_provenance": facts.get("state_provenance"),
        },
        "files": facts["files"],
        "sha256": facts["sha256"],
        "size_bytes": facts["size_bytes"],
    }


def _read_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))
