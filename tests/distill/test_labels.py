"""Teacher label tables (edgeiqa.distill.labels): resumable after a kill, shardable and mergeable, a bad
image one line and skipped, and read back on the 0..1 scale the student trains on.

The scorer here is a stand-in with the ensemble's interface (``score(records, ...)``): it decodes each
file the way the real teacher does (so a corrupt file fails the same way) and records which paths it
was asked for, which is what resumability is about. The real teacher labels a pool in
test_label_tables_training.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeiqa.data.graded import check_items, make_graded_set
from edgeiqa.distill.ensemble import EnsembleTeacher
from edgeiqa.distill.labels import (
    label_images,
    merge_tables,
    parse_shard,
    pool_paths,
    read_table,
    sidecar,
    sorted_rows,
)
from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.preprocess import decode_image

_DECODE = PreprocessContract(fragments=None)


class CountingTeacher(EnsembleTeacher):
    """Score = mean brightness (0..1), spread = a tenth of the pixel std; every path asked for is kept."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, [], ("identity",), (0.0, 100.0), ["fake"])
        self.asked: list[str] = []

    def score(self, records, device="cpu", batch_size=8, workers=0):
        pixels = [np.asarray(decode_image(r.path, _DECODE), dtype=np.float64) / 255 for r in records]
        self.asked += [str(r.path) for r in records]
        mean = np.array([p.mean() for p in pixels])
        spread = np.array([p.std() / 10 for p in pixels])
        return mean, spread, {"fake": mean}


def make_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def data_lines(table: Path) -> list[str]:
    return table.read_text().splitlines()[1:]


