"""The decode-paths measurement (``edgeiqa speed --decode-paths``, ``studies/frame_trim.py``): each setting in
its own process, ratios to the full-decode setting whatever it is called, and a forced trim applied."""

from __future__ import annotations

from pathlib import Path

from runtime.runtime_helpers import build_tiny_onnx, smooth_image, tiny_contract, write_tiny_manifest

from edgeiqa.bench.decode_paths import PathSetting, measure_decode_paths, run_setting


def _artifact_and_images(tmp_path: Path) -> tuple[Path, list[Path]]:
    artifact = build_tiny_onnx(tmp_path / "tiny.onnx")
    write_tiny_manifest(artifact, tiny_contract())
    images = []
    for i in range(3):
        images.append(tmp_path / f"p{i}.jpg")
        smooth_image(96, 64, seed=i).save(images[-1], quality=90)
    return artifact, images


def test_ratios_come_from_the_full_decode_setting_by_kind_not_by_name(tmp_path: Path) -> None:
    artifact, images = _artifact_and_images(tmp_path)
    settings = (PathSetting("reference", "full_decode"), PathSetting("default", "predict"))
    result = measure_decode_paths(artifact, images, workers=1, repeats=1, settings=settings)
    reference, default = result["settings"]["reference"], result["settings"]["default"]
    assert reference["vs_full_decode"] == 1.0
    assert default["vs_full_decode"] == default["ips"] / reference["ips"]


def test_a_setting_can_force_the_trim_either_way(tmp_path: Path, monkeypatch) -> None:
    from edgeiqa.runtime import frames

    artifact, images = _artifact_and_images(tmp_path)
    trims = []
    monkeypatch.setattr(frames, "release_free_memory", lambda: trims.append(1))
    monkeypatch.setattr(frames, "TRIM_PIXELS", 1)  # these small test images count as big frames
    run_setting(PathSetting("forced", "predict", trim=True), str(artifact), [str(p) for p in images], 1, 1)
    assert trims  # the default budget alone never trims
    trims.clear()
    run_setting(PathSetting("default", "predict"), str(artifact), [str(p) for p in images], 1, 1)
    assert not trims
