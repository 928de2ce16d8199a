"""Build TensorRT engines from the export layer's ONNX files, on the target (Jetson or GPU box).

NOT RUN on the development machines: TensorRT cannot be installed there (no NVIDIA GPU, no wheel).
What was checked here: the plan (:mod:`edgeiqa.export.tensorrt_plan`: path per TensorRT major
version, flags, profile shapes, trtexec line), the calibration batches the TensorRT 10 calibrator
would be fed, the one-line error when TensorRT is absent, and the call sequence below against a fake
of the API in the tests. What was NOT run: any real ``tensorrt`` call (parsing, building, the
``IInt8EntropyCalibrator2`` subclass under a real builder, engine serialization) and any GPU buffer
code. Written against the documented Python API of TensorRT 10 and 11 (docs.nvidia.com, including the
10.x -> 11.x migration guide): ``Builder``, ``create_network(flags)``, ``OnnxParser.parse_from_file``,
``create_builder_config``, ``set_memory_pool_limit(MemoryPoolType.WORKSPACE, ...)``,
``create_optimization_profile`` + ``set_shape``, ``add_optimization_profile``, and for the
TensorRT 10 implicit INT8 path ``BuilderFlag.INT8``, ``int8_calibrator``, ``set_calibration_profile``
(removed in 11), then ``build_serialized_network``. Run ``edgeiqa build-engine`` and a parity check
against the ONNX file on the target before trusting an engine.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.errors import ConfigError, require
from edgeiqa.export.artifact import ExportedFiles, input_specs, output_specs
from edgeiqa.export.errors import ExportError
from edgeiqa.export.images import ImageSet, iter_feeds
from edgeiqa.export.options import ExportOptions
from edgeiqa.export.tensorrt_plan import (
    PATH_IMPLICIT_INT8,
    EnginePlan,
    ProfileShapes,
    default_profile,
    graph_precision,
    plan_engine,
)
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.manifest import (
    ArtifactManifest,
    library_versions,
    manifest_path_for,
    read_manifest,
    sha256_file,
    write_manifest,
)
from edgeiqa.runtime.parity_record import ParityRecord


def import_tensorrt() -> Any:
    """``tensorrt``, or a one-line :class:`MissingDependencyError` saying where engines are built."""
    return require("tensorrt", "tensorrt", "building TensorRT engines (do it on the target GPU / Jetson)")


def trt_major_version(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def contract_for(onnx_path: Path, contract: PreprocessContract | None) -> PreprocessContract:
    """The explicit contract, else the one in the manifest beside the ONNX file."""
    if contract is not None:
        return contract
    manifest = manifest_path_for(onnx_path)
    if not manifest.is_file():
        raise ConfigError(f"{onnx_path}: no manifest beside it ({manifest.name}); pass the preprocessing contract")
    return read_manifest(manifest).contract


def plan_for_onnx(
    onnx_path: str | os.PathLike,
    precision: str,
    engine_path: str | os.PathLike,
    *,
    trt_major: int,
    contract: PreprocessContract | None = None,
    profile: ProfileShapes | None = None,
    cache: str | os.PathLike | None = None,
    workspace_mb: int = 1024,
) -> EnginePlan:
    """:func:`plan_engine` for a real ONNX file: reads its content (Q/DQ, FP16, FP32) and its manifest."""
    onnx = require("onnx", "onnx", "planning TensorRT engines")
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ConfigError(f"{onnx_path}: ONNX file not found")
    graph = graph_precision(onnx.load(str(onnx_path), load_external_data=False))
    return plan_engine(
        onnx_path,
        precision,
        engine_path,
        trt_major=trt_major,
        contract=contract_for(onnx_path, contract),
        graph=graph,
        profile=profile,
        cache=cache,
        workspace_mb=workspace_mb,
    )


def calibration_batches(
    paths: Sequence[str], contract: PreprocessContract, profile: ProfileShapes, skipped: list[str] | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Full float32 batches in the profile's opt shapes, for TensorRT 10's implicit INT8 calibrator.

    Images whose preprocessed shape differs from the opt shape (aspect-preserving contracts) are left
    out and their paths appended to ``skipped``; the last batch is padded by repetition.
    """
    batch = profile.opt["image"][0]
    wanted = {name: tuple(shape[1:]) for name, shape in profile.opt.items()}
    matching = []
    for path in paths:
        feed = next(iter_feeds([path], contract, 1))
        if all(tuple(feed[n].shape[1:]) == s for n, s in wanted.items()):
            matching.append(path)
        elif skipped is not None:
            skipped.append(path)
    if not matching:
        raise ConfigError(f"no calibration image preprocesses to the profile's opt shapes {wanted}")
    for feed in iter_feeds(matching, contract, batch, fixed_batch=True):
        yield {name: feed[name].astype(np.float32, copy=False) for name in wanted}


