"""``export_artifact``: one source, one format, one precision -> an artifact, its parity record, its manifest.

Steps: load the source; export into a private work folder inside ``out_dir`` (the format's exporter
from :data:`~edgeiqa.export.formats.FORMATS`); run the parity gate there on the finished artifact
where its backend runs on this machine; move the artifact into ``out_dir`` (``os.replace``); write
the manifest (atomic too). Beyond tolerance the manifest says ``valid: false`` and a
:class:`~edgeiqa.export.errors.ParityError` is raised after everything is written, so the failure is
recorded. Formats that cannot run here (Core ML off macOS) are written ``valid: true`` with
``parity: {"verdict": "unverified", ...}``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeiqa.errors import ConfigError
from edgeiqa.export.artifact import ExportedFiles, companions_of, place, size_of
from edgeiqa.export.bundled import calibration_for
from edgeiqa.export.errors import ParityError
from edgeiqa.export.formats import ExportFormat, get_format
from edgeiqa.export.images import ImageSet
from edgeiqa.export.options import ExportOptions
from edgeiqa.export.parity import run_parity, skipped
from edgeiqa.export.polygraphy_lint import polygraphy_lint
from edgeiqa.export.source import ExportSource, SourceLike, load_export_source
from edgeiqa.runtime.manifest import (
    ArtifactManifest,
    library_versions,
    manifest_path_for,
    read_manifest,
    sha256_file,
    write_manifest,
)
from edgeiqa.runtime.parity_record import ParityRecord, Verdict

ImagesLike = ImageSet | Sequence[str | os.PathLike] | None


@dataclass
class ExportResult:
    """Where the artifact and its manifest are, and what the gate found."""

    artifact: Path
    manifest_path: Path
    manifest: ArtifactManifest
    seconds: float
    size_bytes: int

    @property
    def parity(self) -> ParityRecord | None:
        return self.manifest.parity_record

    @property
    def verdict(self) -> Verdict:
        """``passed``, ``failed`` or ``unverified`` (a backend that cannot run here, e.g. Core ML on Linux)."""
        return self.parity.verdict if self.parity is not None else Verdict.UNVERIFIED

    @property
    def failed(self) -> bool:
        """The gate ran and the artifact missed it; an unverified artifact has not failed, nor passed."""
        return self.verdict is Verdict.FAILED

    def summary(self) -> str:
        """One line for the CLI: artifact, size, time, parity outcome."""
        gate = self.parity.reason if self.parity is not None else "no parity run"
        state = {Verdict.PASSED: "valid", Verdict.FAILED: "NOT VALID"}.get(self.verdict, "valid, unverified")
        return (
            f"{self.artifact} ({self.size_bytes / 1e6:.2f} MB, {self.seconds:.1f} s, {state}): "
            f"{self.manifest.format} {self.manifest.precision}; parity: {gate}"
        )


def export_artifact(
    source: SourceLike,
    format: str,
    precision: str,
    out_dir: str | os.PathLike,
    calib: ImagesLike = None,
    val: ImagesLike = None,
    options: ExportOptions | None = None,
    raise_on_failure: bool = True,
) -> ExportResult:
    """Export ``source`` as ``format``/``precision`` into ``out_dir``, gate it, write its manifest.

    ``calib``: INT8 calibration images (needed by the INT8 precisions; at most
    ``options.int8.n_images`` are used). ``val``: the parity gate's images (+ MOS); without it
    the gate uses ``calib``, and fails when there is neither. ``raise_on_failure=False`` returns a
    result with ``valid`` False instead of raising :class:`ParityError`.
    """
    start = time.perf_counter()
    options = options or ExportOptions()
    src = load_export_source(source)
    fmt = get_format(format)
    fmt.check_precision(precision)
    fmt.check_source(precision, src.fake_quantized, src.checkpoint_path or f"model {src.name!r}")
    calib_set, val_set = _as_set(calib, "calibration"), _as_set(val, "validation")
    calib_set = calibration_for(src, calib_set)  # a bundled model may use the photos the install ships
    # A QAT source carries its own activation ranges: it needs no INT8 calibration images.
    if fmt.needs_calibration(precision) and calib_set is None and not src.fake_quantized:
        raise ConfigError(
            f"{format} {precision} needs INT8 calibration images (--calib): a train or val split, never test"
        )
    gate_set = val_set or calib_set
    if gate_set is None and fmt.runs_here:
        raise ConfigError("the parity gate needs images: pass --val (images + MOS) or --calib")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = fmt.artifact_name(src.name, precision)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as work:
        exported = fmt.load_exporter()(src, precision, Path(work), name, calib_set, options)
        manifest = _manifest(src, fmt, precision, exported)
        if precision in fmt.linted:  # recorded, never fatal: the parity gate decides validity
            manifest.extra["polygraphy_lint"] = polygraphy_lint(exported.artifact)
        record = _gate(src, exported.artifact, manifest, fmt, gate_set, options)
        manifest.parity, manifest.valid = record.to_dict(), record.valid
        manifest.sha256["artifact"] = sha256_file(exported.artifact)
        size = sum(size_of(f) for f in exported.files)
        # The old manifest goes first: while the new artifact lands, no manifest describes the wrong file.
        manifest_path = manifest_path_for(out / name)
        manifest_path.unlink(missing_ok=True)
        artifact = place(exported.files, out)[0]
    seconds = time.perf_counter() - start
    manifest.extra["export_seconds"] = round(seconds, 3)
    return _finish(ExportResult(artifact, manifest_path, manifest, seconds, size), raise_on_failure)


def verify_artifact(
    artifact: str | os.PathLike,
    source: SourceLike,
    val: ImagesLike,
    options: ExportOptions | None = None,
    raise_on_failure: bool = True,
) -> ExportResult:
    """Run the parity gate again on an existing artifact and rewrite its manifest with the outcome.

    For artifacts copied between machines, or to check a file against the checkpoint it claims to
    come from. A changed artifact hash is recorded (``parity.previous_sha256``).
    """
    start = time.perf_counter()
    options = options or ExportOptions()
    path = Path(artifact)
    manifest_path = manifest_path_for(path)
    manifest = read_manifest(manifest_path)
    src = load_export_source(source)
    digest = sha256_file(path)
    record = _gate(src, path, manifest, get_format(manifest.format), _as_set(val, "validation"), options)
    if digest != manifest.sha256.get("artifact"):
        record.extra["previous_sha256"] = manifest.sha256.get("artifact")
    manifest.parity, manifest.valid = record.to_dict(), record.valid
    manifest.sha256["artifact"] = digest
    size = sum(size_of(p) for p in (path, *companions_of(path)) if p.exists())
    return _finish(ExportResult(path, manifest_path, manifest, time.perf_counter() - start, size), raise_on_failure)


def _finish(result: ExportResult, raise_on_failure: bool) -> ExportResult:
    """Write the manifest (atomically), then raise :class:`ParityError` when the gate failed."""
    write_manifest(result.manifest, result.manifest_path)
    if result.failed and raise_on_failure:
        m = result.manifest
        reason = result.parity.reason if result.parity is not None else "no parity record"
        raise ParityError(
            f"{result.artifact.name}: parity gate failed for {m.format} {m.precision}: {reason}; "
            "written with valid=false (--allow-invalid runs it anyway)",
            result,
        )
    return result


def _as_set(images: ImagesLike, what: str) -> ImageSet | None:
    if images is None or isinstance(images, ImageSet):
        return images
    return ImageSet.from_paths(images, source=f"{what} paths")


def _gate(
    src: ExportSource,
    artifact: Path,
    manifest: ArtifactManifest,
    fmt: ExportFormat,
    images: ImageSet | None,
    options: ExportOptions,
) -> ParityRecord:
    if not fmt.runs_here:
        return skipped(fmt.not_here_reason())
    if images is None:
        raise ConfigError("the parity gate needs images: pass --val (images + MOS) or --calib")
    return run_parity(src, artifact, manifest, fmt, images, options)


def _manifest(src: ExportSource, fmt: ExportFormat, precision: str, exported: ExportedFiles) -> ArtifactManifest:
    mapping = dict(src.score_mapping)
    mapping["folded"] = mapping.get("kind") != "identity"
    sha = {"checkpoint": src.checkpoint_sha256} if src.checkpoint_sha256 else {}
    extra: dict[str, Any] = {"export": exported.details}
    if src.checkpoint_path:
        extra["checkpoint"] = src.checkpoint_path
    if src.quantization is not None:
        extra["quantization"] = dict(src.quantization, parity_reference=src.reference_name)
    return ArtifactManifest(
        format=fmt.name,
        precision=precision,
        artifact=exported.artifact.name,
        model=src.name,
        inputs=exported.inputs,
        outputs=exported.outputs,
        preprocess=src.contract.to_dict(),
        score_mapping=mapping,
        sha256=sha,
        versions=library_versions(),
        extra=extra,
    )
