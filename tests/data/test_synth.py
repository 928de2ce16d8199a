"""The embedded dataset: pristine sources, pseudo-MOS, and ``synthesize`` (determinism, splits, atomicity)."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeiqa.data import synth as synth_module
from edgeiqa.data.distortions import DISTORTIONS, apply_distortion
from edgeiqa.data.pristine import BUNDLED_SOURCES, load_pristine
from edgeiqa.data.pseudo_mos import combine, fr_measures, pseudo_mos
from edgeiqa.data.synth import CSV_COLUMNS, assign_splits, select_levels, synthesize
from edgeiqa.errors import ConfigError, DataError

spearmanr = pytest.importorskip("scipy.stats").spearmanr
SMALL = dict(
    max_side=96, max_sources=4, types=["jpeg", "gaussian_noise", "motion_blur", "contrast_change"], progress=False
)


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "mos.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _digest(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "images").iterdir())}


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synth")
    # "a" and "b" differ only in their thread count, which must not change a byte.
    runs = {"a": (0, root / "a", 2), "b": (0, root / "b", 1), "seed1": (1, root / "seed1", None)}
    for seed, out, workers in runs.values():
        synthesize(out, seed=seed, workers=workers, **SMALL)
    return {name: out for name, (_, out, _) in runs.items()}


# --- pristine sources -----------------------------------------------------------------------------------


def test_bundled_sources_are_ten_sorted_colour_photos_sized_to_max_side():
    sources = load_pristine()
    assert len(sources) >= 10 and len(sources) == len(BUNDLED_SOURCES)
    assert [s.name for s in sources] == sorted(s.name for s in sources)
    for s in sources:
        h, w, c = s.pixels.shape
        assert c == 3 and s.pixels.dtype == np.uint8 and max(h, w) == 384 and h % 8 == 0 and w % 8 == 0
        assert np.abs(s.pixels[..., 0].astype(int) - s.pixels[..., 2]).mean() > 3, f"{s.name} looks grey"


def _write_folder(folder: Path, sizes: dict[str, tuple[int, int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, (w, h) in sizes.items():
        smooth = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((w, h))
        smooth.save(folder / name)


def test_folder_sources_sorted_by_name_reduced_never_enlarged(tmp_path):
    _write_folder(tmp_path, {"b.png": (300, 200), "a.jpg": (60, 45), "c d.png": (100, 300)})
    (tmp_path / "notes.txt").write_text("not an image")
    sources = load_pristine(tmp_path, max_side=120)
    assert [s.name for s in sources] == ["a", "b", "c_d"]
    assert [s.pixels.shape[:2] for s in sources] == [(40, 56), (80, 120), (120, 40)]


def test_bad_pristine_dirs_are_data_errors_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match=f"pristine folder {re.escape(str(missing))} does not exist"):
        load_pristine(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty holds no images \(\.jpg"):
        load_pristine(tmp_path / "empty")
    good = tmp_path / "good"
    _write_folder(good, {"a.png": (64, 64), "b.png": (64, 64), "c.png": (64, 64)})
    (good / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    summary = synthesize(tmp_path / "out", pristine_dir=good, max_side=64, types=["jpeg"], progress=False)
    assert summary.n_sources == 3  # the broken one is skipped and named, the rest are used
    assert f"cannot be decoded: {good / 'broken.jpg'}" in capsys.readouterr().err
    only_broken = tmp_path / "only_broken"
    only_broken.mkdir()
    (only_broken / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(DataError, match="none of the 1 pristine images could be decoded"):
        synthesize(tmp_path / "out2", pristine_dir=only_broken, max_side=64, progress=False)
    assert not (tmp_path / "out2").exists()


# --- pseudo-MOS ------------------------------------------------------------------------------------------


def test_pseudo_mos_is_100_for_the_reference_and_follows_the_formula():
    photo = load_pristine(max_side=96, max_sources=1)[0].pixels
    assert pseudo_mos(photo, photo) == pytest.approx(100.0, abs=1e-3)
    # weighted mean (2*0.2 + 0.4 + 0.1/0.35) / 4 = 0.2714 beats 1 - HaarPSI = 0.2
    assert combine({"haarpsi": 0.8, "dss": 0.6, "gmsd": 0.1}) == pytest.approx(100 * (1 - 0.2714286), abs=1e-4)
    # colour-blind DSS/GMSD see nothing: the HaarPSI term alone must carry a colour loss
    assert combine({"haarpsi": 0.5, "dss": 1.0, "gmsd": 0.0}) == pytest.approx(50.0)


def test_greyed_photo_scores_poorly_though_dss_and_gmsd_see_nothing():
    photo = load_pristine(max_side=96, max_sources=1)[0].pixels
    grey = apply_distortion("saturation_change", photo, 5, np.random.default_rng(0))
    measures = fr_measures(photo, grey)
    assert measures["dss"] > 0.99 and measures["gmsd"] < 0.01
    assert pseudo_mos(photo, grey) < 70


# --- synthesize ------------------------------------------------------------------------------------------


def test_layout_columns_and_values(small_runs):
    out = small_runs["a"]
    rows = _rows(out)
    assert tuple(rows[0]) == CSV_COLUMNS
    assert (out / "mos.csv").read_text().splitlines()[0] == "path,mos,split,source,distortion,level"
    assert len(rows) == 4 * (1 + 4 * 5) == len(list((out / "images").iterdir()))
    for r in rows:
        assert r["path"] == f"images/{r['source']}__{r['distortion']}__L{r['level']}.png"
        assert (out / r["path"]).is_file() and re.fullmatch(r"\d{1,3}\.\d{4}", r["mos"])
        assert 0.0 <= float(r["mos"]) <= 100.0
    pristine = [r for r in rows if r["distortion"] == "pristine"]
    assert len(pristine) == 4 and {(r["level"], r["mos"]) for r in pristine} == {("0", "100.0000")}
    assert [p.name for p in out.parent.iterdir() if ".partial-" in p.name] == []


def test_same_seed_is_byte_identical_and_another_seed_changes_the_random_types(small_runs):
    a, b, other = small_runs["a"], small_runs["b"], small_runs["seed1"]
    assert (a / "mos.csv").read_bytes() == (b / "mos.csv").read_bytes()
    assert _digest(a) == _digest(b)
    da, do = _digest(a), _digest(other)
    changed = {name.split("__")[1] for name in da if da[name] != do[name]}
    assert changed == {"gaussian_noise", "motion_blur"}  # jpeg and contrast use no randomness


def test_splits_are_by_source_and_cover_train_val_test(small_runs):
    for out in small_runs.values():
        split_of = defaultdict(set)
        for r in _rows(out):
            split_of[r["source"]].add(r["split"])
        assert all(len(s) == 1 for s in split_of.values())
        assert {s for (s,) in split_of.values()} == {"train", "val", "test"}


def test_assign_splits_is_seeded_and_roughly_70_15_15():
    names = [f"s{i:02d}" for i in range(20)]
    splits = assign_splits(names, seed=0)
    assert assign_splits(list(reversed(names)), seed=0) == splits
    assert sorted(splits.values()).count("train") == 14 and list(splits.values()).count("val") == 3
    assert assign_splits(names, seed=1) != splits
    with pytest.raises(DataError, match="needs at least 3 pristine sources, got 2"):
        assign_splits(["a", "b"], seed=0)


def test_pseudo_mos_falls_with_level_for_every_type(tmp_path):
    out = tmp_path / "all"
    summary = synthesize(out, max_side=96, max_sources=3, progress=False)
    assert summary.types == tuple(DISTORTIONS) and summary.n_images == 3 * (1 + len(DISTORTIONS) * 5)
    by_type = defaultdict(list)
    for r in _rows(out):
        by_type[r["distortion"]].append((int(r["level"]), float(r["mos"])))
    for name in DISTORTIONS:
        levels, mos = zip(*by_type[name])
        rho = spearmanr(levels, mos)[0]
        assert rho <= -0.9, f"{name}: SRCC(level, pseudo-MOS) = {rho:.3f}"
        level5 = np.mean([m for lv, m in by_type[name] if lv == 5])
        assert level5 < 70, f"{name}: level 5 still scores {level5:.1f}"


def test_existing_output_needs_overwrite_and_is_replaced_whole(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    synthesize(out, max_side=64, max_sources=3, types=["jpeg"], levels=1, progress=False)  # empty dir is fine
    (out / "stale.txt").write_text("old")
    with pytest.raises(DataError, match=f"output folder {re.escape(str(out))} is not empty; pass overwrite=True"):
        synthesize(out, max_side=64, max_sources=3, types=["jpeg"], levels=1, progress=False)
    summary = synthesize(out, max_side=64, max_sources=3, types=["pixelate"], levels=3, progress=False, overwrite=True)
    assert not (out / "stale.txt").exists() and summary.n_images == 3 * (1 + 3)
    assert sorted({r["level"] for r in _rows(out)}) == ["0", "1", "3", "5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_interrupted_run_leaves_nothing_and_keeps_the_old_dataset(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    synthesize(out, max_side=64, max_sources=3, types=["jpeg"], levels=1, progress=False)
    before = (out / "mos.csv").read_bytes()
    calls = []

    def flaky(reference, distorted):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return 50.0

    monkeypatch.setattr(synth_module, "pseudo_mos", flaky)
    with pytest.raises(KeyboardInterrupt):
        synthesize(out, max_side=64, max_sources=3, types=["jpeg"], progress=False, overwrite=True)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        synthesize(tmp_path / "fresh", max_side=64, max_sources=3, types=["jpeg"], progress=False)
    assert (out / "mos.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown distortion type"):
        synthesize(tmp_path / "x", types=["jpeg", "fog"], progress=False)
    with pytest.raises(ConfigError, match=r"levels must be in 1\.\.5, got 0"):
        synthesize(tmp_path / "x", levels=0, progress=False)
    with pytest.raises(ConfigError, match="max_sources must be >= 3"):
        synthesize(tmp_path / "x", max_sources=2, progress=False)
    assert select_levels(5) == (1, 2, 3, 4, 5) and select_levels(3) == (1, 3, 5) and select_levels(2) == (1, 5)
    assert not (tmp_path / "x").exists()


def test_progress_bar_goes_to_stderr_only_when_asked(tmp_path, capsys):
    synthesize(tmp_path / "quiet", max_side=64, max_sources=3, types=["jpeg"], levels=1, progress=False)
    assert capsys.readouterr().err == ""
    synthesize(tmp_path / "loud", max_side=64, max_sources=3, types=["jpeg"], levels=1, progress=True)
    assert "synth" in capsys.readouterr().err