def build_engine(
    onnx_path: str | os.PathLike,
    precision: str,
    out: str | os.PathLike,
    *,
    calib: Sequence[str] | None = None,
    cache: str | os.PathLike | None = None,
    contract: PreprocessContract | None = None,
    profile: ProfileShapes | None = None,
    workspace_mb: int = 1024,
) -> EnginePlan:
    """Build and write the engine for ``onnx_path``; prints the equivalent trtexec line; returns the plan.

    ``calib`` (image paths) feeds TensorRT 10's implicit INT8 calibrator when the ONNX is FP32;
    ``cache`` is its calibration cache (read if present, written after calibration).
    """
    trt = import_tensorrt()
    plan = plan_for_onnx(
        onnx_path,
        precision,
        out,
        trt_major=trt_major_version(trt),
        contract=contract,
        profile=profile,
        cache=cache,
        workspace_mb=workspace_mb,
    )
    print(f"equivalent: {plan.trtexec}")
    batches = None
    if plan.path == PATH_IMPLICIT_INT8:
        cache_file = Path(plan.calibration_cache or "")
        if not calib and not cache_file.is_file():
            raise ConfigError(f"an INT8 engine from the FP32 graph {onnx_path} needs calibration images or a cache")
        the_contract = contract_for(Path(onnx_path), contract)
        batches = lambda: calibration_batches(list(calib or []), the_contract, plan.profile)  # noqa: E731
    start = time.perf_counter()
    serialized = _build(trt, plan, batches)
    _write_bytes(Path(out), bytes(serialized))
    print(f"built {out} in {time.perf_counter() - start:.1f} s ({plan.path}, TensorRT {trt.__version__})")
    return plan


def _build(trt: Any, plan: EnginePlan, batches: Callable[[], Iterable[dict[str, np.ndarray]]] | None) -> Any:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(plan.onnx):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"{plan.onnx}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    profile = builder.create_optimization_profile()
    for name in plan.profile.opt:
        profile.set_shape(name, plan.profile.min[name], plan.profile.opt[name], plan.profile.max[name])
    config.add_optimization_profile(profile)
    calibrator = None
    if batches is not None:
        cache = Path(plan.calibration_cache or "")
        calibrator = make_entropy_calibrator(trt, batches, plan.calibration_batch or 1, cache)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.release()
    if serialized is None:
        raise ExportError(f"{plan.onnx}: TensorRT could not build a {plan.precision} engine (see its log above)")
    return serialized


def make_entropy_calibrator(
    trt: Any, batches: Callable[[], Iterable[dict[str, np.ndarray]]], batch_size: int, cache: Path
) -> Any:
    """An ``IInt8EntropyCalibrator2`` (TensorRT 10 only) feeding ``batches()`` through device buffers."""
    from edgeiqa.runtime.runners.tensorrt_runner import open_cuda_memory

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._memory = open_cuda_memory(0)
            self._batches = iter(batches())
            self._buffers: dict[str, tuple[Any, int]] = {}
            self._host: list[np.ndarray] = []  # alive until the copies finish

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            feed = next(self._batches, None)
            if feed is None:
                return None
            self._memory.push()
            try:
                self._host = [np.ascontiguousarray(feed[n], dtype=np.float32) for n in names]
                for name, host in zip(names, self._host):
                    if name not in self._buffers:
                        self._buffers[name] = self._memory.alloc(host.nbytes)
                    self._memory.htod(self._buffers[name][1], host)
                self._memory.synchronize()
            finally:
                self._memory.pop()
            return [self._buffers[n][1] for n in names]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            _write_bytes(cache, bytes(data))

        def release(self) -> None:
            for handle, _ in self._buffers.values():
                self._memory.free(handle)
            self._buffers.clear()
            self._memory.close()

    return EntropyCalibrator()


