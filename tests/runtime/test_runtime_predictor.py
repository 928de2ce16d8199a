"""Predictor end to end: files -> contract preprocessing -> runner -> MOS scores, equal to a numpy reference."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from runtime_helpers import build_tiny_onnx, smooth_image, tiny_contract, tiny_reference, write_tiny_manifest

from edgeiqa.errors import ConfigError, EdgeIQAError, ImageDecodeError
from edgeiqa.runtime.decode import simplejpeg_available
from edgeiqa.runtime.manifest import manifest_path_for
from edgeiqa.runtime.predictor import Predictor
from edgeiqa.runtime.preprocess import preprocess
from edgeiqa.runtime.runners import OpenVINORunner


def _reference_scores(paths, contract) -> np.ndarray:
    """Each file through preprocess() (Pillow), then the model's formula in numpy."""
    return np.array([tiny_reference({k: v[None] for k, v in preprocess(p, contract).items()})[0] for p in paths])


@pytest.fixture
def predictor(tiny_onnx: Path):
    with Predictor.load(tiny_onnx, decoder="pillow", threads=1) as pred:
        yield pred


def test_scores_real_files_like_the_numpy_reference(predictor, image_files, contract) -> None:
    scores = predictor([str(p) for p in image_files], batch_size=3)
    assert scores.dtype == np.float32 and scores.shape == (4,)
    np.testing.assert_allclose(scores, _reference_scores(image_files, contract), atol=1e-5, rtol=0)
    assert len(set(np.round(scores, 4))) == 4  # the images really differ


def test_shortest_api_and_both_decoders(tiny_onnx: Path, image_files, contract) -> None:
    scores = Predictor.load(tiny_onnx)(image_files)  # the one-liner: default decoder and threads
    np.testing.assert_allclose(scores, _reference_scores(image_files, contract), atol=1e-5)
    if simplejpeg_available():
        with Predictor.load(tiny_onnx, decoder="simplejpeg", threads=1) as pred:
            fast = pred(image_files)
        # libjpeg IDCT rounding may differ between builds: a tolerance, not equality, on the JPEGs.
        np.testing.assert_allclose(fast, scores, atol=1e-3)


def test_batch_size_does_not_change_scores(predictor, image_files) -> None:
    results = [predictor(image_files, batch_size=b) for b in (1, 2, 3, 8)]
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


def test_in_memory_inputs(predictor, image_files) -> None:
    expected = predictor(image_files)
    images = [Image.open(p) for p in image_files]
    np.testing.assert_allclose(predictor(images), expected, atol=1e-6)
    np.testing.assert_allclose(predictor([np.asarray(images[0].convert("RGB"))]), expected[:1], atol=1e-6)
    np.testing.assert_allclose(predictor([p.read_bytes() for p in image_files]), expected, atol=1e-6)
    single = predictor(str(image_files[1]))
    assert single.shape == (1,) and single[0] == pytest.approx(expected[1], abs=1e-6)
    assert predictor([]).shape == (0,)


def test_predict_arrays(predictor, image_files, contract) -> None:
    feeds = [preprocess(p, contract) for p in image_files]
    batch = {k: np.stack([f[k] for f in feeds]) for k in contract.input_names}
    np.testing.assert_allclose(predictor.predict_arrays(batch), tiny_reference(batch), atol=1e-5)


