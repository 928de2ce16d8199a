"""Graded distortion sets at native resolution (edgeiqa.data.graded): what the UHD check and the
teacher's ranking set are made of. Severity must really grow with the level, a set must resume
without rewriting what it has, and a bad source costs one line, not the set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeiqa.data.graded import (
    CHECK_LEVELS,
    PRISTINE,
    check_items,
    jittered_levels,
    make_graded_set,
    read_graded,
    split_sources,
)
from edgeiqa.errors import ConfigError

WIDTH, HEIGHT = 96, 64


def textured(seed: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Detail at several scales (fine grain, mid blobs, a gradient): every distortion has something to
    destroy, as on a real photo."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), dtype=np.float32)
    for cell, amp in ((1, 50.0), (4, 60.0), (16, 60.0)):
        coarse = rng.uniform(-amp, amp, size=(height // cell + 1, width // cell + 1, 3)).astype(np.float32)
        img += np.kron(coarse, np.ones((cell, cell, 1), dtype=np.float32))[:height, :width]
    img += np.linspace(60, 160, width, dtype=np.float32)[None, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_sources(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"photo{i}.png"
        Image.fromarray(textured(i)).save(path)
        paths.append(path)
    return paths


def gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64)


def high_freq(img: np.ndarray) -> float:
    """Mean absolute Laplacian: what blur and upscaling take away."""
    lap = 4 * img[1:-1, 1:-1] - img[:-2, 1:-1] - img[2:, 1:-1] - img[1:-1, :-2] - img[1:-1, 2:]
    return float(np.abs(lap).mean())


@pytest.fixture(scope="module")
def check_set(tmp_path_factory) -> tuple[list[Path], Path]:
    root = tmp_path_factory.mktemp("graded")
    sources = write_sources(root / "src", 2)
    return sources, make_graded_set(sources, root / "set", check_items, seed=3, progress=False)


def _levels(csv_path: Path, source: str, distortion: str) -> list[Path]:
    rows = {
        item.level: path
        for path, item in read_graded(csv_path)
        if item.source == source and item.distortion in (distortion, PRISTINE)
    }
    return [rows[k] for k in sorted(rows)]


def test_one_row_per_source_and_item_every_file_there_at_native_size(check_set) -> None:
    sources, csv_path = check_set
    rows = read_graded(csv_path)
    per_source = 1 + sum(len(v) for v in CHECK_LEVELS.values())
    assert len(rows) == len(sources) * per_source == 2 * 17
    assert len({path for path, _ in rows}) == len(rows)
    for path, _ in rows:
        assert path.is_file(), path
        assert Image.open(path).size == (WIDTH, HEIGHT)  # native resolution: nothing is reduced
    assert {item.source for _, item in rows} == {"photo0", "photo1"}
    assert sorted({item.level for _, item in rows}) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("source", ["photo0", "photo1"])
def test_severity_grows_with_the_level(check_set, source) -> None:
    _, csv_path = check_set
    pristine = gray(_levels(csv_path, source, "gaussian_noise")[0])
    noise = [np.std(gray(p) - pristine) for p in _levels(csv_path, source, "gaussian_noise")[1:]]
    assert np.all(np.diff(noise) > 0), noise
    blur = [high_freq(gray(p)) for p in _levels(csv_path, source, "gaussian_blur")]
    assert np.all(np.diff(blur) < 0), blur
    upscale = [high_freq(gray(p)) for p in _levels(csv_path, source, "upscale")]
    assert np.all(np.diff(upscale) < 0), upscale
    sizes = [p.stat().st_size for p in _levels(csv_path, source, "jpeg")[1:]]  # lower quality, fewer bytes
    assert np.all(np.diff(sizes) < 0), sizes


def test_a_second_call_writes_nothing_and_an_interrupted_set_is_completed(tmp_path) -> None:
    sources = write_sources(tmp_path / "src", 2)
    csv_path = make_graded_set(sources, tmp_path / "set", check_items, seed=1, progress=False)
    files = sorted((tmp_path / "set" / "images").glob("*.jpg"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    assert make_graded_set(sources, tmp_path / "set", check_items, seed=1, progress=False) == csv_path
    assert {p: p.stat().st_mtime_ns for p in files} == {p: t for p, (t, _) in before.items()}
    assert sorted((tmp_path / "set" / "images").glob("*.jpg")) == files

    # A kill half-way: some files never written. The rerun writes exactly those, with the same bytes
    # (every random draw depends on the seed and the names only), and leaves the others alone.
    lost = [p for p in files if "gaussian_noise" in p.name or "L0" in p.name][:5]
    for p in lost:
        p.unlink()
    make_graded_set(sources, tmp_path / "set", check_items, seed=1, progress=False)
    for p in files:
        assert p.read_bytes() == before[p][1], p.name
        if p not in lost:
            assert p.stat().st_mtime_ns == before[p][0], p.name
    assert len(read_graded(csv_path)) == 2 * 17


def test_jittered_levels_keep_the_order_and_differ_from_the_check() -> None:
    items = jittered_levels("photo0", seed=0)
    check = {(it.distortion, it.level): it.parameter for it in check_items("photo0")}
    for name in CHECK_LEVELS:
        params = [it.parameter for it in sorted((it for it in items if it.distortion == name), key=lambda i: i.level)]
        assert len(params) == 4
        steps = np.diff(params)
        assert np.all(steps < 0) if name == "jpeg" else np.all(steps > 0), (name, params)  # milder first
        assert params != [check[(name, k)] for k in range(1, 5)], name
    assert items == jittered_levels("photo0", seed=0)  # per source and seed, not per call
    assert items != jittered_levels("photo1", seed=0) and items != jittered_levels("photo0", seed=1)
    # Types the check never uses are there too (the teacher is judged on types it ordered in training
    # *and* on ones it did not, never on the same severities).
    assert {it.distortion for it in items} - set(CHECK_LEVELS) - {PRISTINE}


def test_split_sources_is_disjoint_complete_and_deterministic(tmp_path) -> None:
    paths = [tmp_path / f"p{i:02d}.jpg" for i in range(9)]
    train, check = split_sources(paths)
    assert not set(train) & set(check)
    assert sorted(train + check) == sorted(paths)
    assert abs(len(train) - len(check)) <= 1
    assert split_sources(list(reversed(paths))) == (train, check)


def test_an_undecodable_source_is_one_line_and_skipped(tmp_path, capsys) -> None:
    sources = write_sources(tmp_path / "src", 1)
    bad = tmp_path / "src" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    csv_path = make_graded_set([bad, *sources], tmp_path / "set", check_items, progress=False)
    rows = read_graded(csv_path)
    assert {item.source for _, item in rows} == {"photo0"} and len(rows) == 17
    lines = [line for line in capsys.readouterr().out.splitlines() if "broken.jpg" in line]
    assert len(lines) == 1, lines
    assert not list((tmp_path / "set" / "images").glob("broken__*"))


def test_sources_with_the_same_name_are_refused(tmp_path) -> None:
    """Files are named after the source's stem: a second photo of that name would silently be given the
    first one's images."""
    a = write_sources(tmp_path / "a", 1)
    b = write_sources(tmp_path / "b", 1)
    with pytest.raises(ConfigError, match="photo0"):
        make_graded_set([*a, *b], tmp_path / "set", check_items, progress=False)


def test_max_side_reduces_larger_sources(tmp_path) -> None:
    sources = write_sources(tmp_path / "src", 1)
    csv_path = make_graded_set(sources, tmp_path / "set", check_items, max_side=48, progress=False)
    assert {Image.open(path).size for path, _ in read_graded(csv_path)} == {(48, 32)}


def test_read_graded_names_the_file_when_columns_are_missing(tmp_path) -> None:
    bad = tmp_path / "graded.csv"
    bad.write_text("path,source\nimages/a.jpg,a\n")
    with pytest.raises(ConfigError, match="graded.csv"):
        read_graded(bad)
