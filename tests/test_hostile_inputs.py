"""Hostile inputs, as a table: (case, command, expected exit code, expected fragment of stderr).

Each row drives ``edgeiqa.cli.main([...])`` in this process on tiny artifacts (the runtime tests'
torch-free ONNX model) and tiny images, so the whole table runs in seconds. The rows are the
reproductions of issue 13: tampered artifacts, edited manifests, bad flag values, unwritable
outputs, paths the OS refuses, float TIFFs, decompression bombs, bad configs.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from runtime.runtime_helpers import build_tiny_onnx, smooth_image, tiny_contract, write_tiny_manifest

from edgeiqa.cli import main
from edgeiqa.runtime.manifest import manifest_path_for, read_manifest

Setup = Callable[[Path], list[str]]


def _artifact(tmp: Path) -> Path:
    path = build_tiny_onnx(tmp / "tiny.onnx")
    write_tiny_manifest(path, tiny_contract())
    return path


def _images(tmp: Path) -> Path:
    folder = tmp / "images"
    folder.mkdir(exist_ok=True)
    for i, (w, h) in enumerate([(64, 48), (50, 70)]):
        smooth_image(w, h, seed=i).save(folder / f"good{i}.png")
    return folder


def _scale_weights(path: Path, factor: float = 1.5) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name == "w_image":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * factor, init.name))
    onnx.save(model, str(path))


def _edit_manifest(path: Path, **preprocess: object) -> None:
    manifest = manifest_path_for(path)
    data = json.loads(manifest.read_text())
    for key, value in preprocess.items():
        data["preprocess"][key] = value
    manifest.write_text(json.dumps(data))  # by hand: the sealed contract digest is left as it was


def predict_tampered_weights(tmp: Path) -> list[str]:
    art = _artifact(tmp)
    _scale_weights(art)
    return ["predict", str(art), str(_images(tmp)), "--quiet"]


def predict_byte_appended(tmp: Path) -> list[str]:
    art = _artifact(tmp)
    with open(art, "ab") as fh:
        fh.write(b"\0")
    return ["predict", str(art), str(_images(tmp)), "--quiet"]


def predict_edited_working_size(tmp: Path) -> list[str]:
    art = _artifact(tmp)
    _edit_manifest(art, working_size=64)
    return ["predict", str(art), str(_images(tmp)), "--quiet"]


def predict_edited_grid_no_verify(tmp: Path) -> list[str]:
    art = build_tiny_onnx(tmp / "fixed.onnx")
    _fix_fragment_dims(art, 16)
    write_tiny_manifest(art, tiny_contract())
    _edit_manifest(art, fragments={"grid": 3, "patch": 8})
    return ["predict", str(art), str(_images(tmp)), "--quiet", "--no-verify"]


def _fix_fragment_dims(path: Path, side: int) -> None:
    """Give the graph's ``fragments`` input fixed spatial dims, as the real exporter does."""
    import onnx

    model = onnx.load(str(path))
    for inp in model.graph.input:
        if inp.name == "fragments":
            for dim in inp.type.tensor_type.shape.dim[2:]:
                dim.ClearField("dim_param")
                dim.dim_value = side
    onnx.save(model, str(path))


def predict_out_is_folder(tmp: Path) -> list[str]:
    (tmp / "outdir").mkdir()
    return ["predict", str(_artifact(tmp)), str(_images(tmp)), "--quiet", "--out", str(tmp / "outdir")]


def predict_out_unwritable(tmp: Path) -> list[str]:
    return ["predict", str(_artifact(tmp)), str(_images(tmp)), "--quiet", "--out", "/proc/edgeiqa-x/scores.csv"]


def predict_name_too_long(tmp: Path) -> list[str]:
    return ["predict", str(_artifact(tmp)), str(_images(tmp)), str(tmp / ("a" * 300 + ".jpg")), "--quiet"]


def predict_float_tiff_out_of_range(tmp: Path) -> list[str]:
    folder = _images(tmp)
    Image.fromarray(np.full((40, 40), 4000.0, np.float32), mode="F").save(folder / "hdr.tif")
    return ["predict", str(_artifact(tmp)), str(folder), "--quiet"]


def predict_bomb_quotes_the_manifest(tmp: Path) -> list[str]:
    folder = _images(tmp)
    smooth_image(400, 300).save(folder / "big.png")  # 120,000 px > the tiny contract's 100,000
    return ["predict", str(_artifact(tmp)), str(folder), "--quiet"]


def predict_openvino_without_bin(tmp: Path) -> list[str]:
    import openvino as ov

    xml = tmp / "tiny.xml"
    ov.save_model(ov.Core().read_model(str(build_tiny_onnx(tmp / "src.onnx"))), str(xml), compress_to_fp16=False)
    write_tiny_manifest(xml, tiny_contract(), fmt="openvino")
    xml.with_suffix(".bin").unlink()
    return ["predict", str(xml), str(_images(tmp)), "--quiet"]


def _args(*argv: str) -> Setup:
    return lambda tmp: list(argv)


