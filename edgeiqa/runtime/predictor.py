"""Score images with any exported artifact: ``Predictor.load("student_int8.onnx")(["a.jpg", "b.jpg"])``.

The predictor reads the manifest beside the artifact, builds the runner its format needs, and
applies the manifest's preprocessing contract exactly. Decoding runs in a thread pool one batch ahead
of inference (Pillow and libjpeg-turbo release the GIL), so batch k+1 decodes while batch k infers:
on a 4K photo decoding, not the student, is the larger cost.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edgeiqa.errors import ConfigError, ImageDecodeError
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.decode import DecoderName, get_decoder
from edgeiqa.runtime.frames import DEFAULT_BUDGET_PIXELS, FrameBudget, peek_pixels
from edgeiqa.runtime.manifest import ArtifactManifest, manifest_path_for, read_manifest, verify_artifact_sha256
from edgeiqa.runtime.preprocess import preprocess_image, to_rgb
from edgeiqa.runtime.runners import Backend, Runner, RunnerError, claiming_backend, create_runner, runner_for
from edgeiqa.runtime.zoo import resolve_model

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray
Prepared = dict | ImageDecodeError


@dataclass(frozen=True)
class ItemResult:
    """The outcome for one input: a MOS-scale ``score``, or ``error`` (one line naming the file)."""

    index: int
    source: Any
    score: float | None
    error: str | None = None


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
        max_decoded_pixels: decoded pixels allowed in flight across decode threads (default: one 4K
            frame; None: no bound). See :mod:`edgeiqa.runtime.frames`.
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
        max_decoded_pixels: int | None = DEFAULT_BUDGET_PIXELS,
    ) -> None:
        self.runner = runner
        self.frames = FrameBudget(max_decoded_pixels)
        self.contract = contract
        self.manifest = manifest
        self.workers = workers or default_workers()
        self._decode = get_decoder(decoder)
        self.decoder = decoder
        runner.activate()
        if not runner.own_views:  # a runner with its own views has its own input names
            _check_inputs(runner, contract)
        self.output_name = _pick_output(runner, manifest, output_name)
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
        max_decoded_pixels: int | None = DEFAULT_BUDGET_PIXELS,
        **runner_opts: Any,
    ) -> Predictor:
        """Load an artifact (or its ``.json`` manifest) with the runner its manifest's format needs, or a
        path with no manifest that a backend's path rule claims (a checkpoint folder: the torch plugin).
        ``None`` loads the bundled default model and a bundled model's name that model
        (:mod:`edgeiqa.runtime.zoo`).

        ``max_decoded_pixels`` bounds the decoded frames in flight (default: one 4K frame, for small
        devices); ``None`` lets every decode thread hold its own, which on 2 cores nearly doubles 4K
        throughput at the cost of one more frame of memory per thread (see :mod:`edgeiqa.runtime.frames`).

        ``backend`` overrides the runner (``openvino`` can run an ONNX file); ``runner_opts`` go to
        the runner (``threads=``, ``providers=``, ``inference_precision=``, ...).
        ``verify`` checks the artifact's sha256 against its manifest first and refuses a mismatch
        (:class:`~edgeiqa.runtime.manifest.IntegrityError`); ``verify=False`` is ``--no-verify``.
        """
        path = resolve_model(path)
        claimed = None if manifest_path_for(path).exists() or path.suffix == ".json" else claiming_backend(path)
        if claimed is not None:
            return cls._load_claimed(
                path,
                claimed,
                backend,
                decoder=decoder,
                workers=workers,
                verify=verify,
                max_decoded_pixels=max_decoded_pixels,
                **runner_opts,
            )
        if path.suffix == ".json" and path.is_file():
            manifest_file = path
            manifest = read_manifest(manifest_file)
            path = manifest.artifact_path(manifest_file)
        else:
            manifest_file = manifest_path_for(path)
            manifest = read_manifest(manifest_file)
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
        try:
            return cls(
                runner,
                manifest.contract,
                manifest=manifest,
                decoder=decoder,
                workers=workers,
                max_decoded_pixels=max_decoded_pixels,
            )
        except BaseException:
            runner.deactivate()
            raise

    @classmethod
    def _load_claimed(
        cls,
        path: Path,
        claimed: Backend,
        backend: str | None,
        *,
        decoder: DecoderName,
        workers: int | None,
        verify: bool,
        max_decoded_pixels: int | None,
        **runner_opts: Any,
    ) -> Predictor:
        """A self-describing model (a checkpoint folder) run by the backend that claims it, with its own
        contract; such a backend checks its own files, so ``verify`` goes to its runner."""
        if backend not in (None, claimed.name):
            raise ConfigError(f"{path}: this folder runs on the {claimed.name} backend, not {backend!r}")
        runner = create_runner(claimed.name, path, verify=verify, **runner_opts)
        try:
            runner.activate()  # the contract lives in the model: known only once it is loaded
            if runner.contract is None:
                raise ConfigError(f"{path}: the {claimed.name} runner found no preprocessing contract in it")
            return cls(runner, runner.contract, decoder=decoder, workers=workers, max_decoded_pixels=max_decoded_pixels)
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
        if self.runner.own_views:  # a teacher checkpoint: global view + native patches
            return self.runner.prepare_image(img)
        return preprocess_image(img, self.contract)

    def iter_predict(
        self, items: ImageInput | Sequence[ImageInput], batch_size: int = 8, workers: int | None = None
    ) -> Iterator[ItemResult]:
        """Score ``items`` batch by batch, yielding one :class:`ItemResult` per item, in order.

        Undecodable files yield an error result and the rest of their batch is still scored.
        ``workers`` overrides the decode thread count for this call.
        """
        items = _as_list(items)
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        chunks = [range(i, min(i + batch_size, len(items))) for i in range(0, len(items), batch_size)]
        return self._pipeline(items, chunks, workers)

    def _pipeline(self, items: list, chunks: list[range], workers: int | None) -> Iterator[ItemResult]:
        owned = ThreadPoolExecutor(workers, thread_name_prefix="edgeiqa-decode") if workers else None
        executor = owned or self._shared_executor()
        pending: list[Future] = []
        try:
            if chunks:
                pending = [executor.submit(self._prepare, items[i]) for i in chunks[0]]
            for k, chunk in enumerate(chunks):
                current = pending
                # Submit batch k+1 before waiting on batch k so decoding overlaps inference.
                nxt = chunks[k + 1] if k + 1 < len(chunks) else ()
                pending = [executor.submit(self._prepare, items[i]) for i in nxt]
                yield from self._score_chunk(items, chunk, [f.result() for f in current])
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
        try:
            # The frame is freed when preprocess returns (only its views survive): hold its pixels until then.
            with self.frames.hold(peek_pixels(item)):
                return self.preprocess(item)
        except ImageDecodeError as exc:  # one bad file must not sink its batch
            return exc

    def _score_chunk(self, items: list, chunk: range, prepared: list[Prepared]) -> Iterator[ItemResult]:
        good = [(i, p) for i, p in zip(chunk, prepared) if not isinstance(p, ImageDecodeError)]
        scores = dict(zip((i for i, _ in good), self._infer_feeds([p for _, p in good]))) if good else {}
        for i, p in zip(chunk, prepared):
            if isinstance(p, ImageDecodeError):
                yield ItemResult(i, items[i], None, str(p))
            else:
                yield ItemResult(i, items[i], float(scores[i]))

    def _infer_feeds(self, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Stack same-shaped inputs into one batch; aspect-preserving contracts may give mixed shapes."""
        names = list(feeds[0])
        if all(f[n].shape == feeds[0][n].shape for f in feeds for n in names):
            return self.predict_arrays({n: np.stack([f[n] for f in feeds]) for n in names})
        return np.concatenate([self.predict_arrays({n: f[n][None] for n in names}) for f in feeds])


