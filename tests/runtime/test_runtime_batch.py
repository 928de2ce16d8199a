"""predict_files: folders expanded, every bad file recorded on one line, the rest scored; atomic CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import smooth_image

from edgeiqa.runtime.batch import (
    BatchResult,
    FileResult,
    expand_paths,
    predict_files,
    scores_csv_text,
    write_scores_csv,
)
from edgeiqa.runtime.predictor import Predictor


@pytest.fixture
def predictor(tiny_onnx: Path):
    with Predictor.load(tiny_onnx, threads=1) as pred:
        yield pred


@pytest.fixture
def messy_folder(tmp_path: Path, image_files) -> tuple[Path, dict[str, str]]:
    """The good images (in images/), plus one bad file of each kind, and the reason each must give."""
    folder = image_files[0].parent
    nested = folder / "nested" / "deeper"
    nested.mkdir(parents=True)
    smooth_image(40, 40, seed=9).save(nested / "deep.png")  # >= 32 px: smaller is refused
    good_jpeg = image_files[1].read_bytes()
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    (folder / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("this is text, not a PNG")
    smooth_image(400, 300).save(folder / "bomb.png")  # 120,000 px > max_pixels 100,000 in the contract
    (folder / "readme.txt").write_text("skipped: not an image extension")
    (folder / ".hidden.jpg").write_bytes(b"skipped: hidden")
    reasons = {
        "corrupt.jpg": "not a recognised image",  # a JPEG marker, then garbage
        "truncated.jpg": "corrupt or truncated image",
        "empty.png": "not a recognised image (empty file)",
        "notes.png": "not a recognised image",
        "bomb.png": "400x300 = 120,000 pixels exceeds the limit of 100,000",
    }
    return folder, reasons


def test_expand_paths_is_recursive_sorted_and_filtered(messy_folder) -> None:
    folder, _ = messy_folder
    names = [Path(p).relative_to(folder).as_posix() for p in expand_paths([folder])]
    assert names == [
        "bomb.png",
        "corrupt.jpg",
        "empty.png",
        "img0.png",
        "img1.jpg",
        "img2.png",
        "img3.jpg",
        "notes.png",
        "truncated.jpg",
        "nested/deeper/deep.png",
    ]
    explicit = folder / "readme.txt"
    assert expand_paths([explicit, folder / "img0.png", explicit]) == [str(explicit), str(folder / "img0.png")]


def test_bad_files_are_one_line_each_and_the_rest_are_scored(predictor, messy_folder, image_files) -> None:
    folder, reasons = messy_folder
    missing = folder / "gone.jpg"
    result = predict_files(predictor, [folder, missing], batch_size=3, workers=2, progress=False)
    assert not result.ok
    failed = {Path(r.path).name: r.error for r in result.failed}
    assert set(failed) == set(reasons) | {"gone.jpg"}
    for name, reason in reasons.items():
        assert reason in failed[name], (name, failed[name])
    assert failed["gone.jpg"] == "cannot open (No such file or directory)"
    lines = result.failure_lines()
    assert len(lines) == 6 and all("\n" not in line for line in lines)
    assert f"{missing}: cannot open (No such file or directory)" in lines
    scored = {r.path: r.score for r in result.scored}
    assert len(scored) == 5
    expected = predictor(image_files)
    np.testing.assert_allclose([scored[str(p)] for p in image_files], expected, atol=1e-6)
    assert result.seconds > 0


def test_all_good_is_ok(predictor, image_files) -> None:
    result = predict_files(predictor, image_files, batch_size=2, progress=False)
    assert (
        result.ok and result.failure_lines() == [] and [r.path for r in result.results] == [str(p) for p in image_files]
    )


def test_csv_is_written_atomically_with_scores_and_reasons(tmp_path: Path) -> None:
    result = BatchResult(
        [FileResult("a.jpg", 0.5123456789), FileResult("b, c.png", None, "corrupt or truncated image")]
    )
    assert scores_csv_text(result) == 'path,score,error\na.jpg,0.512346,\n"b, c.png",,corrupt or truncated image\n'
    out = tmp_path / "out" / "scores.csv"
    write_scores_csv(result, out)
    write_scores_csv(result, out)  # overwrite in place
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {"path": "a.jpg", "score": "0.512346", "error": ""},
        {"path": "b, c.png", "score": "", "error": "corrupt or truncated image"},
    ]
    assert [p.name for p in out.parent.iterdir()] == ["scores.csv"]