def test_a_bad_file_raises_by_name_in_call_but_not_in_iter(predictor, image_files, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    items = [image_files[0], bad, image_files[1]]
    with pytest.raises(ImageDecodeError, match=r"broken\.jpg: "):
        predictor(items)
    results = list(predictor.iter_predict(items, batch_size=8))
    assert [r.index for r in results] == [0, 1, 2]
    assert results[1].score is None and "broken.jpg" in results[1].error
    np.testing.assert_allclose([results[0].score, results[2].score], predictor(image_files[:2]), atol=1e-6)


def test_aspect_preserving_contract_scores_mixed_shapes(tmp_path: Path, image_files) -> None:
    contract = tiny_contract(size_policy="short_side", size_multiple=16)
    path = build_tiny_onnx(tmp_path / "aspect.onnx")
    write_tiny_manifest(path, contract)
    with Predictor.load(path, decoder="pillow", threads=1) as pred:
        scores = pred(image_files, batch_size=4)  # four different working shapes in one batch
    np.testing.assert_allclose(scores, _reference_scores(image_files, contract), atol=1e-5)


def test_load_from_the_manifest_and_backend_override(tiny_onnx: Path, image_files) -> None:
    with Predictor.load(tiny_onnx, decoder="pillow", threads=1) as pred:
        expected = pred(image_files)
        assert pred.info()["runner"]["backend"] == "onnxruntime" and pred.info()["precision"] == "fp32"
    with Predictor.load(manifest_path_for(tiny_onnx), decoder="pillow") as pred:
        np.testing.assert_allclose(pred(image_files), expected, atol=1e-6)
    with Predictor.load(tiny_onnx, backend="openvino", decoder="pillow", threads=1) as pred:
        assert isinstance(pred.runner, OpenVINORunner) and pred.runner.precision == "f32"
        np.testing.assert_allclose(pred(image_files), expected, atol=1e-5)


def test_openvino_ir_artifact(tmp_path: Path, tiny_onnx: Path, contract, image_files) -> None:
    import openvino as ov

    xml = tmp_path / "tiny.xml"
    ov.save_model(ov.Core().read_model(str(tiny_onnx)), str(xml), compress_to_fp16=False)
    write_tiny_manifest(xml, contract, fmt="openvino")
    with Predictor.load(xml, decoder="pillow", threads=1) as pred:
        np.testing.assert_allclose(pred(image_files), _reference_scores(image_files, contract), atol=1e-5)


def test_load_errors(tmp_path: Path, tiny_onnx: Path, contract) -> None:
    with pytest.raises(ConfigError, match=r"ghost\.onnx\.json: manifest not found"):
        Predictor.load(tmp_path / "ghost.onnx")
    write_tiny_manifest(
        tiny_onnx, contract, valid=False, parity={"passed": False, "reason": "max_abs_diff = 0.3 > 0.001"}
    )
    with pytest.raises(
        ConfigError,
        match=r"^tiny\.onnx\.json: the manifest marks this artifact as not valid \(fp32 parity "
        r"gate: max_abs_diff = 0\.3 > 0\.001\); pass --allow-invalid to run it anyway$",
    ):
        Predictor.load(tiny_onnx)
    Predictor.load(tiny_onnx, allow_invalid=True).close()
    write_tiny_manifest(tiny_onnx, tiny_contract(fragments=None))
    with pytest.raises(
        ConfigError,
        match=r"the model takes inputs \['image', 'fragments'\] but its preprocessing contract produces \['image'\]",
    ):
        Predictor.load(tiny_onnx)
    write_tiny_manifest(tiny_onnx, contract, fmt="coreml")
    with pytest.raises(EdgeIQAError, match=r"backend 'onnxruntime' cannot run a 'coreml' artifact"):
        Predictor.load(tiny_onnx, backend="onnxruntime")
    write_tiny_manifest(tiny_onnx, contract)
    with Predictor.load(tiny_onnx, threads=1) as pred:
        with pytest.raises(ConfigError, match=r"batch size must be >= 1, got 0"):
            pred([], batch_size=0)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_one_predictor_is_thread_safe(tiny_onnx: Path, backend: str) -> None:
    images = [smooth_image(40 + 4 * i, 36, seed=i) for i in range(8)]
    opts = {"threads": 1}
    calls = 200 if backend == "onnxruntime" else 100
    with Predictor.load(tiny_onnx, backend=backend, workers=2, **opts) as pred:
        expected = [pred([img])[0] for img in images]
        got: list[list[float]] = [[] for _ in images]
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for _ in range(calls):
                    got[t].append(pred([images[t]])[0])
            except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert len(set(expected)) == 8
    for t in range(8):
        assert got[t] == [expected[t]] * calls


def test_load_passes_the_decoded_frame_budget_to_the_predictor(tiny_onnx: Path) -> None:
    from edgeiqa.runtime import frames

    one_frame = frames.DEFAULT_BUDGET_PIXELS * frames.FRAME_BYTES_PER_PIXEL
    with (
        Predictor.load(tiny_onnx) as auto,
        Predictor.load(tiny_onnx, max_decoded_pixels=frames.DEFAULT_BUDGET_PIXELS) as one,
        Predictor.load(tiny_onnx, max_decoded_pixels=None) as free,
        # Above what this process already holds (a long test session holds a lot), so the bound is not 0.
        Predictor.load(tiny_onnx, max_memory=frames.current_rss_bytes() + 2**29) as capped,
    ):
        assert (
            auto.frames.limit == frames.default_budget_bytes()
            or abs(auto.frames.limit - frames.default_budget_bytes()) < 64 * 2**20
        )  # MemAvailable moves a little between the two reads
        assert auto.frames.limit >= one_frame and one.frames.limit == one_frame and free.frames.limit is None
        # What the process does not hold yet, the runner's session included.
        assert 0 < capped.frames.limit <= 2**29 + 64 * 2**20


def test_max_memory_keeps_decoded_bytes_in_flight_under_the_budget(tiny_onnx: Path, tmp_path: Path) -> None:
    from PIL import Image

    from edgeiqa.runtime import frames

    paths = []
    for i in range(6):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (200, 100), (i * 20, 0, 0)).save(paths[-1])
    frame = 200 * 100 * frames.FRAME_BYTES_PER_PIXEL
    rss = frames.current_rss_bytes()
    with Predictor.load(tiny_onnx, max_memory=rss + 2 * frame + 2 * 2**20, workers=4) as predictor:
        predictor.frames.limit = 2 * frame  # pin it: RSS moves between the two reads above
        assert len(predictor(paths, batch_size=3)) == 6
        assert frame <= predictor.frames.peak <= 2 * frame
