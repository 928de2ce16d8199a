"""Dataset loaders: each official format read from a tiny copy written into tmp_path, every bad-metadata
case reported with file and line, and group-wise random splits."""

from __future__ import annotations

import math
import re
import sys
import types
from pathlib import Path

import pytest
from fixtures_loaders import (
    KADID_ROWS,
    KONIQ_ROWS,
    LIVEC_TEST,
    SPAQ_HEADER,
    SPAQ_ROWS,
    SYNTH_ROWS,
    UHD_ROWS,
    write_csv,
    write_image,
    write_kadid,
    write_koniq,
    write_livec_csv,
    write_livec_mat,
    write_spaq,
    write_synthetic,
    write_uhdiqa,
)

from edgeiqa.data.loaders import get_loader, list_loaders, load_dataset, register_loader
from edgeiqa.data.records import ImageRecord, IQATable
from edgeiqa.errors import ConfigError, DataError

LIVEC_DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "livec-jpeg"


def by_name(table: IQATable) -> dict[str, ImageRecord]:
    return {r.path.name: r for r in table.records}


# --- registry -----------------------------------------------------------------------------------


def test_registry_lists_every_builtin_loader():
    assert list_loaders() == ["csv", "kadid10k", "koniq10k", "livec", "spaq", "uhdiqa"]


def test_unknown_dataset_names_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown dataset 'koniq'; known datasets: csv, kadid10k, koniq10k"):
        load_dataset("koniq", tmp_path)


def test_unknown_option_is_a_config_error(tmp_path):
    write_kadid(tmp_path)
    with pytest.raises(ConfigError, match=r"dataset 'kadid10k' does not take option\(s\) \['split'\]; it accepts"):
        load_dataset("kadid10k", tmp_path, split="train")


def test_register_loader_adds_a_custom_dataset_and_refuses_a_clash(tmp_path):
    @register_loader("test_only_tiny")
    def load_tiny(root: Path, *, score: float = 1.0) -> IQATable:
        return IQATable("tiny", [ImageRecord(root / "a.png", score)], (0.0, 5.0))

    try:
        table = load_dataset("test_only_tiny", tmp_path, score=2.5)
        assert table.records[0].mos == 2.5 and table.records[0].path == tmp_path.resolve() / "a.png"
        assert get_loader("test_only_tiny") is load_tiny
        with pytest.raises(ValueError, match="already registered"):
            register_loader("test_only_tiny")(lambda root: None)
    finally:
        from edgeiqa.data import loaders

        loaders._LOADERS.pop("test_only_tiny", None)


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nope'}: dataset path does not exist")):
        load_dataset("livec", tmp_path / "nope")


# --- UHD-IQA ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["sets", "challenge", "flat"])
def test_uhdiqa_reads_official_split_in_each_layout(tmp_path, layout):
    write_uhdiqa(tmp_path, layout)
    table = load_dataset("uhdiqa", tmp_path)
    assert table.name == "uhdiqa" and table.mos_range == (0.0, 1.0)
    assert [(r.path.name, r.mos) for r in table.records] == [(n, m) for n, m, _ in UHD_ROWS]
    assert table.split_sizes() == {"train": 3, "val": 1, "test": 1}
    assert table.has_official_split and table.split("test")[0].path.name == "5.jpg"
    assert all(r.path.is_absolute() and r.path.is_file() and r.group == r.path.stem for r in table.records)


def test_uhdiqa_explicit_image_dir_is_the_only_place_looked(tmp_path):
    write_uhdiqa(tmp_path, "flat")
    assert len(load_dataset("uhdiqa", tmp_path, image_dir="images")) == 5
    expected = f"line 2: image '1.jpg' does not exist (looked in {tmp_path / 'training'})"
    with pytest.raises(DataError, match=re.escape(expected)):
        load_dataset("uhdiqa", tmp_path, image_dir="training")


def test_uhdiqa_unknown_set_value(tmp_path):
    meta = write_uhdiqa(tmp_path)
    meta.write_text(meta.read_text().replace("validation", "holdout"))
    expected = f"{meta}, line 5: 'set' is 'holdout'; expected training/validation/test"
    with pytest.raises(DataError, match=re.escape(expected)):
        load_dataset("uhdiqa", tmp_path)


# --- KonIQ-10k ----------------------------------------------------------------------------------


