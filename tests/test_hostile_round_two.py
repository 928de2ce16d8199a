"""Issue 24: outputs that never clobber, manifests confined to their folder, inputs that stream.

The first half reproduces each failure the issue lists (each fails on the code before it); the second
half is a hostile battery: someone who wants to corrupt a user's files or make a model run from
somewhere else. Everything runs ``edgeiqa.cli.main`` in-process on the tiny ONNX fixture.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from runtime.runtime_helpers import build_tiny_onnx, smooth_image, tiny_contract, write_tiny_manifest
from test_hostile_inputs import _artifact, _images, _scale_weights

from edgeiqa.cli import main
from edgeiqa.runtime.manifest import manifest_path_for


def _predict(art: Path, *args: str) -> list[str]:
    return ["predict", str(art), *args, "--quiet"]


def _reseal(manifest: Path, edit) -> None:
    """Edit a manifest's JSON and seal it again the way an attacker who read the code would."""
    data = json.loads(manifest.read_text())
    edit(data)
    sha = {k: v for k, v in data["sha256"].items() if k != "manifest"}
    canonical = json.dumps({**data, "sha256": sha}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    data["sha256"]["manifest"] = hashlib.sha256(canonical.encode()).hexdigest()
    manifest.write_text(json.dumps(data))


def _edit(manifest: Path, edit) -> None:
    data = json.loads(manifest.read_text())
    edit(data)
    manifest.write_text(json.dumps(data))


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open(encoding="utf-8", newline="")))


# ---------------------------------------------------------------------------------- the failures