def _experiment(tmp: Path, text: str) -> list[str]:
    config = tmp / "exp.yaml"
    config.write_text(text)
    return ["distill", "--config", str(config), "--out", str(tmp / "run"), "--quiet"]


def _tiny_yaml(tmp: Path, **edits: str) -> str:
    csv_path = tmp / "mos.csv"
    csv_path.write_text("path,mos\n")
    text = (
        f"name: tiny\nseed: {edits.get('seed', '0')}\nout: {tmp / 'run'}\n"
        f"data: {{dataset: csv, root: {csv_path}}}\n"
        "teacher: {model: test_eiqanet}\n"
        "student:\n  model: test_eqcnet\n  feature_pairs: [{student: embed, teacher: 'head:input'}]\n"
        f"  finetune:\n    optim: {{epochs: 1, batch_size: {edits.get('batch_size', '8')}}}\n"
        f"    losses: {{{edits.get('loss', 'regression')}: 1.0}}\n"
    )
    return text


CASES: list[tuple[str, Setup, int, str]] = [
    ("artifact weights scaled x1.5", predict_tampered_weights, 2, "recorded in"),
    ("artifact with a byte appended", predict_byte_appended, 2, "--no-verify"),
    ("manifest working_size edited", predict_edited_working_size, 2, "key 'preprocess' was edited after export"),
    (
        "manifest fragment grid edited, --no-verify",
        predict_edited_grid_no_verify,
        2,
        "the graph's input 'fragments' has shape [?, 3, 16, 16] but the manifest's preprocessing contract "
        "produces [?, 3, 24, 24]",
    ),
    ("--out is a folder", predict_out_is_folder, 2, "is a folder"),
    ("--out under /proc", predict_out_unwritable, 2, "cannot write there"),
    ("ENAMETOOLONG path beside good files", predict_name_too_long, 1, "cannot open (File name too long)"),
    ("float TIFF of 0-4000", predict_float_tiff_out_of_range, 1, "neither the 0-1 nor the 0-255 scale"),
    (
        "bomb names the runtime option, not a manifest edit",
        predict_bomb_quotes_the_manifest,
        1,
        "exceeds the limit of 100,000 (decompression bomb guard; raise it for this run with --max-pixels N",
    ),
    ("OpenVINO IR without its .bin", predict_openvino_without_bin, 2, "its weights file tiny.bin is not beside it"),
    (
        "predict --workers -1",
        _args("predict", "x.onnx", "a.jpg", "--workers", "-1"),
        2,
        "argument --workers: expected an integer >= 1",
    ),
    ("predict --batch 0", _args("predict", "x.onnx", "a.jpg", "--batch", "0"), 2, "argument --batch"),
    (
        "bench --split bogus",
        _args("bench", "x.onnx", "--out", "r.json", "--split", "bogus"),
        2,
        "argument --split: invalid choice",
    ),
    (
        "export --tol-fp32 -1",
        _args("export", "ckpt", "--format", "onnx", "--precision", "fp32", "--out", "o", "--tol-fp32", "-1"),
        2,
        "argument --tol-fp32: expected a number >= 0",
    ),
    ("info --input 0x0", _args("info", "test_eqcnet", "--input", "0x0"), 2, "both sides >= 1"),
    ("empty experiment YAML", lambda tmp: _experiment(tmp, "# nothing here\n"), 2, "the file is empty"),
    (
        "YAML syntax error has a line",
        lambda tmp: _experiment(tmp, "name: x\nseed: [1, 2\nout: y\n"),
        2,
        "exp.yaml:3:4: not valid YAML",
    ),
    (
        "loss typo in student.finetune",
        lambda tmp: _experiment(tmp, _tiny_yaml(tmp, loss="regresion")),
        2,
        "student.finetune.losses: unknown loss name(s) ['regresion']",
    ),
    (
        "batch_size: 0",
        lambda tmp: _experiment(tmp, _tiny_yaml(tmp, batch_size="0")),
        2,
        "student.finetune.optim.batch_size: must be an integer >= 1, got 0",
    ),
    ("seed: -1 in the YAML", lambda tmp: _experiment(tmp, _tiny_yaml(tmp, seed="-1")), 2, "seed: must be an integer"),
]