def test_koniq_zscore_mos_with_official_split(tmp_path):
    write_koniq(tmp_path)
    table = load_dataset("koniq10k", tmp_path)
    assert table.mos_range == (1.0, 100.0) and table.has_official_split
    assert [(r.path.name, r.mos, r.std) for r in table.records] == [(n, z, None) for n, _, _, z, _ in KONIQ_ROWS]
    assert [r.split for r in table.records] == ["train", "test", "train", "val"]
    assert all(r.path.parent.name == "1024x768" for r in table.records)


def test_koniq_raw_five_point_mos_with_sd(tmp_path):
    write_koniq(tmp_path)
    table = load_dataset("koniq10k", tmp_path, mos_scale=5)
    assert table.mos_range == (1.0, 5.0)
    assert [(r.mos, r.std) for r in table.records] == [(m, sd) for _, m, sd, _, _ in KONIQ_ROWS]


def test_koniq_without_sets_file_has_no_split_and_accepts_512x384(tmp_path):
    write_koniq(tmp_path, sets=False, folder="512x384")
    table = load_dataset("koniq10k", tmp_path)
    assert not table.has_official_split and table.split_sizes() == {"": 4}
    assert all(r.path.parent.name == "512x384" for r in table.records)


def test_koniq_sets_file_alone_is_enough_for_the_100_point_scale(tmp_path):
    write_koniq(tmp_path, scores=False)
    table = load_dataset("koniq10k", tmp_path)
    expected = [(77.38, "train"), (68.73, "test"), (75.11, "train"), (71.2, "val")]
    assert [(r.mos, r.split) for r in table.records] == expected
    expected = "holds only the 100-point MOS; mos_scale=5 needs koniq10k_scores_and_distributions.csv"
    with pytest.raises(DataError, match=expected):
        load_dataset("koniq10k", tmp_path, mos_scale=5)


def test_koniq_errors(tmp_path):
    expected = f"{tmp_path}: KonIQ-10k image folder not found (expected 1024x768/ or 512x384/)"
    with pytest.raises(DataError, match=re.escape(expected)):
        load_dataset("koniq10k", tmp_path)
    write_koniq(tmp_path)
    sets = tmp_path / "koniq10k_distributions_sets.csv"
    sets.write_text("\n".join(sets.read_text().splitlines()[:-1]) + "\n")  # drop the last image's split
    with pytest.raises(DataError, match=re.escape("line 5: image '10043785683.jpg' has no split in")):
        load_dataset("koniq10k", tmp_path)
    with pytest.raises(ConfigError, match="mos_scale must be 100"):
        load_dataset("koniq10k", tmp_path, mos_scale=10)


# --- SPAQ ---------------------------------------------------------------------------------------


def test_spaq_csv_export(tmp_path):
    write_spaq(tmp_path)
    table = load_dataset("spaq", tmp_path)
    assert table.mos_range == (0.0, 100.0) and table.split_sizes() == {"": 3}
    assert [(r.path.name, r.mos) for r in table.records] == SPAQ_ROWS


def test_spaq_accepts_the_other_extension_of_a_listed_image(tmp_path):
    meta = write_spaq(tmp_path)
    meta.write_text(meta.read_text().replace("00002.jpg", "00002.png"))
    assert load_dataset("spaq", tmp_path).records[1].path.name == "00002.jpg"


def test_spaq_xlsx_without_openpyxl_says_what_to_do(tmp_path, monkeypatch):
    meta = write_spaq(tmp_path, xlsx=True)
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # import fails even where it is installed
    expected = (
        f"{meta}: reading .xlsx needs the 'openpyxl' package; export the sheet to CSV as "
        "'MOS and Image attribute scores.csv' or run: pip install openpyxl"
    )
    with pytest.raises(DataError, match=re.escape(expected)):
        load_dataset("spaq", tmp_path)