def test_a_killed_run_resumes_scoring_only_what_is_missing(tmp_path) -> None:
    images = make_images(tmp_path / "img", 10)
    table = tmp_path / "labels" / "teacher.csv"
    first = label_images(CountingTeacher(tmp_path), images, table, progress=False)
    assert (first.written, first.skipped_done, first.failed) == (10, 0, [])
    full = table.read_bytes()
    reference = sorted_rows(table)
    assert [r[0] for r in reference] == sorted(str(p.resolve()) for p in images)

    # Killed in the middle of the 7th row: six whole rows and half a line.
    lines = full.decode().splitlines(keepends=True)
    kept = "".join(lines[:7])
    table.write_text(kept + lines[7][: len(lines[7]) // 2])
    teacher = CountingTeacher(tmp_path)
    again = label_images(teacher, images, table, progress=False)
    assert (again.written, again.skipped_done) == (4, 6)
    assert teacher.asked == [r[0] for r in reference[6:]]  # the half row and the three never written
    assert table.read_bytes().startswith(kept.encode())  # the six rows written before keep their bytes
    assert sorted_rows(table) == reference

    # Rows lost from the middle (a table merged from an incomplete shard, say): only they are rescored.
    lines = table.read_text().splitlines(keepends=True)
    dropped = [lines[2], lines[5]]
    table.write_text("".join(line for line in lines if line not in dropped))
    teacher = CountingTeacher(tmp_path)
    third = label_images(teacher, images, table, progress=False)
    assert third.written == 2 and sorted(teacher.asked) == sorted(line.split(",")[0] for line in dropped)
    assert sorted_rows(table) == reference

    nothing = CountingTeacher(tmp_path)
    assert label_images(nothing, images, table, progress=False).written == 0 and nothing.asked == []


def test_two_shards_merged_equal_one_unsharded_run(tmp_path) -> None:
    images = make_images(tmp_path / "img", 12)
    whole = label_images(CountingTeacher(tmp_path), images, tmp_path / "all.csv", progress=False).table
    shards = [
        label_images(CountingTeacher(tmp_path), images, tmp_path / f"s{i}.csv", shard=(i, 2), progress=False)
        for i in range(2)
    ]
    assert all(s.written > 0 for s in shards) and sum(s.written for s in shards) == 12
    paths = [{r[0] for r in sorted_rows(s.table)} for s in shards]
    assert not paths[0] & paths[1]
    assert json.loads(sidecar(shards[1].table).read_text())["shard"] == [1, 2]
    merged = tmp_path / "merged.csv"
    assert merge_tables([s.table for s in shards], merged) == 12
    assert sorted_rows(merged) == sorted_rows(whole)
    meta = json.loads(sidecar(merged).read_text())
    assert meta["shard"] == [0, 1] and meta["mos_range"] == [0.0, 100.0]
    assert read_table(merged) == read_table(whole)


@pytest.mark.parametrize("text", ["2/2", "-1/2", "0/0", "1", "a/b", "1/2/3"])
def test_bad_shards_are_refused(text) -> None:
    with pytest.raises(ConfigError, match="shard"):
        parse_shard(text)


def test_good_shards_parse() -> None:
    assert parse_shard("3/4") == (3, 4) and parse_shard(None) == (0, 1) and parse_shard("") == (0, 1)


def test_a_corrupt_image_is_one_line_and_the_rest_are_written(tmp_path, capsys) -> None:
    images = make_images(tmp_path / "img", 5)
    bad = tmp_path / "img" / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 garbage")
    table = tmp_path / "t.csv"
    result = label_images(CountingTeacher(tmp_path), [images[0], bad, *images[1:]], table, progress=False)
    assert result.written == 5 and result.failed == [str(bad.resolve())]
    assert str(bad.resolve()) not in {r[0] for r in sorted_rows(table)} and len(sorted_rows(table)) == 5
    lines = [line for line in capsys.readouterr().out.splitlines() if "bad.jpg" in line]
    assert len(lines) == 1, lines


def test_scores_and_spread_are_written_on_the_mos_scale(tmp_path) -> None:
    images = make_images(tmp_path / "img", 3)
    table = label_images(CountingTeacher(tmp_path), images, tmp_path / "t.csv", progress=False).table
    rows = {r[0]: r for r in sorted_rows(table)}
    for path in images:
        pixels = np.asarray(Image.open(path), dtype=np.float64) / 255
        _, score, spread = rows[str(path.resolve())]
        assert float(score) == pytest.approx(100 * pixels.mean(), abs=1e-5)
        assert float(spread) == pytest.approx(100 * pixels.std() / 10, abs=1e-5)


def _table(path: Path, rows: list[tuple[str, str]], header: str = "path,score") -> Path:
    path.write_text(header + "\n" + "".join(f"{p},{s}\n" for p, s in rows))
    return path


def test_read_table_normalises_by_the_sidecar_a_given_range_or_min_max(tmp_path) -> None:
    images = make_images(tmp_path / "img", 3)
    table = label_images(CountingTeacher(tmp_path), images, tmp_path / "t.csv", progress=False).table
    raw = {r[0]: float(r[1]) for r in sorted_rows(table)}
    assert read_table(table) == pytest.approx({p: v / 100 for p, v in raw.items()})  # sidecar: 0..100
    assert read_table(table, [0, 200]) == pytest.approx({p: v / 200 for p, v in raw.items()})

    # Another scorer's table, relative paths, no sidecar: its own min and max.
    (tmp_path / "pyiqa").mkdir()
    foreign = _table(
        tmp_path / "pyiqa" / "scores.csv",
        [("../img/img00.png", "3"), ("../img/img01.png", "5"), ("../img/img02.png", "4")],
    )
    got = read_table(foreign)
    assert got == {str(images[0].resolve()): 0.0, str(images[1].resolve()): 1.0, str(images[2].resolve()): 0.5}


def test_read_table_errors_name_the_file_and_line(tmp_path) -> None:
    bad = _table(tmp_path / "bad.csv", [("a.png", "0.5"), ("b.png", "n/a")])
    with pytest.raises(ConfigError, match=r"bad\.csv:3: score 'n/a' is not a number"):
        read_table(bad)
    with pytest.raises(ConfigError, match=r"inf\.csv:2"):
        read_table(_table(tmp_path / "inf.csv", [("a.png", "inf")]))
    with pytest.raises(ConfigError, match="path,score"):
        read_table(_table(tmp_path / "cols.csv", [("a.png", "1")], header="file,mos"))
    with pytest.raises(ConfigError, match="empty"):
        read_table(_table(tmp_path / "flat.csv", [("a.png", "1"), ("b.png", "1")]))
    with pytest.raises(ConfigError, match="no such label table"):
        read_table(tmp_path / "absent.csv")


def test_merge_refuses_a_path_scored_differently_twice(tmp_path) -> None:
    header = "path,score,spread"
    a = _table(tmp_path / "a.csv", [("/x/1.png", "50.000000,0.1"), ("/x/2.png", "40.000000,0.1")], header)
    same = _table(tmp_path / "b.csv", [("/x/1.png", "50.000000,0.1")], header)
    assert merge_tables([a, same], tmp_path / "ok.csv") == 2  # the same row twice is harmless
    other = _table(tmp_path / "c.csv", [("/x/1.png", "51.000000,0.1")], header)
    with pytest.raises(EdgeIQAError, match="1.png"):
        merge_tables([a, other], tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


def test_pool_paths_reads_folders_and_graded_sets(tmp_path) -> None:
    images = make_images(tmp_path / "pool", 3)
    csv_path = make_graded_set(images[:1], tmp_path / "graded", check_items, progress=False)
    got = pool_paths([str(tmp_path / "pool"), str(csv_path)])
    assert sorted(map(str, got[:3])) == sorted(map(str, images))
    assert len(got) == 3 + 17 and all(p.is_file() for p in got[3:])
    with open(csv_path, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 17


def test_links_are_images_of_their_own(tmp_path) -> None:
    """A pool of links to a few photos (how a 10,000-file run is staged) gets a row per link, under the
    link's own path: that is the path a training record or a pool entry carries."""
    target = make_images(tmp_path / "img", 1)[0]
    links = []
    for i in range(3):
        links.append(tmp_path / f"link{i}.png")
        links[-1].symlink_to(target)
    table = label_images(CountingTeacher(tmp_path), [*links, target], tmp_path / "t.csv", progress=False).table
    assert [r[0] for r in sorted_rows(table)] == sorted(str(p) for p in [*links, target])
    assert set(read_table(table)) == {str(p) for p in [*links, target]}
