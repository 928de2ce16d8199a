"""Does strong-to-weak transfer pay? Per LIVE-C split: the teacher, and each student of the ladder
distilled from its labels and trained on labels alone, beside the frozen-feature ridge floor.

    python studies/transfer_ladder.py --config configs/livec.yaml --splits 0 1 2 --root runs/transfer \\
        --out studies/results/transfer_ladder.json [--students eqcnet_lite0 eqcnet_lite0_s ...] [--uhd-set graded.csv]

Per split ``s`` (``data.split_seed = s``, training seed 0; with ``--split-rule folds``, fold ``s`` of the
k-fold partition, so ``--splits 0 1 2 3 4`` cross-validates the recipe): the config's teacher (an ensemble) is trained
into ``<root>/s<s>``, labels the pool once (``<root>/s<s>/labels/teacher.csv``), the config's student is
distilled and trained alone there; every other ladder student is distilled from the same table and
trained alone in ``<root>/s<s>/<student>``. Every step resumes, and the results file is rewritten after
each step, so the study can be stopped and continued. A results file holds one recipe: each split records
the config's fingerprint (:func:`recipe_id`, every setting but ``out``), and a split measured with another
recipe is refused by name (move its run folder and file aside), so pooled rows never mix recipes. With
``--uhd-set``, each model's within-photo ordering of graded UHD distortions is added
(``studies/uhd_check.py``'s measure).

``rows`` pools the splits, one row per model (rendered in docs/results.md): GMACs on a 3840x2160 image,
mean test SRCC, the paired bootstrap of the mean over splits of SRCC(distilled) - SRCC(alone) and of each
model - the ridge floor (test photos resampled within each split), and the UHD check per distortion type.
Beside the JSON, ``<out>.png`` plots GMACs against SRCC: the distilled and the alone students as two
curves, the teacher as a line.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.bench.device_info import cpu_model
from edgeiqa.configs import from_dict, to_dict
from edgeiqa.distill.config import PseudoLabelTable
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.fileio import atomic_write_text

N_BOOT = 2000


def split_config(base: ExperimentConfig, split: int, root: Path, student: str | None = None) -> ExperimentConfig:
    cfg = copy.deepcopy(base)
    cfg.data.split_seed = split
    cfg.out = str(root / f"s{split}")
    if student is not None and student != base.student.model:
        cfg.student.model = student
        cfg.out = str(root / f"s{split}" / student)
        cfg.data.pseudo_pool = []
        cfg.data.pseudo_labels = [PseudoLabelTable(str(root / f"s{split}" / "labels" / "teacher.csv"))]
    return from_dict(ExperimentConfig, to_dict(cfg))


def recipe_id(base: ExperimentConfig) -> str:
    """What a split's numbers depend on besides its seed: every setting of the config but its ``out``."""
    settings = to_dict(base)
    settings.pop("out", None)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def check_recipe(entry: dict[str, Any], split: int, recipe: str, out: Path) -> None:
    """Claim ``entry`` for ``recipe``, or stop when it already holds steps of another one."""
    found = entry.get("recipe", "unrecorded")
    if entry.get("seconds") and found != recipe:
        raise SystemExit(
            f"{out}: split {split} was measured with recipe {found}, the config is recipe {recipe}; "
            "move that split's run folder aside and write to another --out"
        )
    entry["recipe"] = recipe


def merge_splits(splits: dict[str, Any], others: dict[str, Any], recipe: str, source: Path) -> None:
    """Add ``others`` (the splits of another results file) to ``splits``: each must be of ``recipe``, and a
    split both files measured must be the same measurement."""
    for split, entry in others.items():
        if entry.get("recipe") != recipe:
            raise SystemExit(f"{source}: split {split} is recipe {entry.get('recipe', 'unrecorded')}, not {recipe}")
        if splits.get(split, {}).get("seconds") and splits[split] != entry:
            raise SystemExit(f"{source}: split {split} differs from the one already in the results file")
        splits[split] = entry