@pytest.mark.parametrize("target", ["artifact", "manifest", "image"])
def test_predict_out_never_replaces_an_input(tmp_path, capsys, target) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    victim = {"artifact": art, "manifest": manifest_path_for(art), "image": folder / "good0.png"}[target]
    before = victim.read_bytes()
    assert main(_predict(art, str(folder / "good0.png"), "--out", str(victim))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {victim}" in err
    assert victim.read_bytes() == before


def test_bench_out_never_replaces_the_artifact(tmp_path, capsys) -> None:
    art = _artifact(tmp_path)
    before = art.read_bytes()
    assert main(["bench", str(art), "--out", str(art), "--quiet"]) == 2
    assert "is one of this command's inputs" in capsys.readouterr().err
    assert art.read_bytes() == before


def test_a_manifest_cannot_point_at_etc_passwd(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    _reseal(manifest_path_for(art), lambda d: d.update(artifact="../../../../../etc/passwd"))
    assert main(_predict(art.with_name(art.name + ".json"), str(folder))) == 2
    err = capsys.readouterr().err
    assert "must name a file in the manifest's folder" in err
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() not in err


def test_a_manifest_cannot_run_a_model_from_elsewhere(tmp_path, capsys) -> None:
    elsewhere = build_tiny_onnx(_dir(tmp_path / "other") / "elsewhere.onnx")
    art, folder = _artifact(_dir(tmp_path / "home")), _images(tmp_path)
    manifest = manifest_path_for(art)
    digest = hashlib.sha256(elsewhere.read_bytes()).hexdigest()
    _reseal(manifest, lambda d: (d.update(artifact="../other/elsewhere.onnx"), d["sha256"].update(artifact=digest)))
    assert main(_predict(manifest, str(folder))) == 2
    assert "must name a file in the manifest's folder" in capsys.readouterr().err


def test_the_loaded_artifact_must_be_the_one_the_manifest_names(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    sibling = build_tiny_onnx(tmp_path / "sibling.onnx")
    _scale_weights(sibling, 3.0)
    manifest_path_for(sibling).write_bytes(manifest_path_for(art).read_bytes())  # names tiny.onnx
    assert main(_predict(sibling, str(folder))) == 2
    assert "describes the artifact 'tiny.onnx', not 'sibling.onnx'" in capsys.readouterr().err


def test_deleting_the_contract_digest_with_a_contract_edit_is_refused(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)

    def edit(data: dict) -> None:
        data["sha256"].pop("preprocess")
        data["preprocess"]["working_size"] = 64

    _edit(manifest_path_for(art), edit)
    assert main(_predict(art, str(folder))) == 2
    assert "was edited after export" in capsys.readouterr().err


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["score_mapping"].update(params=[0.0, 100.0, 0.0, 1.0]),
        lambda d: d.update(precision="int8"),
        lambda d: d.update(model="another_model"),
        lambda d: d["outputs"][0].update(name="other_output"),
    ],
    ids=["score_mapping", "precision", "model", "output name"],
)
def test_every_score_changing_field_is_sealed(tmp_path, capsys, edit) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    _edit(manifest_path_for(art), edit)
    assert main(_predict(art, str(folder))) == 2
    assert "was edited after export" in capsys.readouterr().err


def test_a_nan_score_is_an_error_not_a_number_in_the_csv(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    _scale_weights(art, float("nan"))
    write_tiny_manifest(art, tiny_contract())  # resealed: the exporter vouches for NaN weights
    out = tmp_path / "scores.csv"
    assert main(_predict(art, str(folder), "--out", str(out))) == 1
    assert "non-finite score" in capsys.readouterr().err
    rows = _rows(out)
    assert len(rows) == 2 and all(r["score"] == "" and "non-finite score" in r["error"] for r in rows)


def test_the_bomb_limit_is_a_runtime_option_and_verify_stays_on(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    smooth_image(400, 300).save(folder / "big.png")  # 120,000 px > the tiny contract's 100,000
    assert main(_predict(art, str(folder))) == 1
    assert "--max-pixels" in capsys.readouterr().err
    out = tmp_path / "s.csv"
    assert main(_predict(art, str(folder), "--max-pixels", "200000", "--out", str(out))) == 0
    _scale_weights(art)  # the weights check is still on with --max-pixels
    assert main(_predict(art, str(folder), "--max-pixels", "200000")) == 2


def test_a_long_list_streams_and_limit_stops_reading(tmp_path, capsys) -> None:
    art, _ = _artifact(tmp_path), _images(tmp_path)
    listing = tmp_path / "list.txt"
    with listing.open("w") as handle:
        handle.write("images/good0.png\nimages/good1.png\n")
        handle.writelines(f"images/missing{i}.png\n" for i in range(300_000))
    assert main(_predict(art, "--list", str(listing), "--limit", "2")) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert [Path(r[0]).name for r in rows[1:]] == ["good0.png", "good1.png"]


def test_iter_predict_reads_a_generator_one_batch_ahead(tmp_path) -> None:
    from edgeiqa.runtime.predictor import Predictor

    art, folder = _artifact(tmp_path), _images(tmp_path)
    read = []

    def endless():
        while True:
            read.append(1)
            if len(read) > 100:  # a reader that takes the whole input fails here, not by eating memory
                raise RuntimeError("the whole input was read before the first score")
            yield str(folder / "good0.png")

    with Predictor.load(art) as predictor:
        results = predictor.iter_predict(endless(), batch_size=4)
        first = next(results)
        results.close()
    assert first.score is not None and len(read) <= 8


def test_duplicates_are_counted_in_one_pass(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    good = str(folder / "good0.png")
    assert main(_predict(art, good, good, good)) == 0
    captured = capsys.readouterr()
    assert captured.out.count("good0.png") == 1 and "2 duplicate path(s)" in captured.err


def test_folder_scans_use_the_decoders_formats_and_say_what_they_skipped(tmp_path, capsys) -> None:
    from PIL import features

    art, folder = _artifact(tmp_path), _images(tmp_path)
    (folder / "notes.txt").write_text("not an image")
    if features.check("avif"):
        smooth_image(48, 40).save(folder / "photo.avif")
    assert main(_predict(art, str(folder))) == 0
    captured = capsys.readouterr()
    assert "1 not an image format this Pillow reads (.txt)" in captured.err
    assert ("photo.avif" in captured.out) == features.check("avif")


def test_an_empty_folder_is_an_error_with_a_message(tmp_path, capsys) -> None:
    art = _artifact(tmp_path)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "scores.csv"
    assert main(_predict(art, str(tmp_path / "empty"), "--out", str(out))) == 1
    assert "no images to score" in capsys.readouterr().err
    assert not out.exists() and not out.with_name("scores.csv.partial").exists()


@pytest.mark.parametrize("side", [1, 8, 31])
def test_an_image_too_small_to_assess_is_refused_in_one_line(tmp_path, capsys, side) -> None:
    art = _artifact(tmp_path)
    smooth_image(side, side).save(tmp_path / "small.png")
    assert main(_predict(art, str(tmp_path / "small.png"))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{side}x{side} is too small to assess" in err


def test_scores_are_continuous_in_size_from_the_threshold_up(tmp_path) -> None:
    from edgeiqa.runtime.predictor import Predictor

    art = _artifact(tmp_path)
    photo = smooth_image(400, 400, seed=3)
    with Predictor.load(art) as predictor:
        scores = [float(predictor(photo.resize((s, s), Image.Resampling.LANCZOS))[0]) for s in range(32, 41)]
    steps = np.abs(np.diff(scores))
    assert steps.max() < 0.05 * (abs(np.mean(scores)) + 1e-6), scores


def test_normal_size_scores_are_unchanged(tmp_path) -> None:
    """A 64x48 fixture scores exactly what the numpy reference of the tiny model says (nothing moved)."""
    from runtime.runtime_helpers import tiny_reference

    from edgeiqa.runtime.predictor import Predictor
    from edgeiqa.runtime.preprocess import preprocess_image

    art, folder = _artifact(tmp_path), _images(tmp_path)
    img = Image.open(folder / "good0.png").convert("RGB")
    feed = {k: v[None] for k, v in preprocess_image(img, tiny_contract()).items()}
    with Predictor.load(art) as predictor:
        assert float(predictor(str(folder / "good0.png"))[0]) == pytest.approx(tiny_reference(feed)[0], abs=1e-5)


def test_a_full_disk_keeps_what_was_scored_and_names_the_path(tmp_path) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    for i in range(40):
        smooth_image(40, 40, seed=i).save(folder / f"more{i:02d}.png")
    out = tmp_path / "scores.csv"
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))\n"
        "from edgeiqa.cli import main\n"
        f"sys.exit(main({_predict(art, str(folder), '--batch', '4', '--out', str(out))!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    partial = out.with_name("scores.csv.partial")
    assert str(partial) in done.stderr and done.stderr.strip().count("\n") == 0
    kept = _rows(partial)
    assert len(kept) >= 4 and all(float(r["score"]) for r in kept[:4])
    assert main(_predict(art, str(folder), "--out", str(out))) == 0  # the re-run resumes
    assert len(_rows(out)) == 42


def test_a_rerun_resumes_and_skips_what_is_done(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    out = tmp_path / "scores.csv"
    out.with_name("scores.csv.partial").write_text(f"path,score,error\n{folder / 'good0.png'},123.000000,\n")
    assert main(_predict(art, str(folder), "--out", str(out))) == 0
    assert "1 kept from an earlier run" in capsys.readouterr().err
    rows = {Path(r["path"]).name: r["score"] for r in _rows(out)}
    assert rows["good0.png"] == "123.000000" and float(rows["good1.png"]) != 123.0


def test_pillow_warnings_name_the_file(tmp_path, capsys, monkeypatch) -> None:
    art = _artifact(tmp_path)
    smooth_image(40, 40).save(tmp_path / "warned.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1,600 px: warned (not refused) by Pillow
    assert main(_predict(art, str(tmp_path / "warned.png"))) == 0
    assert f"edgeiqa: warning: {tmp_path / 'warned.png'}: " in capsys.readouterr().err


# ---------------------------------------------------------------------------------- the hostile battery


def test_out_as_a_symlink_to_the_artifact_is_refused(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    (tmp_path / "link.csv").symlink_to(art)
    assert main(_predict(art, str(folder), "--out", str(tmp_path / "link.csv"))) == 2
    assert "is one of this command's inputs" in capsys.readouterr().err
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")  # a link never becomes the CSV
    assert main(_predict(art, str(folder), "--out", str(tmp_path / "dangling.csv"))) == 2
    assert "is a symbolic link" in capsys.readouterr().err


def test_out_as_a_hard_link_to_the_manifest_is_refused(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    os.link(manifest_path_for(art), tmp_path / "hard.csv")
    assert main(_predict(art, str(folder), "--out", str(tmp_path / "hard.csv"), "--overwrite")) == 2
    assert "is one of this command's inputs" in capsys.readouterr().err


def test_out_as_the_manifest_by_another_relative_path_is_refused(tmp_path, capsys, monkeypatch) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(_predict(art, str(folder), "--out", "../sub/../tiny.onnx.json")) == 2
    assert "is one of this command's inputs" in capsys.readouterr().err


def test_out_as_another_artifact_is_refused_even_with_overwrite(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    other = build_tiny_onnx(tmp_path / "other.onnx")
    assert main(_predict(art, str(folder), "--out", str(other), "--overwrite")) == 2
    assert "is an artifact" in capsys.readouterr().err


def test_out_as_the_list_file_is_refused(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    listing = tmp_path / "list.csv"
    listing.write_text(f"{folder / 'good0.png'}\n")
    assert main(_predict(art, "--list", str(listing), "--out", str(listing), "--overwrite")) == 2
    assert listing.read_text() == f"{folder / 'good0.png'}\n"


def test_out_as_an_image_inside_a_scanned_folder_is_refused(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    assert main(_predict(art, str(folder), "--out", str(folder / "good1.png"), "--overwrite")) == 2


def test_out_as_another_kind_of_file_needs_overwrite(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    assert main(_predict(art, str(folder), "--out", str(notes))) == 2
    assert "pass --overwrite" in capsys.readouterr().err and notes.read_text() == "my notes\n"
    assert main(_predict(art, str(folder), "--out", str(notes), "--overwrite")) == 0
    assert notes.read_text().startswith("path,score,error")


def test_out_as_a_pipe_or_device_is_refused(tmp_path, capsys) -> None:
    # A FIFO stands in for /dev/stdin or /dev/null: code that renames onto --out would replace a real
    # device node (it did, on the code before issue 24), so the test never points at one.
    art, folder = _artifact(tmp_path), _images(tmp_path)
    os.mkfifo(tmp_path / "pipe.csv")
    assert main(_predict(art, str(folder), "--out", str(tmp_path / "pipe.csv"))) == 2
    assert "is not a regular file" in capsys.readouterr().err


def test_bench_out_as_an_existing_csv_needs_overwrite(tmp_path, capsys) -> None:
    art = _artifact(tmp_path)
    table = tmp_path / "scores.csv"
    table.write_text("path,score,error\n")
    assert main(["bench", str(art), "--out", str(table), "--quiet"]) == 2
    assert "is not a benchmark result JSON" in capsys.readouterr().err


def test_report_and_export_refuse_a_file_as_their_output_folder(tmp_path, capsys) -> None:
    result = tmp_path / "result.json"
    result.write_text("{}")
    assert main(["report", str(result), "--out", str(result)]) == 2
    assert "is an existing file, not a folder" in capsys.readouterr().err
    argv = ["export", str(tmp_path), "--format", "onnx", "--precision", "fp32", "--out", str(result)]
    assert main(argv) == 2
    assert result.read_text() == "{}"


def test_an_artifact_symlinked_out_of_the_folder_is_refused(tmp_path, capsys) -> None:
    real = build_tiny_onnx(_dir(tmp_path / "outside") / "real.onnx")
    _dir(tmp_path / "home")
    link = tmp_path / "home" / "tiny.onnx"
    link.symlink_to(real)
    write_tiny_manifest(real, tiny_contract())
    manifest_path_for(link).write_bytes(manifest_path_for(real).read_bytes())
    _reseal(manifest_path_for(link), lambda d: d.update(artifact="tiny.onnx"))
    assert main(_predict(link, str(_images(tmp_path)))) == 2
    assert "leads out of the manifest's folder" in capsys.readouterr().err


def test_a_companion_file_outside_the_folder_is_refused(tmp_path, capsys) -> None:
    art, folder = _artifact(_dir(tmp_path / "home")), _images(tmp_path)
    (tmp_path / "secret.bin").write_bytes(b"secret")
    _reseal(manifest_path_for(art), lambda d: d["sha256"].update(companions={"../secret.bin": "0" * 64}))
    assert main(_predict(art, str(folder))) == 2
    assert "leads out of the manifest's folder" in capsys.readouterr().err


def test_flipping_valid_by_hand_is_refused(tmp_path, capsys) -> None:
    art = build_tiny_onnx(tmp_path / "tiny.onnx")
    write_tiny_manifest(art, tiny_contract(), valid=False)
    _edit(manifest_path_for(art), lambda d: d.update(valid=True))
    assert main(_predict(art, str(_images(tmp_path)))) == 2
    assert "was edited after export" in capsys.readouterr().err


def test_no_verify_does_not_allow_a_gate_failed_artifact(tmp_path, capsys) -> None:
    art = build_tiny_onnx(tmp_path / "tiny.onnx")
    write_tiny_manifest(art, tiny_contract(), valid=False)
    assert main(_predict(art, str(_images(tmp_path)), "--no-verify")) == 2
    assert "--allow-invalid" in capsys.readouterr().err


def test_an_unsealed_manifest_is_refused_with_a_re_export_message(tmp_path, capsys) -> None:
    art = _artifact(tmp_path)
    _edit(manifest_path_for(art), lambda d: d["sha256"].pop("manifest"))
    assert main(_predict(art, str(_images(tmp_path)))) == 2
    assert "re-export the artifact" in capsys.readouterr().err
    assert main(_predict(art, str(_images(tmp_path)), "--no-verify")) == 0


def test_an_extra_edit_is_refused_too(tmp_path, capsys) -> None:
    art = _artifact(tmp_path)
    _edit(manifest_path_for(art), lambda d: d["extra"].update(note="harmless?"))
    assert main(_predict(art, str(_images(tmp_path)))) == 2


def test_weights_swapped_after_load_do_not_change_scores(tmp_path) -> None:
    from edgeiqa.errors import ConfigError
    from edgeiqa.runtime.predictor import Predictor

    art, folder = _artifact(tmp_path), _images(tmp_path)
    with Predictor.load(art) as predictor:
        before = predictor(str(folder / "good0.png"))
        _scale_weights(art, 5.0)
        assert predictor(str(folder / "good0.png")) == pytest.approx(before)
    with pytest.raises(ConfigError, match="does not match"):
        Predictor.load(art)


def test_unicode_and_newline_names_round_trip_in_the_csv(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    odd = folder / "ph\u00f6to\nline2 \u2603.png"
    smooth_image(40, 40).save(odd, format="PNG")
    broken = folder / "bad\nname.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "scores.csv"
    assert main(_predict(art, str(folder), "--out", str(out))) == 1
    err = capsys.readouterr().err
    assert "bad\\nname.png" in err and len(err.strip().splitlines()) == 2  # failure + summary, unsplit
    rows = {r["path"]: r for r in _rows(out)}
    assert rows[str(odd)]["score"] and rows[str(broken)]["error"]


def test_formula_looking_names_are_defused_and_read_back(tmp_path, capsys) -> None:
    art = _artifact(tmp_path)
    evil = tmp_path / "=cmd|' calc'!A0.png"
    smooth_image(40, 40).save(evil, format="PNG")
    out = tmp_path / "scores.csv"
    assert main(_predict(art, str(evil), "--out", str(out))) == 0
    assert all(not r["path"].startswith("=") for r in _rows(out))
    assert main(_predict(art, str(evil), "--out", str(out))) == 0  # read back: resumed, not scored again
    assert "1 kept from an earlier run" in capsys.readouterr().err
    assert len(_rows(out)) == 1


def test_a_huge_exif_block_is_scored(tmp_path) -> None:
    art = _artifact(tmp_path)
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: 60 KB, near the JPEG APP1 limit
    smooth_image(64, 48).save(tmp_path / "exif.jpg", exif=exif.tobytes())
    assert main(_predict(art, str(tmp_path / "exif.jpg"))) == 0


def test_a_list_file_that_is_a_symlink_loop_is_one_line(tmp_path, capsys) -> None:
    art = _artifact(tmp_path)
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    assert main(_predict(art, "--list", str(tmp_path / "loop.txt"))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loop.txt: cannot read the image list" in err


def test_a_list_on_stdin_with_crlf_comments_and_blanks(tmp_path, capsys, monkeypatch) -> None:
    import io

    art, folder = _artifact(tmp_path), _images(tmp_path)
    text = f"# photos\r\n{folder / 'good0.png'}\r\n\r\n{folder / 'good1.png'}\r\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(_predict(art, "-")) == 0
    assert capsys.readouterr().out.count(".png") == 2


def test_a_csv_list_with_a_path_column_is_relative_to_the_list(tmp_path, capsys, monkeypatch) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    (folder / "list.csv").write_text("mos,path\n3.0,good0.png\n4.0,good1.png\n")
    monkeypatch.chdir("/")
    assert main(_predict(art, "--list", str(folder / "list.csv"))) == 0
    assert capsys.readouterr().out.count(".png") == 2


def test_a_folder_that_links_to_itself_is_not_followed(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    (folder / "again").symlink_to(folder)
    assert main(_predict(art, str(folder))) == 0
    captured = capsys.readouterr()
    assert captured.out.count(".png") == 2 and "1 linked folder (not followed)" in captured.err


def test_a_quoted_glob_is_expanded(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    assert main(_predict(art, str(folder / "good*.png"))) == 0
    assert capsys.readouterr().out.count(".png") == 2


def test_limit_counts_unique_files(tmp_path, capsys) -> None:
    art, folder = _artifact(tmp_path), _images(tmp_path)
    good0 = str(folder / "good0.png")
    assert main(_predict(art, good0, good0, str(folder / "good1.png"), "--limit", "2")) == 0
    assert capsys.readouterr().out.count(".png") == 2


def test_the_smallest_assessable_image_scores(tmp_path, capsys) -> None:
    art = _artifact(tmp_path)
    smooth_image(32, 200).save(tmp_path / "thin.png")
    assert main(_predict(art, str(tmp_path / "thin.png"))) == 0


def test_no_inputs_at_all_is_exit_1(tmp_path, capsys) -> None:
    assert main(_predict(_artifact(tmp_path))) == 1
    assert "give image files" in capsys.readouterr().err
