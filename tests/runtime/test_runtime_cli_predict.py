"""`edgeiqa predict` end to end: scores good files, names bad ones, and says so in its exit code."""

from __future__ import annotations

import csv

from edgeiqa.cli import main
from edgeiqa.runtime.predictor import Predictor


def test_predict_scores_a_folder_and_reports_a_bad_file(tiny_onnx, image_files, tmp_path, capsys) -> None:
    folder = image_files[0].parent
    (folder / "broken.jpg").write_bytes(b"")
    out = tmp_path / "scores.csv"
    assert main(["predict", str(tiny_onnx), str(folder), "--out", str(out), "--quiet", "--batch", "2"]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "scored 4 file(s), 1 failed" in err
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(out.open())}
    assert rows["broken.jpg"]["score"] == "" and rows["broken.jpg"]["error"]
    with Predictor.load(tiny_onnx) as predictor:
        expected = predictor(image_files)
    for path, score in zip(image_files, expected):
        assert abs(float(rows[path.name]["score"]) - float(score)) < 1e-5


def test_predict_on_a_missing_manifest_is_one_line_and_exit_2(tmp_path, image_files, capsys) -> None:
    artifact = tmp_path / "lonely.onnx"
    artifact.write_bytes(b"not a model")
    assert main(["predict", str(artifact), str(image_files[0])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgeiqa: error: ") and "lonely.onnx.json" in err and err.count("\n") == 1