def test_spaq_xlsx_through_openpyxl(tmp_path, monkeypatch):
    write_spaq(tmp_path, xlsx=True)
    sheet_rows = [tuple(SPAQ_HEADER), (None,) * 7] + [(n, m, 1, 2, 3, 4, 5) for n, m in SPAQ_ROWS]
    sheet_rows[4] = ("00003.jpg", "bad", 1, 2, 3, 4, 5)
    sheet = types.SimpleNamespace(iter_rows=lambda min_row, values_only: iter(sheet_rows[min_row - 1 :]))
    book = types.SimpleNamespace(worksheets=[sheet])
    monkeypatch.setitem(sys.modules, "openpyxl", types.SimpleNamespace(load_workbook=lambda *a, **k: book))
    # line numbers are the spreadsheet's: header 1, blank 2, data 3..5
    with pytest.raises(DataError, match=re.escape("scores.xlsx, line 5: 'MOS' is 'bad', not a number")):
        load_dataset("spaq", tmp_path)
    sheet_rows[4] = ("00003.jpg", 18.25, 1, 2, 3, 4, 5)
    assert [(r.path.name, r.mos) for r in load_dataset("spaq", tmp_path).records] == SPAQ_ROWS


# --- LIVE-C -------------------------------------------------------------------------------------


def test_livec_mat_drops_the_seven_training_images(tmp_path):
    write_livec_mat(tmp_path)
    table = load_dataset("livec", tmp_path)
    assert table.mos_range == (0.0, 100.0) and not table.has_official_split
    assert [(r.path.name, r.mos, r.std) for r in table.records] == LIVEC_TEST
    assert all(r.path.parent == tmp_path.resolve() / "Images" for r in table.records)


def test_livec_mat_can_keep_the_training_images(tmp_path):
    write_livec_mat(tmp_path, with_std=False)
    table = load_dataset("livec", tmp_path, include_training_images=True)
    assert len(table) == 10 and table.records[0].path.parent.name == "trainingImages"
    assert table.records[0].mos == 50.0 and all(r.std is None for r in table.records)


def test_livec_mat_errors(tmp_path):
    write_livec_mat(tmp_path)
    from scipy.io import savemat

    mos_mat = tmp_path / "Data" / "AllMOS_release.mat"
    savemat(mos_mat, {"AllMOS_release": [[1.0] * 7 + [2.0, math.nan, 3.0]]})
    with pytest.raises(DataError, match=re.escape(f"{mos_mat}, entry 9 (101.JPG): MOS is nan")):
        load_dataset("livec", tmp_path)
    savemat(mos_mat, {"AllMOS_release": [[1.0] * 9]})
    expected = f"{mos_mat}: 'AllMOS_release' has 9 values but AllImages_release.mat lists 10"
    with pytest.raises(DataError, match=re.escape(expected)):
        load_dataset("livec", tmp_path)
    savemat(mos_mat, {"mos": [[1.0] * 10]})
    with pytest.raises(DataError, match=re.escape(f"{mos_mat}: no variable 'AllMOS_release' (found ['mos'])")):
        load_dataset("livec", tmp_path)


def test_livec_csv_form(tmp_path):
    write_livec_csv(tmp_path)
    table = load_dataset("livec", tmp_path)
    assert [(r.path.name, r.mos, r.std, r.group) for r in table.records] == [
        ("533.JPG", 73.6235, 20.4016, "533"),
        ("534.JPG", 52.7097, 22.7935, "534"),
    ]


@pytest.mark.skipif(not (LIVEC_DEV / "mos.csv").is_file(), reason="development copy of LIVE-C not present")
def test_livec_development_copy():
    table = load_dataset("livec", LIVEC_DEV)
    assert len(table) == 627 and len({r.group for r in table.records}) == 627
    assert all(0.0 <= r.mos <= 100.0 and r.std is not None for r in table.records)
    assert table.split_sizes() == {"": 627}
    assert table.random_split(0, (0.8, 0.0, 0.2)).split_sizes() == {"train": 502, "test": 125}


# --- KADID-10k ----------------------------------------------------------------------------------


def test_kadid_groups_by_reference(tmp_path):
    write_kadid(tmp_path)
    table = load_dataset("kadid10k", tmp_path)
    assert table.mos_range == (1.0, 5.0)
    got = [(r.path.name, r.group, r.mos, r.std) for r in table.records]
    assert got == [(d, Path(ref).stem, m, pytest.approx(math.sqrt(v))) for d, ref, m, v in KADID_ROWS]


# --- generic CSV --------------------------------------------------------------------------------