def train_split(
    base: ExperimentConfig,
    split: int,
    root: Path,
    students: list[str],
    entry: dict[str, Any],
    save: Callable[[], None],
    uhd_set: str | None,
    teacher_uhd: bool = True,
) -> None:
    """Every step of one split into ``entry`` (saved after each); a step already in ``entry`` is skipped."""
    from edgeiqa.distill.api import run_distill, run_teacher

    seconds = entry.setdefault("seconds", {})
    summaries = entry.setdefault("summaries", {})
    main = split_config(base, split, root)

    def step(name: str, fn: Callable[[], Any], into: dict[str, Any] | None = None, key: str = "") -> Any:
        """Run ``fn``, record its seconds (and its value at ``into[key]``), then save: the file never lags."""
        start = time.perf_counter()
        value = fn()
        seconds[name] = round(time.perf_counter() - start, 1)
        if into is not None:
            into[key] = value
        save()
        return value

    if "teacher" not in seconds:
        step("teacher", lambda: run_teacher(main))
    for k, student in enumerate(students):  # the config's student first, then the floor, then the ladder
        if student not in summaries:
            cfg = split_config(base, split, root, student)
            step(f"{student}/distilled", lambda cfg=cfg: run_distill(cfg, evaluate_after=False))
            step(f"{student}/alone", lambda cfg=cfg: run_distill(cfg, student_only=True).summary, summaries, student)
        if k == 0 and "ridge" not in entry:
            step("ridge", lambda: ridge(main), entry, "ridge")
        if uhd_set:
            uhd = entry.setdefault("uhd", {})
            for name, folder in uhd_models(
                Path(main.out), [student], base.student.model, with_teacher=k == 0 and teacher_uhd
            ):
                if name not in uhd and folder.exists():
                    step(f"uhd/{name}", lambda folder=folder: uhd_ordering(uhd_set, folder), uhd, name)


def uhd_models(out: Path, students: list[str], main_student: str, with_teacher: bool) -> list[tuple[str, Path]]:
    """The models to check, the students first: the teacher scores every 4K image twice (its views and
    flips) and takes longest, so a study stopped there has the students' rows already."""
    models = []
    for student in students:
        root = out if student == main_student else out / student
        models += [
            (f"{student}/distilled", root / "student" / "final"),
            (f"{student}/alone", root / "student_only" / "final"),
        ]
    return models + ([("teacher", out / "teacher")] if with_teacher else [])


def uhd_ordering(graded_csv: str, folder: Path) -> dict[str, float]:
    from uhd_check import ordering  # studies/uhd_check.py, beside this script

    from edgeiqa.data.graded import read_graded

    return ordering(read_graded(Path(graded_csv)), folder)


def ridge(cfg: ExperimentConfig) -> dict[str, Any]:
    """The split's frozen-feature ridge floor: the one its run folder holds, else fitted (and saved) now."""
    from edgeiqa.distill.ridge_floor import ridge_floor

    saved = Path(cfg.out) / "baseline_ridge.json"
    return json.loads(saved.read_text()) if saved.is_file() else ridge_floor(cfg, progress=False)


def pooled_difference(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], seed: int = 0) -> dict[str, float]:
    """Mean over splits of SRCC(a) - SRCC(b), with a paired bootstrap resampling photos within each split
    (``value [low, high]``, the shape docs/results.md renders as a difference)."""
    from edgeiqa.metrics import bootstrap_indices, srcc_rows

    points, boots = [], []
    for k, (a, b, mos) in enumerate(pairs):
        idx = bootstrap_indices(len(mos), N_BOOT, seed + k)
        points.append(srcc_rows(a[None], mos[None])[0] - srcc_rows(b[None], mos[None])[0])
        boots.append(srcc_rows(a[idx], mos[idx]) - srcc_rows(b[idx], mos[idx]))
    low, high = np.quantile(np.mean(boots, axis=0), [0.025, 0.975])
    return {"value": float(np.mean(points)), "low": float(low), "high": float(high)}


# summary.json name -> the row label's suffix
_ROLES = {"student": "distilled", "student_only": "alone", "teacher": "teacher"}


def gmacs_4k(model: str) -> float:
    from edgeiqa.models.info import model_info

    return round(model_info(model).gmacs, 3)


