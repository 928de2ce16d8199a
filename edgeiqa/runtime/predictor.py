"""Score images with any exported artifact: ``Predictor.load("student_int8.onnx")(["a.jpg", "b.jpg"])``.

The predictor reads the manifest beside the artifact, builds the runner its format needs, and
applies the manifest's preprocessing contract exactly. Decoding runs in a thread pool one batch ahead
of inference (Pillow and libjpeg-turbo release the GIL), so batch k+1 decodes while batch k infers:
on a 4K photo decoding, not the student, is the larger cost.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edgeiqa.errors import ConfigError, ImageDecodeError
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.decode import DecoderName, get_decoder
from edgeiqa.runtime.frames import FRAME_BYTES_PER_PIXEL, FrameBudget, budget_for, peek_bytes
from edgeiqa.runtime.graph_checks import check_inputs, pick_output
from edgeiqa.runtime.manifest import (
    ArtifactManifest,
    check_names_artifact,
    manifest_path_for,
    read_manifest,
    verify_artifact_sha256,
)
from edgeiqa.runtime.preprocess import check_assessable, preprocess_image, to_rgb
from edgeiqa.runtime.runners import Backend, Runner, RunnerError, claiming_backend, create_runner, runner_for
from edgeiqa.runtime.zoo import resolve_model

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray
Prepared = dict | ImageDecodeError
AUTO = "auto"  # max_decoded_pixels default: a share of the memory available (edgeiqa.runtime.frames)


def frame_limit(max_decoded_pixels: int | str | None, max_memory: int | str | None) -> int | None:
    """Decoded bytes allowed in flight: ``max_memory`` (a whole-process bound, e.g. ``"150MB"``) first,
    else ``max_decoded_pixels`` (``"auto"``: a share of MemAvailable; None: no bound; a number of pixels:
    that many, e.g. :data:`~edgeiqa.runtime.frames.DEFAULT_BUDGET_PIXELS` for one 4K frame)."""
    if max_memory is not None or max_decoded_pixels == AUTO:
        return budget_for(max_memory)
    return None if max_decoded_pixels is None else int(max_decoded_pixels) * FRAME_BYTES_PER_PIXEL


def frame_budget(max_decoded_pixels: int | str | None, max_memory: int | str | None) -> FrameBudget:
    """The :class:`FrameBudget` for these settings; freed frames are trimmed only under a bound the user set."""
    explicit = max_memory is not None or max_decoded_pixels not in (AUTO, None)
    return FrameBudget(frame_limit(max_decoded_pixels, max_memory), trim=explicit)


@dataclass(frozen=True)
class ItemResult:
    """The outcome for one input: a MOS-scale ``score``, or ``error`` (one line naming the file)."""

    index: int
    source: Any
    score: float | None
    error: str | None = None


# Which file each decode thread is on: Pillow's warnings ("Truncated File Read", EXIF trouble) do not
# name it, and the CLI's warning printer adds it from here.
DECODING = threading.local()


def current_source() -> str | None:
    """The file this thread is decoding, or None."""
    return getattr(DECODING, "source", None)


def default_workers() -> int:
    """Decode threads: enough to keep one inference stream fed without starving it of cores."""
    return max(1, min(4, os.cpu_count() or 1))


class Predictor:
    """An active runner plus its preprocessing contract. Thread-safe; close it (or use ``with``) when done.

    Args:
        runner: a runner (activated here if it is not yet).
        contract: the preprocessing contract the artifact was exported with.
        manifest: the artifact's manifest, kept for :meth:`info`.
        decoder: ``auto``, ``pillow`` or ``simplejpeg`` (see :mod:`edgeiqa.runtime.decode`).
        workers: decode threads (default: up to 4, never more than the cores).
        output_name: the score output; default: the manifest's first output.
        max_decoded_pixels: decoded pixels allowed in flight across decode threads (default ``"auto"``:
            a share of the memory available; None: no bound; ``DEFAULT_BUDGET_PIXELS``: one 4K frame).
        max_memory: a bound on the whole process (bytes or ``"150MB"``); the decode threads get what
            the process does not hold once the runner is active. See :mod:`edgeiqa.runtime.frames`.
    """

    def __init__(
        self,
        runner: Runner,
        contract: PreprocessContract,
        *,
        manifest: ArtifactManifest | None = None,
        decoder: DecoderName = "auto",
        workers: int | None = None,
        output_name: str | None = None,
        max_decoded_pixels: int | str | None = AUTO,
        max_memory: int | str | None = None,
        max_pixels: int | None = None,
    ) -> None:
        self.runner = runner
        # The bomb limit is the device's to set, not the manifest's: the sealed contract stays as exported.
        self.contract = contract if max_pixels is None else dataclasses.replace(contract, max_pixels=max_pixels)
        self.manifest = manifest
        self.workers = workers or default_workers()
        self._decode = get_decoder(decoder)
        self.decoder = decoder
        runner.activate()
        # After activation, so that a max_memory bound counts the session the runner just built.
        self.frames = frame_budget(max_decoded_pixels, max_memory)
        if not runner.own_views:  # a runner with its own views has its own input names
            check_inputs(runner, contract)
        self.output_name = pick_output(runner, manifest, output_name)
        # Backends that are not thread-safe get one call at a time; ORT/OpenVINO/TensorRT need no lock.
        self._infer_lock = None if runner.thread_safe else threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        backend: str | None = None,
        *,
        decoder: DecoderName = "auto",
        workers: int | None = None,
        allow_invalid: bool = False,
        verify: bool = True,
        max_decoded_pixels: int | str | None = AUTO,
        max_memory: int | str | None = None,
        max_pixels: int | None = None,
        **runner_opts: Any,
    ) -> Predictor:
        """Load an artifact (or its ``.json`` manifest) with the runner its manifest's format needs, or a
        path with no manifest that a backend's path rule claims (a checkpoint folder: the torch plugin).
        ``None`` loads the bundled default model and a bundled model's name that model
        (:mod:`edgeiqa.runtime.zoo`).

        ``max_decoded_pixels`` bounds the decoded frames in flight (default: a share of the memory
        available; ``DEFAULT_BUDGET_PIXELS``: one 4K frame, which serialises 4K decoding; ``None``: no
        bound); ``max_memory`` (``"150MB"``) bounds the whole process instead (see
        :mod:`edgeiqa.runtime.frames`).

        ``backend`` overrides the runner (``openvino`` can run an ONNX file); ``runner_opts`` go to
        the runner (``threads=``, ``providers=``, ``inference_precision=``, ...).
        ``verify`` checks the manifest's own digest and the artifact's sha256 first and refuses a mismatch
        (:class:`~edgeiqa.runtime.manifest.IntegrityError`); ``verify=False`` is ``--no-verify``. It does not
        let a gate-failed artifact run (that is ``allow_invalid``) nor a manifest name a file outside its
        folder (never). ``max_pixels`` is this run's decompression-bomb limit (``--max-pixels``).
        """
        path = resolve_model(path)
        frames = {
            "decoder": decoder,
            "workers": workers,
            "max_decoded_pixels": max_decoded_pixels,
            "max_memory": max_memory,
            "max_pixels": max_pixels,
        }
        claimed = None if manifest_path_for(path).exists() or path.suffix == ".json" else claiming_backend(path)
        if claimed is not None:
            return cls._load_claimed(path, claimed, backend, verify, frames, **runner_opts)
        if path.suffix == ".json" and path.is_file():
            manifest_file = path
            manifest = read_manifest(manifest_file)
            path = manifest.artifact_path(manifest_file)
        else:
            manifest_file = manifest_path_for(path)
            manifest = read_manifest(manifest_file)
            check_names_artifact(manifest, path, manifest_file)
        if not manifest.valid and not allow_invalid:
            record = manifest.parity_record
            reason = record.reason if record is not None else "no parity record"
            raise ConfigError(
                f"{manifest_file.name}: the manifest marks this artifact as not valid "
                f"({manifest.precision} parity gate: {reason}); pass --allow-invalid to run it anyway"
            )
        if verify:
            verify_artifact_sha256(manifest, path, manifest_file)
        runner = runner_for(manifest, path, backend, **runner_opts)
        return cls._owning(runner, lambda: manifest.contract, manifest, frames)

    @classmethod
    def _load_claimed(
        cls, path: Path, claimed: Backend, backend: str | None, verify: bool, frames: dict[str, Any], **runner_opts: Any
    ) -> Predictor:
        """A self-describing model (a checkpoint folder) run by the backend that claims it, with its own
        contract; such a backend checks its own files, so ``verify`` goes to its runner."""
        if backend not in (None, claimed.name):
            raise ConfigError(f"{path}: this folder runs on the {claimed.name} backend, not {backend!r}")
        runner = create_runner(claimed.name, path, verify=verify, **runner_opts)

        def contract() -> PreprocessContract:
            runner.activate()  # the contract lives in the model: known only once it is loaded
            if runner.contract is None:
                raise ConfigError(f"{path}: the {claimed.name} runner found no preprocessing contract in it")
            return runner.contract

        return cls._owning(runner, contract, None, frames)

    @classmethod
    def _owning(
        cls,
        runner: Runner,
        contract: Callable[[], PreprocessContract],
        manifest: ArtifactManifest | None,
        frames: dict[str, Any],
    ) -> Predictor:
        """A predictor that owns ``runner``: when its contract or frame options fail, the runner is released."""
        try:
            return cls(runner, contract(), manifest=manifest, **frames)
        except BaseException:
            runner.deactivate()
            raise

    # -- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the decode threads and release the backend session."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self.runner.deactivate()

    def info(self) -> dict[str, Any]:
        """JSON-serialisable description: runner (backend, providers/precision), decoder, workers."""
        data = {"runner": self.runner.info(), "decoder": self.decoder, "workers": self.workers}
        if self.manifest is not None:
            data.update(model=self.manifest.model, format=self.manifest.format, precision=self.manifest.precision)
        return data

    # -- scoring --------------------------------------------------------------------------------------
    def __call__(self, items: ImageInput | Sequence[ImageInput], batch_size: int = 8) -> np.ndarray:
        """MOS-scale scores (float32, one per item, in order); the first undecodable file raises."""
        scores = []
        results = self.iter_predict(items, batch_size)
        try:
            for result in results:
                if result.error is not None:
                    raise ImageDecodeError(result.error)
                scores.append(result.score)
        finally:
            results.close()
        return np.asarray(scores, dtype=np.float32)

    def predict_arrays(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Scores for already-preprocessed, batched inputs (``{"image": BxCxHxW, ...}``)."""
        if self._infer_lock is None:
            outputs = self.runner.infer(feed)
        else:
            with self._infer_lock:
                outputs = self.runner.infer(feed)
        scores = np.asarray(outputs[self.output_name], dtype=np.float32).reshape(-1)
        batch = len(next(iter(feed.values())))
        if scores.shape[0] != batch:
            raise RunnerError(
                f"{self.runner.name}: output {self.output_name!r} has {scores.shape[0]} values for a batch of {batch}"
            )
        return scores

    def preprocess(self, item: ImageInput) -> dict[str, np.ndarray]:
        """Model inputs for one item (a path, encoded bytes, a Pillow image or an HxWxC uint8 array)."""
        if isinstance(item, np.ndarray):
            item = Image.fromarray(item)
        if isinstance(item, Image.Image):
            img = to_rgb(item)  # images given in memory are taken as upright
        else:
            img = self._decode(item, self.contract)
        check_assessable(_name(item), img, self.contract)
        if self.runner.own_views:  # a teacher checkpoint: global view + native patches
            return self.runner.prepare_image(img)
        return preprocess_image(img, self.contract)

    def iter_predict(
        self, items: ImageInput | Iterable[ImageInput], batch_size: int = 8, workers: int | None = None
    ) -> Iterator[ItemResult]:
        """Score ``items`` batch by batch, yielding one :class:`ItemResult` per item, in order.

        ``items`` may be any iterable, a generator over a million-line list included: it is read one
        batch ahead of scoring, never whole. Undecodable files yield an error result and the rest of
        their batch is still scored. ``workers`` overrides the decode thread count for this call.
        """
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        return self._pipeline(_chunks(_as_iterable(items), batch_size), workers)

    def _pipeline(self, chunks: Iterator[list[tuple[int, Any]]], workers: int | None) -> Iterator[ItemResult]:
        owned = ThreadPoolExecutor(workers, thread_name_prefix="edgeiqa-decode") if workers else None
        executor = owned or self._shared_executor()
        pending: list[Future] = []
        try:
            current = next(chunks, None)
            pending = [executor.submit(self._prepare, item) for _, item in current or ()]
            while current is not None:
                # Submit batch k+1 before waiting on batch k so decoding overlaps inference.
                nxt = next(chunks, None)
                waiting, pending = pending, [executor.submit(self._prepare, item) for _, item in nxt or ()]
                yield from self._score_chunk(current, [f.result() for f in waiting])
                current = nxt
        finally:
            for future in pending:
                future.cancel()
            if owned is not None:
                owned.shutdown(wait=True)

    def _shared_executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="edgeiqa-decode")
            return self._executor

    def _prepare(self, item: ImageInput) -> Prepared:
        DECODING.source = _name(item)  # a Pillow warning raised now is about this file (see current_source)
        try:
            # The frame is freed when preprocess returns (only its views survive): hold its pixels until then.
            with self.frames.hold(peek_bytes(item, regions=self.contract.jpeg_regions)):
                return self.preprocess(item)
        except ImageDecodeError as exc:  # one bad file must not sink its batch
            return exc
        finally:
            DECODING.source = None

    def _score_chunk(self, chunk: list[tuple[int, Any]], prepared: list[Prepared]) -> Iterator[ItemResult]:
        good = [(i, p) for (i, _), p in zip(chunk, prepared) if not isinstance(p, ImageDecodeError)]
        scores = dict(zip((i for i, _ in good), self._infer_feeds([p for _, p in good]))) if good else {}
        for (i, item), p in zip(chunk, prepared):
            if isinstance(p, ImageDecodeError):
                yield ItemResult(i, item, None, str(p))
            elif not np.isfinite(scores[i]):  # NaN weights or an overflow: never a number in the CSV
                yield ItemResult(i, item, None, f"the model returned a non-finite score ({scores[i]})")
            else:
                yield ItemResult(i, item, float(scores[i]))

    def _infer_feeds(self, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Stack same-shaped inputs into one batch; aspect-preserving contracts may give mixed shapes."""
        names = list(feeds[0])
        if all(f[n].shape == feeds[0][n].shape for f in feeds for n in names):
            return self.predict_arrays({n: np.stack([f[n] for f in feeds]) for n in names})
        return np.concatenate([self.predict_arrays({n: f[n][None] for n in names}) for f in feeds])


def _name(item: ImageInput) -> str:
    if isinstance(item, bytes):
        return f"<{len(item)} bytes>"
    return str(item) if isinstance(item, (str, os.PathLike)) else "<image in memory>"


def _as_iterable(items: ImageInput | Iterable[ImageInput]) -> Iterable:
    if isinstance(items, (str, os.PathLike, bytes, Image.Image)):
        return [items]
    if isinstance(items, np.ndarray) and items.ndim <= 3:  # one HxW or HxWxC image; NxHxWxC is a list
        return [items]
    return items


def _chunks(items: Iterable, size: int) -> Iterator[list[tuple[int, Any]]]:
    """``(index, item)`` lists of ``size``, read from ``items`` only as each one is needed."""
    numbered = enumerate(items)
    while chunk := list(itertools.islice(numbered, size)):
        yield chunk
