"""Does another teacher member pay? Per LIVE-C split: the ladder's one-member teacher, further members
of the same recipe (another seed each, or another variant), and their ensemble, on the same test photos.

    python studies/teacher_members.py --config configs/livec.yaml --from runs/transfer --root runs/members \\
        --splits 0 1 2 [--member '{"seed_offset": 1}' ...] --out studies/results/teacher_members.json

The config's members are taken as trained in ``<from>/s<split>/teacher`` (``transfer_ladder.py``'s
teachers, copied, never retrained); each ``--member`` (a ``teacher.members`` entry as JSON, default one
more seed) is trained after them into ``<root>/s<split>/teacher``, which then holds the whole ensemble
(``Predictor.load`` and ``edgeiqa label`` take it as it is). Per split the study records every member's test
SRCC, the ensemble's, and the paired difference ensemble - best member, where the best member is the one
with the highest validation SRCC (the test photos do not pick it). ``rows`` has one row per split and a
pooled one (rendered in docs/results.md). A split already measured is not measured again; the results file
is written after each split. ``--last-epochs`` adds, for measured splits, each member's test SRCC at its
last epoch where validation picked an earlier one (``teacher.optim.select``: which one to hand on).

It prices the ensemble before the preset pays for it: each member adds its training and its scoring of
every pool photo to ``edgeiqa run`` (docs/results.md, the preset's step times).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # the other studies, beside this one
from transfer_ladder import pooled_difference, recipe_id, split_config  # noqa: E402

from edgeiqa.bench.device_info import cpu_model  # noqa: E402
from edgeiqa.configs import from_dict  # noqa: E402
from edgeiqa.distill.config import TeacherMember  # noqa: E402
from edgeiqa.experiment import ExperimentConfig  # noqa: E402
from edgeiqa.fileio import atomic_write_text  # noqa: E402

MEMBERS = "members"  # edgeiqa.distill.stages: <out>/teacher/members/<k>-<model>


def with_members(base: ExperimentConfig, extra: list[dict[str, Any]]) -> ExperimentConfig:
    """``base`` whose teacher has ``extra`` members after its own (a one-model teacher becomes member 0)."""
    cfg = copy.deepcopy(base)
    members = cfg.teacher.members or [TeacherMember()]
    cfg.teacher.members = members + [from_dict(TeacherMember, m) for m in extra]
    return cfg


def seed_members(source: Path, target: Path) -> None:
    """Copy the trained members of ``source`` (a ladder split's folder) into ``target``, and its ridge floor."""
    members = source / "teacher" / MEMBERS
    if not members.is_dir():
        raise SystemExit(f"{members}: no trained ensemble members to start from (run transfer_ladder.py first)")
    for folder in sorted(members.iterdir()):
        dest = target / "teacher" / MEMBERS / folder.name
        if not dest.exists():  # copied whole or not at all: a half copy would be trained again from scratch
            partial = dest.with_name(dest.name + ".copying")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(folder, partial)
            partial.rename(dest)
    ridge = source / "baseline_ridge.json"
    if ridge.is_file() and not (target / ridge.name).exists():
        shutil.copy2(ridge, target / ridge.name)


def best_validation(folder: Path) -> float:
    """A member's best validation SRCC over its epochs (``metrics.json``, written by the training loop)."""
    return max(float(epoch["val_srcc"]) for epoch in json.loads((folder / "metrics.json").read_text()))


def measure_split(cfg: ExperimentConfig) -> dict[str, Any]:
    """Every member's and the ensemble's test scores and SRCC (MOS scale), and ensemble - best member."""
    from edgeiqa.distill.ensemble import load_ensemble
    from edgeiqa.distill.runs import load_splits
    from edgeiqa.metrics import bootstrap_ci, srcc

    folder = Path(cfg.out) / "teacher"
    test = load_splits(cfg.data).test
    teacher = load_ensemble(folder)
    mean, _, members = teacher.score(test)
    mos = np.array([r.mos for r in test], dtype=np.float64)
    scores = {name: teacher.to_mos(s).tolist() for name, s in members.items()}
    scores["ensemble"] = teacher.to_mos(mean).tolist()
    validation = {name: best_validation(folder / MEMBERS / name) for name in members}
    best = max(validation, key=validation.__getitem__)
    row: dict[str, Any] = {
        "n": len(test),
        "best_member": best,
        "val_srcc": validation,
        "srcc": {name: srcc(np.asarray(s), mos) for name, s in scores.items()},
        "srcc_ci95": {name: list(bootstrap_ci(np.asarray(s), mos, "srcc", seed=0)) for name, s in scores.items()},
        "ensemble_minus_best": pooled_difference([(np.asarray(scores["ensemble"]), np.asarray(scores[best]), mos)]),
        "scores": scores,
        "mos": mos.tolist(),
    }
    return row


def last_epoch_srcc(cfg: ExperimentConfig) -> dict[str, float]:
    """Each member's test SRCC at its last epoch, where its best validation epoch (what ``select: best``
    hands on, and what :func:`measure_split` scored) was an earlier one; else at that same epoch."""
    from edgeiqa.distill.checkpoint import latest_checkpoint
    from edgeiqa.distill.ensemble import EnsembleTeacher, load_ensemble
    from edgeiqa.distill.runs import load_splits
    from edgeiqa.distill.saved_model import load_model
    from edgeiqa.metrics import srcc

    folder = Path(cfg.out) / "teacher"
    test = load_splits(cfg.data).test
    mos = np.array([r.mos for r in test], dtype=np.float64)
    teacher, found = load_ensemble(folder), {}
    for name in teacher.names:
        member = folder / MEMBERS / name
        best, last = (latest_checkpoint(member, which, verify=False) for which in ("best", "last"))
        if best.folder == last.folder:
            continue
        model = load_model(last.folder)
        mean, _, _ = EnsembleTeacher(member, [model], teacher.tta, teacher.mos_range).score(test)
        found[name] = srcc(mean, mos)
    return found


def split_row(split: dict[str, Any]) -> dict[str, Any]:
    """A split's table row (no score lists): each member's SRCC, the best member's and the ensemble's."""
    best = split["best_member"]
    members = [name for name in split["srcc"] if name != "ensemble"]
    return {
        "members": len(members),
        "members_srcc": " / ".join(f"{split['srcc'][name]:.3f}" for name in members),
        "best_member_srcc": split["srcc"][best],
        "best_member_srcc_ci95": split["srcc_ci95"][best],
        "ensemble_srcc": split["srcc"]["ensemble"],
        "ensemble_srcc_ci95": split["srcc_ci95"]["ensemble"],
        "ensemble_minus_best": split["ensemble_minus_best"],
    } | (
        {"members_last_epoch_srcc": " / ".join(f"{last.get(n, split['srcc'][n]):.3f}" for n in members)}
        if (last := split.get("last_epoch_srcc")) is not None
        else {}
    )


def pool(splits: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One row per measured split, and a pooled row: mean SRCC of the best member and of the ensemble, and
    ensemble - best member by a paired bootstrap over each split's test photos."""
    rows = {f"split {k}": split_row(s) for k, s in sorted(splits.items(), key=lambda kv: int(kv[0]))}
    done = list(splits.values())
    if done:
        pairs = [
            (np.asarray(s["scores"]["ensemble"]), np.asarray(s["scores"][s["best_member"]]), np.asarray(s["mos"]))
            for s in done
        ]
        rows["pooled"] = {
            "splits": len(done),
            "best_member_srcc": float(np.mean([s["srcc"][s["best_member"]] for s in done])),
            "ensemble_srcc": float(np.mean([s["srcc"]["ensemble"] for s in done])),
            "ensemble_minus_best": pooled_difference(pairs),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--from", dest="source", required=True, help="transfer_ladder.py's --root")
    parser.add_argument("--root", required=True)
    parser.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--member", action="append", type=json.loads, help='teacher.members entry (JSON); default {"seed_offset": 1}'
    )
    parser.add_argument("--split-rule", choices=["random", "folds"], help="data.split (default: the config's)")
    parser.add_argument(
        "--last-epochs", action="store_true", help="also score each member's last epoch where best was earlier"
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    base = ExperimentConfig.load(args.config)
    if args.split_rule:
        base.data.split = args.split_rule
    extra = args.member or [{"seed_offset": len(base.teacher.members or [None])}]
    cfg = with_members(base, extra)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    if result.get("recipe") not in (None, recipe_id(cfg)):
        raise SystemExit(
            f"{out}: measured with recipe {result['recipe']}, this run is {recipe_id(cfg)}; use another --out"
        )
    result.update(
        {
            "what": "LIVE-C teacher: each member and their ensemble on the same test photos, per split",
            "members_added": extra,
            "recipe": recipe_id(cfg),
            "device": {"cpu_model": cpu_model()},
        }
    )
    result.setdefault("config", args.config)  # where the recipe came from when it was first measured
    splits = result.setdefault("splits", {})
    from edgeiqa.distill.api import run_teacher

    for split in args.splits:
        if str(split) in splits:
            continue
        split_cfg = split_config(cfg, split, Path(args.root))
        seed_members(Path(split_config(base, split, Path(args.source)).out), Path(split_cfg.out))
        run_teacher(split_cfg)
        splits[str(split)] = measure_split(split_cfg)
        result["rows"] = pool(splits)
        atomic_write_text(out, json.dumps(result, indent=1, sort_keys=True))
    for split in args.splits if args.last_epochs else []:
        if str(split) in splits and "last_epoch_srcc" not in splits[str(split)]:
            splits[str(split)]["last_epoch_srcc"] = last_epoch_srcc(split_config(cfg, split, Path(args.root)))
            atomic_write_text(out, json.dumps(result, indent=1, sort_keys=True))
    result["rows"] = pool(splits)  # also when every split was measured already: the rows follow the code
    atomic_write_text(out, json.dumps(result, indent=1, sort_keys=True))
    print(json.dumps(result["rows"], indent=1))


if __name__ == "__main__":
    main()