@pytest.mark.parametrize("case, setup, code, fragment", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(case, setup, code, fragment, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = setup(tmp_path)
    assert main(argv) == code, capsys.readouterr().err
    err = capsys.readouterr().err
    assert fragment in err, err
    if code == 2:  # a refusal is one line, never a traceback
        assert err.startswith("edgeiqa: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()  # refused configs create no output folder


def test_per_file_failures_exit_1_and_good_files_are_written(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    (folder / "empty.jpg").write_bytes(b"")
    long_name = str(tmp_path / ("b" * 300 + ".png"))
    out = tmp_path / "scores.csv"
    assert main(["predict", str(art), str(folder), long_name, "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "empty.jpg" in err and "File name too long" in err and "scored 2 file(s), 2 failed" in err
    rows = {Path(r["path"]).name: r for r in csv.DictReader(out.open())}
    assert float(rows["good0.png"]["score"]) > 0 and float(rows["good1.png"]["score"]) > 0
    assert rows["empty.jpg"]["score"] == "" and rows["empty.jpg"]["error"]


def test_an_unreadable_folder_is_a_listed_failure(tmp_path, capsys, monkeypatch) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    locked = folder / "locked"
    locked.mkdir()
    smooth_image(40, 40).save(locked / "hidden_from_us.png")
    real_scandir = os.scandir

    def scandir(path="."):  # EACCES as a non-root user gets it (root reads everything)
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "s.csv"
    assert main(["predict", str(art), str(folder), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{locked}: cannot read folder (Permission denied)" in err
    assert "scored 2 file(s), 1 failed" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_a_listed_failure(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    secret = folder / "secret.png"
    smooth_image(40, 40).save(secret)
    secret.chmod(0)
    assert main(["predict", str(art), str(folder), "--quiet"]) == 1
    assert "secret.png: cannot open (Permission denied)" in capsys.readouterr().err


def test_a_float_tiff_is_scaled_by_its_range(tmp_path) -> None:
    from edgeiqa.runtime.predictor import Predictor

    pixels = np.asarray(smooth_image(48, 40).convert("L"), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "u8.png")
    Image.fromarray(pixels.astype(np.float32), mode="F").save(tmp_path / "f255.tif")
    Image.fromarray(pixels.astype(np.float32) / 255.0, mode="F").save(tmp_path / "f1.tif")
    with Predictor.load(_artifact(tmp_path), threads=1) as predictor:
        scores = predictor([tmp_path / "u8.png", tmp_path / "f255.tif", tmp_path / "f1.tif"])
        decoded = np.asarray(predictor._decode(str(tmp_path / "f255.tif"), predictor.contract))
    assert abs(decoded.mean() - pixels.mean()) < 0.6  # was 227 for a 115 image: clipped as 0-1
    np.testing.assert_allclose(scores[1:], scores[0], atol=1e-3)


def test_tampered_artifacts_are_refused_by_predictor_load_unless_told(tmp_path) -> None:
    from edgeiqa.runtime.manifest import IntegrityError
    from edgeiqa.runtime.predictor import Predictor

    art = _artifact(tmp_path)
    recorded = read_manifest(manifest_path_for(art)).sha256["artifact"]
    _scale_weights(art)
    with pytest.raises(IntegrityError) as info:
        Predictor.load(art)
    message = str(info.value)
    assert recorded in message and "\n" not in message and "--no-verify" in message
    with Predictor.load(art, verify=False, threads=1) as predictor:  # the override runs it
        assert np.isfinite(predictor([smooth_image(40, 40)])[0])


def test_bench_refuses_a_tampered_artifact_and_all_failed_batches(tmp_path, capsys) -> None:
    from bench.bench_helpers import tiny_artifact, tiny_dataset

    data = tiny_dataset(tmp_path / "data", n=6)
    (data.parent / "img3.png").write_bytes(b"not a png")  # one corrupt image (not the timing one)
    good = tiny_artifact(tmp_path, "good.onnx", "linear")
    tampered = tiny_artifact(tmp_path, "bad.onnx", "linear")
    with open(tampered, "ab") as fh:
        fh.write(b"\0")
    static2 = tiny_artifact(tmp_path, "static2.onnx", "linear", batch=2)  # refuses batch 1
    common = ["--data", str(data), "--split", "all", "--min-seconds", "0", "--warmup", "0", "--in-process"]
    assert main(["bench", str(good), "--out", str(tmp_path / "g.json"), *common]) == 0
    err = capsys.readouterr().err
    assert "1 image(s) failed to decode and are left out of the accuracy" in err and "img3.png" in err
    assert main(["bench", str(tampered), "--out", str(tmp_path / "t.json"), *common]) == 1
    assert "does not match" in capsys.readouterr().err
    assert main(["bench", str(static2), "--out", str(tmp_path / "s.json"), "--batch", "1", *common]) == 1
    captured = capsys.readouterr()
    assert "every batch size failed" in captured.err and "0 artifact(s) benchmarked" in captured.out


def test_export_verify_refuses_a_tampered_artifact(tmp_path) -> None:
    """export's verify path: weights scaled -> the gate fails; a byte appended -> refused on load."""
    pytest.importorskip("torch")
    from export.export_helpers import tiny_model, write_images

    from edgeiqa.errors import EdgeIQAError
    from edgeiqa.export import export_artifact
    from edgeiqa.export.exporter import verify_artifact
    from edgeiqa.export.images import ImageSet

    paths = write_images(tmp_path / "val", 6, seed=2)
    val = ImageSet.from_paths(paths, mos=[10.0 + 5 * i for i in range(6)], source="val")
    model = tiny_model()
    result = export_artifact(model, "onnx", "fp32", tmp_path / "out", val=val)
    with open(result.artifact, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(EdgeIQAError):
        verify_artifact(result.artifact, model, val)
    from edgeiqa.runtime.predictor import Predictor

    with pytest.raises(EdgeIQAError, match="does not match"):
        Predictor.load(result.artifact, allow_invalid=True)