def test_csv_reads_the_synthetic_dataset_layout(tmp_path):
    write_synthetic(tmp_path / "synthetic")
    table = load_dataset("csv", tmp_path / "synthetic")
    assert table.name == "synthetic" and table.mos_range == (35.5, 80.0) and table.has_official_split
    assert [(r.path.name, r.mos, r.split, r.group) for r in table.records] == [
        (Path(p).name, m, s, src) for p, m, s, src, _, _ in SYNTH_ROWS
    ]
    assert table.records[0].path == (tmp_path / "synthetic" / SYNTH_ROWS[0][0]).resolve()


def test_csv_file_root_group_column_and_declared_range(tmp_path):
    write_image(tmp_path / "a" / "x.png", 1)
    write_image(tmp_path / "b.png", 2)
    meta = write_csv(
        tmp_path / "lists" / "scores.csv",
        ["path", "mos", "group", "std"],
        [("../a/x.png", 1.5, "g1", 0.2), (str(tmp_path / "b.png"), 4.0, "", "")],
    )
    table = load_dataset("csv", meta, mos_range=(1, 5))
    assert table.mos_range == (1.0, 5.0) and table.split_sizes() == {"": 2}
    assert [(r.path, r.group, r.std) for r in table.records] == [
        (tmp_path.resolve() / "a" / "x.png", "g1", 0.2),
        (tmp_path.resolve() / "b.png", "b", None),
    ]


def test_csv_refuses_a_half_split_table(tmp_path):
    write_synthetic(tmp_path)
    meta = tmp_path / "mos.csv"
    meta.write_text(meta.read_text().replace(",val,", ",,"))
    with pytest.raises(DataError, match=re.escape(f"{meta}, line 4: empty 'split' while other rows have one")):
        load_dataset("csv", tmp_path)


# --- bad metadata: every message names the file and the line (header = line 1) -----------------

BAD_CASES = {
    "wrong column": (
        "dist_img,reference,dmos,var",
        None,
        "missing column(s) ['ref_img']; expected ['dist_img', 'ref_img', 'dmos', 'var'], "
        "found ['dist_img', 'reference', 'dmos', 'var']",
    ),
    "NaN score": (None, "I01_01_05.png,I01.png,NaN,0.49", "line 3: 'dmos' is 'NaN'; a score must be a finite number"),
    "non-numeric": (None, "I01_01_05.png,I01.png,good,0.49", "line 3: 'dmos' is 'good', not a number"),
    "empty score": (None, "I01_01_05.png,I01.png,,0.49", "line 3: empty 'dmos' value"),
    "missing image": (
        None,
        "I09_01_05.png,I09.png,2.1,0.49",
        "line 3: image 'I09_01_05.png' does not exist (looked in ",
    ),
    "duplicate": (
        None,
        "I01_01_01.png,I01.png,2.1,0.49",
        "line 3: image 'I01_01_01.png' is listed twice (first at line 2)",
    ),
    "short row": (None, "I01_01_05.png,I01.png,2.1", "line 3: 3 fields but the header has 4"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_metadata_names_file_and_line(tmp_path, case):
    header, line3, message = BAD_CASES[case]
    meta = write_kadid(tmp_path)
    lines = meta.read_text().splitlines()
    if header is not None:
        lines[0] = header
    if line3 is not None:
        lines[2] = line3
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_dataset("kadid10k", tmp_path)
    assert str(info.value).startswith(f"{meta}") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_line_numbers_count_blank_lines_as_the_file_shows_them(tmp_path):
    meta = write_kadid(tmp_path)
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(lines[:2] + ["", lines[2].replace("2.1", "x")] + lines[3:]) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{meta}, line 4: 'dmos' is 'x', not a number")):
        load_dataset("kadid10k", tmp_path)


def test_missing_metadata_file_and_empty_dataset(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}: KADID-10k metadata not found (expected dmos.csv)")):
        load_dataset("kadid10k", tmp_path)
    write_csv(tmp_path / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], [])
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'dmos.csv'}: no data rows (empty dataset)")):
        load_dataset("kadid10k", tmp_path)
    (tmp_path / "dmos.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_dataset("kadid10k", tmp_path)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'mos.csv'}: metadata file not found")):
        load_dataset("csv", tmp_path)


def test_semicolon_export_and_bom_are_read(tmp_path):
    write_image(tmp_path / "images" / "a.png", 1)
    (tmp_path / "mos.csv").write_text("\ufeffimg_name;mos;std\na.png;12.5;3\n", encoding="utf-8")
    assert load_dataset("livec", tmp_path).records[0].mos == 12.5