def _as_list(items: ImageInput | Iterable[ImageInput]) -> list:
    if isinstance(items, (str, os.PathLike, bytes, Image.Image)):
        return [items]
    if isinstance(items, np.ndarray) and items.ndim <= 3:  # one HxW or HxWxC image; NxHxWxC is a list
        return [items]
    return list(items)


def _check_inputs(runner: Runner, contract: PreprocessContract) -> None:
    if set(runner.input_names) != set(contract.input_names):
        raise ConfigError(
            f"{runner.label}: the model takes inputs {list(runner.input_names)} but its preprocessing contract "
            f"produces {list(contract.input_names)}; the manifest does not describe this artifact"
        )
    declared = runner.input_shapes
    for name, (expected, key) in contract_shapes(contract).items():
        graph = declared.get(name)
        if not graph:  # the backend does not say (TensorRT, Core ML, torch): names are all we can check
            continue
        if not _compatible(graph, expected):
            raise ConfigError(
                f"{runner.label}: the graph's input {name!r} has shape {_fmt(graph)} but the manifest's "
                f"preprocessing contract produces {_fmt(expected)} ({key}); the manifest does not describe "
                "this artifact"
            )


def contract_shapes(contract: PreprocessContract) -> dict[str, tuple[tuple[int | None, ...], str]]:
    """Per input, the (batch-free: None) shape the contract produces and the contract keys that set it."""
    side = contract.working_size if contract.size_policy == "square" else None
    shapes = {
        "image": ((None, 3, side, side), f"size_policy {contract.size_policy}, working_size {contract.working_size}")
    }
    if contract.fragments is not None:
        spec, mosaic = contract.fragments, contract.fragments.mosaic_size
        shapes["fragments"] = ((None, 3, mosaic, mosaic), f"fragments grid {spec.grid} x patch {spec.patch}")
    return shapes


def _compatible(graph: tuple[int | None, ...], expected: tuple[int | None, ...]) -> bool:
    """Fixed dims must agree; a varying contract dim (aspect-preserving H/W) needs a dynamic graph dim.
    The batch dim (index 0) is free: a static batch-1 engine is the batch code's business."""
    if len(graph) != len(expected):
        return False
    for g, e in zip(graph[1:], expected[1:]):
        if (e is None and g is not None) or (e is not None and g is not None and g != e):
            return False
    return True


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _pick_output(runner: Runner, manifest: ArtifactManifest | None, requested: str | None) -> str:
    outputs = runner.output_names
    candidates = [requested] if requested else ([manifest.outputs[0]["name"]] if manifest else []) + ["score"]
    for name in candidates:
        if name in outputs:
            return name
    if requested is None and len(outputs) == 1:
        return outputs[0]
    raise ConfigError(f"{runner.label}: no score output among {list(outputs)} (looked for {candidates})")
