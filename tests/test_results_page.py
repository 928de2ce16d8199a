"""docs/results.md is generated from studies/results/*.json and must match it byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from study_scripts import ROOT, STUDIES, load_study

GENERATOR = STUDIES / "make_results_page.py"


@pytest.fixture(scope="module")
def page_module():
    return load_study("make_results_page")


def test_results_page_is_up_to_date(page_module) -> None:
    expected = page_module.render()
    actual = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/results.md is out of date: run python studies/make_results_page.py"


def test_every_results_file_has_a_section(page_module) -> None:
    page = page_module.render()
    for path in sorted((ROOT / "studies" / "results").glob("*.json")):
        assert f"## {path.stem}\n" in page


@pytest.mark.parametrize(
    "data",
    [
        {"a": 1, "b": 0.123456, "c": "text", "d": [1, 2, 3], "e": {"nested": None}},
        {"rows": {"x": {"srcc": 0.9, "srcc_ci95": [0.8, 0.95]}, "y": {"other": "z"}}},
        {"runs": [{"seed": 0}], "aggregate": {}},  # a known shape, half-filled: falls back, no crash
        {"records": [{"n_images": 1}]},
        {"what": {"not": "a sentence"}, "note": 3},
        {"schema": "edgeiqa.bench/1", "results": [{"label": "a", "error": "boom"}]},
        {},
        [1, 2, 3],
        3.5,
    ],
)
def test_any_shape_renders_without_a_crash(page_module, tmp_path: Path, data) -> None:
    (tmp_path / "odd.json").write_text(json.dumps(data))
    page = page_module.render(tmp_path)
    assert "## odd\n" in page
    assert "Machine not recorded." in page or "Machine:" in page
    assert page_module.render(tmp_path) == page  # deterministic


def test_machine_comes_from_the_json_or_is_said_to_be_missing(page_module, tmp_path: Path) -> None:
    device = {"cpu_model": "Test CPU", "cores_usable": 4, "ram_bytes": 8 * 2**30}
    (tmp_path / "a.json").write_text(json.dumps({"device": device, "x": 1}))
    (tmp_path / "b.json").write_text(json.dumps({"x": 1}))
    page = page_module.render(tmp_path)
    assert "Machine: Test CPU, 4 usable cores, 8 GiB RAM." in page
    assert "Machine not recorded." in page


def test_generator_imports_without_torch_and_check_exits_nonzero_when_stale(tmp_path: Path) -> None:
    code = f"import runpy, sys; runpy.run_path({str(GENERATOR)!r}); assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    stale = tmp_path / "results.md"
    stale.write_text("stale\n")
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--out", str(stale)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 1 and "out of date" in done.stderr


def test_a_plot_beside_a_results_file_is_shown_under_its_section(page_module, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"x": 1}))
    (tmp_path / "b.json").write_text(json.dumps({"x": 2}))
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    page = page_module.render(tmp_path)
    assert "![b](../studies/results/b.png)" in page and "![a]" not in page
    assert page.index("![b]") > page.index("## b\n")


def test_an_interval_sits_beside_its_value_when_the_first_row_has_no_interval(page_module) -> None:
    rows = {"pooled": {"srcc": 0.85, "splits": 3}, "split 0": {"srcc": 0.88, "srcc_ci95": [0.83, 0.92], "splits": 1}}
    header, _, pooled, split = page_module.rows_table(rows, "variant")
    assert header == "| variant | SRCC [95 % CI] | splits |"
    assert pooled == "| pooled | 0.8500 | 3 |"
    assert split == "| split 0 | 0.8800 [0.8300, 0.9200] | 1 |"