# --- records and random splits ------------------------------------------------------------------


def test_record_defaults_and_checks(tmp_path):
    record = ImageRecord(str(tmp_path / "ref7_blur.png"), 3)
    assert record.path == tmp_path / "ref7_blur.png" and record.group == "ref7_blur" and record.mos == 3.0
    with pytest.raises(ValueError, match="must be absolute"):
        ImageRecord(Path("rel.png"), 1.0)
    with pytest.raises(ValueError, match="split must be one of"):
        ImageRecord(tmp_path / "a.png", 1.0, "training")


def grouped_table(tmp_path: Path, groups: int = 20, per_group: int = 3) -> IQATable:
    records = [
        ImageRecord(tmp_path / f"g{g}_{i}.png", g + i, group=f"g{g}") for g in range(groups) for i in range(per_group)
    ]
    return IQATable("t", records, (0.0, 30.0))


def test_random_split_is_by_group_deterministic_and_seed_dependent(tmp_path):
    table = grouped_table(tmp_path)
    split = table.random_split(seed=3)
    sides = {}
    for r in split.records:
        sides.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in sides.values())  # no group on two sides
    assert split.split_sizes() == {"train": 42, "val": 9, "test": 9}  # 14 / 3 / 3 groups of 3
    assert split.split_seed == 3 and split.is_split and not split.has_official_split
    assert [r.split for r in table.random_split(seed=3).records] == [r.split for r in split.records]
    assert [r.split for r in table.random_split(seed=4).records] != [r.split for r in split.records]
    shuffled = IQATable("t", table.records[::-1], table.mos_range).random_split(seed=3)
    assert {r.path: r.split for r in shuffled.records} == {r.path: r.split for r in split.records}
    assert table.split_sizes() == {"": 60}  # the original is untouched


def test_random_split_zero_fraction_and_small_tables(tmp_path):
    split = grouped_table(tmp_path, groups=10, per_group=1).random_split(0, (0.8, 0.0, 0.2))
    assert split.split_sizes() == {"train": 8, "test": 2} and split.split("val") == []
    tiny = grouped_table(tmp_path, groups=3, per_group=2).random_split(0)  # 0.7/0.15/0.15 of 3 groups
    assert sorted(tiny.split_sizes().items()) == [("test", 2), ("train", 2), ("val", 2)]


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.7, 0.2, 0.2), (1.2, -0.1, -0.1)])
def test_random_split_refuses_bad_fractions(tmp_path, fractions):
    with pytest.raises(ConfigError, match="split fractions must be 3 non-negative numbers"):
        grouped_table(tmp_path).random_split(0, fractions)


def test_split_name_is_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'training'"):
        grouped_table(tmp_path).split("training")


def test_folds_test_every_group_exactly_once_and_keep_groups_whole(tmp_path):
    table = grouped_table(tmp_path, groups=23)  # 23 groups: folds of 4 or 5 groups
    folds = [table.with_split("folds", k, (0.7, 0.1, 0.2)) for k in range(5)]
    tested = [{r.group for r in f.split("test")} for f in folds]
    assert set().union(*tested) == {r.group for r in table.records}
    assert sum(len(t) for t in tested) == 23  # disjoint: each group is tested in one fold only
    for fold in folds:
        sides = {}
        for r in fold.records:
            sides.setdefault(r.group, set()).add(r.split)
        assert all(len(s) == 1 for s in sides.values())
        assert len({r.group for r in fold.split("val")}) == 2  # 0.1 of 23 groups
        assert len({r.group for r in fold.split("train")}) in (16, 17)  # the rest
    shuffled = IQATable("t", table.records[::-1], table.mos_range).fold_split(2, (0.7, 0.1, 0.2))
    assert {r.path: r.split for r in shuffled.records} == {r.path: r.split for r in folds[2].records}


@pytest.mark.parametrize(
    ("fold", "fractions", "message"),
    [(5, (0.7, 0.1, 0.2), r"fold must be in 0..4"), (0, (0.6, 0.1, 0.3), r"test fraction of 1/k")],
)
def test_folds_refuse_a_fold_out_of_range_and_a_test_fraction_not_one_over_k(tmp_path, fold, fractions, message):
    with pytest.raises(ConfigError, match=message):
        grouped_table(tmp_path).with_split("folds", fold, fractions)