def plot(rows: dict[str, dict[str, Any]], gmacs: dict[str, float], teacher_gmacs: float, path: Path) -> None:
    """GMACs at 4K -> mean test SRCC, distilled and alone students as two curves, the teacher as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    most = max((r["splits"] for r in rows.values()), default=0)
    for role, marker in (("distilled", "o-"), ("alone", "s--")):
        points = sorted((gmacs[s], r["srcc"], r["splits"]) for s in gmacs if (r := rows.get(f"{s} {role}")))
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker, label=f"student {role}")
        for x, y, splits in points:  # a student still training on some splits: its mean is not comparable yet
            if splits < most:
                ax.annotate(f"{splits} of {most} splits", (x, y), textcoords="offset points", xytext=(6, -10))
    if "teacher" in rows:
        ax.axhline(rows["teacher"]["srcc"], color="gray", linestyle=":", label=f"teacher ({teacher_gmacs:.0f} GMACs)")
    if "ridge" in rows:
        ax.axhline(rows["ridge"]["srcc"], color="red", linestyle=":", label="frozen features + ridge")
    ax.set_xlabel("GMACs for a 3840x2160 image")
    ax.set_ylabel("LIVE-C test SRCC (mean over splits)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summarise(result: dict[str, Any], students: list[str]) -> dict[str, Any]:
    """One row per model (the teacher, each student distilled and alone): mean test SRCC over the splits
    it has, paired differences pooled over those splits, and the UHD check per distortion type."""
    rows: dict[str, dict[str, Any]] = {}
    for student in students:
        done = [sp for sp in result["splits"].values() if student in sp.get("summaries", {})]
        for name, role in _ROLES.items():
            per = [sp["summaries"][student] for sp in done if name in sp["summaries"][student]]
            if not per or (name == "teacher" and "teacher" in rows):
                continue
            label = "teacher" if name == "teacher" else f"{student} {role}"
            row: dict[str, Any] = {"splits": len(per), "srcc": float(np.mean([p[name]["srcc"] for p in per]))}
            if name == "student":
                row["minus_alone"] = pooled_difference([_pair(p, "student", "student_only") for p in per])
            ridges = [sp["ridge"]["scores"]["ridge"] for sp in done if "ridge" in sp]
            if len(ridges) == len(per):
                pairs = [_pair(p, name, None, r) for p, r in zip(per, ridges)]
                row["minus_ridge"] = pooled_difference(pairs)
            uhd_key = "teacher" if name == "teacher" else f"{student}/{role}"
            checks = [sp["uhd"][uhd_key] for sp in done if uhd_key in sp.get("uhd", {})]
            if checks:  # the UHD check may lag the SRCC rows (--no-teacher-uhd): say over how many splits
                row["uhd_splits"] = len(checks)
            for kind in sorted({k for c in checks for k in c}):
                row[f"uhd_{kind}"] = float(np.mean([c[kind] for c in checks if kind in c]))
            rows[label] = row
    ridges = [sp["ridge"] for sp in result["splits"].values() if "ridge" in sp]
    if ridges:
        rows["ridge"] = {"splits": len(ridges), "srcc": float(np.mean([r["srcc"] for r in ridges]))}
    return rows


def _pair(summary: dict[str, Any], a: str, b: str | None, other: list[float] | None = None) -> tuple:
    scores = summary["scores"]
    second = scores[b] if b is not None else other
    return tuple(np.asarray(v, dtype=np.float64) for v in (scores[a], second, scores["mos"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--splits", type=int, nargs="*", default=[0, 1, 2], help="to train (none: only pool)")
    parser.add_argument("--root", required=True)
    parser.add_argument("--students", nargs="+", default=None, help="ladder (default: the config's student)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--uhd-set", help="graded.csv of the UHD check (edgeiqa data graded --check-half DIR)")
    parser.add_argument(
        "--no-teacher-uhd", action="store_true", help="leave the teacher's UHD check (the longest step) for a later run"
    )
    parser.add_argument("--split-rule", choices=["random", "folds"], help="data.split (default: the config's)")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=[],
        help="results files of the same recipe whose splits join this one's (one run per split or machine)",
    )
    args = parser.parse_args()
    base = ExperimentConfig.load(args.config)
    if args.split_rule:
        base.data.split = args.split_rule
    recipe = recipe_id(base)
    students = args.students or [base.student.model]
    if base.student.model in students:  # the config's student first: it labels the pool for the others
        students.remove(base.student.model)
    students.insert(0, base.student.model)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    result.update(
        {
            "what": f"LIVE-C: teacher vs ladder students distilled and alone, per {base.data.split} split",
            "config": args.config,
            "students": students,
            "recipe": {"id": recipe, "settings": to_dict(base)},
        }
    )
    result.setdefault("splits", {})
    for other in args.merge:
        merge_splits(result["splits"], json.loads(other.read_text())["splits"], recipe, other)
    result["device"] = {"cpu_model": cpu_model()}
    gmacs = {student: gmacs_4k(student) for student in students}
    teacher_gmacs = gmacs_4k(base.teacher.model)

    def save() -> None:
        rows = summarise(result, students)
        for label, row in rows.items():
            model = label.split(" ")[0]
            row["gmacs_4k"] = teacher_gmacs if model == "teacher" else gmacs.get(model)
        result["rows"] = rows
        atomic_write_text(out, json.dumps(result, indent=1, sort_keys=True))
        plot(rows, gmacs, teacher_gmacs, out.with_suffix(".png"))

    for split in args.splits:
        check_recipe(result["splits"].setdefault(str(split), {}), split, recipe, out)
        train_split(
            base,
            split,
            Path(args.root),
            students,
            result["splits"].setdefault(str(split), {}),
            save,
            args.uhd_set,
            not args.no_teacher_uhd,
        )
    save()  # also when every step was already there: the rows, the GMACs and the plot follow the code
    print(json.dumps(result["rows"], indent=1))


if __name__ == "__main__":
    main()
