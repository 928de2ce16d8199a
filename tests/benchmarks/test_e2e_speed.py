"""The end-to-end speed command's pieces: realistic 4K JPEGs and a measurement on a real artifact."""

from __future__ import annotations

from PIL import Image

from bench_helpers import tiny_artifact, tiny_dataset
from edgeiqa.benchmarks.e2e_speed import UHD, make_uhd_jpegs, measure_speed


def test_uhd_jpegs_are_4k_and_bad_sources_are_skipped(tmp_path, capsys) -> None:
    Image.new("RGB", (768, 512), (90, 120, 30)).save(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    made = make_uhd_jpegs([tmp_path / "a.png", tmp_path / "broken.png"], tmp_path / "4k")
    assert [p.name for p in made] == ["a_4k.jpg"]
    with Image.open(made[0]) as img:
        assert img.size == UHD and img.format == "JPEG"
    assert "skipped" in capsys.readouterr().err


def test_speed_figures_are_consistent(tmp_path) -> None:
    image_files = sorted(tiny_dataset(tmp_path / "data").parent.glob("*.png"))
    artifact = tiny_artifact(tmp_path, "lin.onnx", "linear")
    result = measure_speed(artifact, image_files, workers=2, batch_size=2, repeats=1)
    assert result.n_images == len(image_files) and result.naive_ips is None
    assert result.decode_ips > 0 and result.runtime_ips > 0
    assert result.runtime_vs_decode == result.decode_ips / result.runtime_ips