def _write_bytes(path: Path, data: bytes) -> None:
    """Atomic write: temporary file in the target folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_engine_manifest(
    plan: EnginePlan,
    val: ImageSet | None = None,
    options: ExportOptions | None = None,
    contract: PreprocessContract | None = None,
) -> Path:
    """The engine's manifest, inherited from its ONNX file's; parity against that ONNX when ``val`` is given.

    On a device the torch model is usually absent, so the reference is the ONNX file the engine was
    built from, run by ONNX Runtime (``reference: "onnx:<file>"``).
    """
    from edgeiqa.export.parity import skipped  # parity needs scipy: planning and building do not

    onnx_path, engine = Path(plan.onnx), Path(plan.engine)
    source_manifest = manifest_path_for(onnx_path)
    base = read_manifest(source_manifest) if source_manifest.is_file() else None
    the_contract = contract_for(onnx_path, contract)
    sha = {"artifact": sha256_file(engine), "onnx": sha256_file(onnx_path)}
    if base is not None and base.sha256.get("checkpoint"):
        sha["checkpoint"] = base.sha256["checkpoint"]
    manifest = ArtifactManifest(
        format="tensorrt",
        precision=plan.precision,
        artifact=engine.name,
        model=base.model if base else onnx_path.stem,
        inputs=base.inputs if base else input_specs(the_contract),
        outputs=base.outputs if base else output_specs(),
        preprocess=the_contract.to_dict(),
        score_mapping=base.score_mapping if base else {},
        sha256=sha,
        versions=library_versions(),
        extra={"plan": plan.to_dict(), "source_onnx": onnx_path.name},
    )
    no_images = "no validation images given when the engine was built; rerun build-engine with --val"
    record = skipped(no_images) if val is None else _engine_parity(plan, manifest, val, options or ExportOptions())
    manifest.parity, manifest.valid = record.to_dict(), record.valid
    return write_manifest(manifest, manifest_path_for(engine))


def _engine_parity(plan: EnginePlan, manifest: ArtifactManifest, val: ImageSet, options: ExportOptions) -> ParityRecord:
    # Imported here: the gate needs scipy (SRCC), planning and building an engine do not.
    from edgeiqa.export.parity import gate_runner
    from edgeiqa.runtime.runners import OnnxRuntimeRunner, TensorRTRunner

    with OnnxRuntimeRunner(plan.onnx, providers=["cpu"]) as reference:
        return gate_runner(
            TensorRTRunner(plan.engine),
            lambda feed: reference.infer(feed)["score"],
            f"onnx:{Path(plan.onnx).name}",
            val,
            manifest.contract,
            plan.precision,
            options,
        )


def export_tensorrt(
    source: Any, precision: str, work: Path, name: str, calib: ImageSet | None, options: ExportOptions
) -> ExportedFiles:
    """The ``tensorrt`` format's exporter: the FP16 / Q/DQ INT8 ONNX, then an engine built from it here."""
    import_tensorrt()  # fail before the ONNX export when this machine cannot build engines
    from edgeiqa.export.onnx_export import export_onnx

    # INT8: a QAT student's own Q/DQ (int8-qat) or post-training symmetric Q/DQ (int8-trt); both explicit.
    onnx_precision = "fp16" if precision == "fp16" else ("int8-qat" if source.fake_quantized else "int8-trt")
    onnx_files = export_onnx(source, onnx_precision, work, f"_engine_source_{onnx_precision}.onnx", calib, options)
    engine = work / name
    profile = default_profile(source.contract, max_side_factor=options.max_side_factor)
    plan = build_engine(onnx_files.artifact, precision, engine, contract=source.contract, profile=profile)
    record = dataclasses.replace(plan, onnx=onnx_files.artifact.name, engine=name).to_dict()
    return ExportedFiles(engine, onnx_files.inputs, onnx_files.outputs, {"onnx": onnx_files.details, "plan": record})
