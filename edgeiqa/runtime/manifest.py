"""The artifact manifest: a JSON file beside every exported artifact that says how to run it.

``student_int8.onnx`` is described by ``student_int8.onnx.json``; a directory artifact such as
``student.mlpackage`` by ``student.mlpackage.json``. The manifest carries everything the torch-free
runtime needs (format, precision, input/output names and dynamic axes, the preprocessing contract,
the score mapping) plus provenance (hashes, library versions, parity against the torch model).
The export layer writes manifests with :func:`write_manifest`; the runtime reads them with
:func:`read_manifest`, which validates every key and names the file and key in its errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from edgeiqa.errors import ConfigError
from edgeiqa.fileio import atomic_write_text, read_json_file
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.parity_record import ParityRecord
from edgeiqa.runtime.runners.registry import format_names, is_known_format

SCHEMA = "edgeiqa.manifest/1"
PathLike = str | os.PathLike

# Packages whose versions matter for reproducing an artifact's numbers; absent ones are skipped.
DEFAULT_VERSION_PACKAGES = (
    "edgeiqa",
    "numpy",
    "pillow",
    "onnx",
    "onnxruntime",
    "openvino",
    "nncf",
    "coremltools",
    "tensorrt",
    "torch",
    "timm",
    "simplejpeg",
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class ArtifactManifest:
    """What the runtime needs to run one artifact, and where the artifact came from.

    ``inputs``/``outputs`` are lists of ``{"name", "shape", "dtype"}`` where a shape entry is an int
    or the name of a dynamic axis (``"batch"``, ``"height"``). The output is ``"score"`` of shape
    ``["batch"]`` on the MOS scale (the score mapping is folded into the model when ``folded``).
    """

    format: str
    precision: str
    artifact: str
    model: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    preprocess: dict[str, Any]
    score_mapping: dict[str, Any] = field(default_factory=dict)
    sha256: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    parity: dict[str, Any] | None = None
    valid: bool = True
    created: str = field(default_factory=_now)
    extra: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        # Store JSON's own form (tuples become lists) so a manifest equals itself after a round trip,
        # and refuse values JSON cannot hold now rather than when the file is written.
        for key in ("inputs", "outputs", "preprocess", "score_mapping", "sha256", "versions", "parity", "extra"):
            try:
                setattr(self, key, json.loads(json.dumps(getattr(self, key))))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"manifest key {key!r} is not JSON-serialisable ({exc})") from exc

    @property
    def contract(self) -> PreprocessContract:
        """The preprocessing contract the artifact was exported with."""
        return PreprocessContract.from_dict(self.preprocess)

    @property
    def parity_record(self) -> ParityRecord | None:
        """``parity`` as a typed record with its verdict (records written before verdicts read too)."""
        return None if self.parity is None else ParityRecord.from_dict(self.parity)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec["name"] for spec in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(spec["name"] for spec in self.outputs)

    def artifact_path(self, manifest_path: PathLike) -> Path:
        """The artifact's location: ``artifact`` is relative to the manifest's directory, and must stay in it
        (no ``..``, no link that leads out): a manifest may not make the runtime open or run a file elsewhere."""
        return confined(Path(manifest_path).parent, self.artifact, manifest_path)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {"schema": data.pop("schema"), **data}

    @classmethod
    def from_dict(cls, data: Any, source: str = "<manifest>") -> ArtifactManifest:
        """Validate ``data`` (parsed JSON) and build a manifest; errors name ``source`` and the key."""
        _validate(data, source)
        return cls(**data)


def tensor_spec(name: str, shape: list[int | str], dtype: str = "float32") -> dict[str, Any]:
    """One entry of ``inputs``/``outputs``."""
    return {"name": name, "shape": list(shape), "dtype": dtype}


def library_versions(packages: tuple[str, ...] = DEFAULT_VERSION_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (from package metadata: nothing heavy is imported)."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# ---------------------------------------------------------------------------------------------- validation

_REQUIRED = ("schema", "format", "precision", "artifact", "model", "inputs", "outputs", "preprocess")
_DICT_KEYS = ("score_mapping", "sha256", "versions", "extra")


def _validate(data: Any, source: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a manifest must be a JSON object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(ArtifactManifest)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r} (put custom data under 'extra')")
    for key in _REQUIRED:
        if key not in data:
            raise ConfigError(f"{source}: missing key {key!r}")
    if data["schema"] != SCHEMA:
        raise ConfigError(f"{source}: key 'schema' is {data['schema']!r}; this runtime reads {SCHEMA!r}")
    if not is_known_format(data["format"]):  # a format is what some backend record runs
        raise ConfigError(f"{source}: key 'format' is {data['format']!r}; expected one of {', '.join(format_names())}")
    for key in ("precision", "artifact", "model"):
        if not isinstance(data[key], str) or not data[key]:
            raise ConfigError(f"{source}: key {key!r} must be a non-empty string, got {data[key]!r}")
    if os.path.isabs(data["artifact"]) or ".." in Path(data["artifact"]).parts:
        raise ConfigError(
            f"{source}: key 'artifact' must name a file in the manifest's folder, got {data['artifact']!r}"
        )
    for key in ("inputs", "outputs"):
        _validate_tensors(data[key], f"{source}: key {key!r}")
    _validate_contract(data["preprocess"], source)
    for key in _DICT_KEYS:
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{source}: key {key!r} must be an object, got {type(data[key]).__name__}")
    if data.get("parity") is not None and not isinstance(data["parity"], dict):
        raise ConfigError(f"{source}: key 'parity' must be an object or null")
    if "valid" in data and not isinstance(data["valid"], bool):
        raise ConfigError(f"{source}: key 'valid' must be true or false, got {data['valid']!r}")
    if "created" in data and not isinstance(data["created"], str):
        raise ConfigError(f"{source}: key 'created' must be an ISO time string, got {data['created']!r}")


def _validate_tensors(specs: Any, where: str) -> None:
    if not isinstance(specs, list) or not specs:
        raise ConfigError(f"{where} must be a non-empty list of {{name, shape, dtype}}")
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or set(spec) != {"name", "shape", "dtype"}:
            raise ConfigError(f"{where}[{i}] must have exactly the keys name, shape, dtype; got {spec!r}")
        if not isinstance(spec["name"], str) or not isinstance(spec["dtype"], str):
            raise ConfigError(f"{where}[{i}]: name and dtype must be strings")
        shape = spec["shape"]
        if not isinstance(shape, list) or not all(
            isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in shape
        ):
            raise ConfigError(f"{where}[{i}]: shape must list ints >= 0 or axis names, got {shape!r}")


def _validate_contract(preprocess: Any, source: str) -> None:
    if not isinstance(preprocess, dict):
        raise ConfigError(f"{source}: key 'preprocess' must be an object (PreprocessContract.to_dict())")
    try:
        PreprocessContract.from_dict(preprocess)
    except ConfigError as exc:
        raise ConfigError(f"{source}: key 'preprocess': {exc}") from exc
    except TypeError as exc:  # a wrong value type inside the contract, e.g. fragments: 3
        raise ConfigError(f"{source}: key 'preprocess': {exc}") from exc


# ------------------------------------------------------------------------------------------------- file I/O


def manifest_path_for(artifact_path: PathLike) -> Path:
    """``model.onnx`` -> ``model.onnx.json``; ``model.mlpackage/`` -> ``model.mlpackage.json``."""
    path = Path(artifact_path)
    return path.with_name(path.name + ".json")


def write_manifest(manifest: ArtifactManifest, path: PathLike) -> Path:
    """Validate and write ``manifest`` to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    _seal(manifest, path)
    data = manifest.to_dict()
    _validate(data, str(path))
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    atomic_write_text(path, text)
    return path


def contract_sha256(preprocess: dict[str, Any]) -> str:
    """Digest of a manifest's ``preprocess`` block (canonical JSON), recorded as ``sha256.preprocess``."""
    canonical = json.dumps(preprocess, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def manifest_sha256(data: dict[str, Any]) -> str:
    """Digest of every key of a manifest (canonical JSON) but ``sha256.manifest`` itself: the contract,
    score mapping, precision, output names, model, the artifact's own digest, validity, parity, all of it."""
    sealed = {**data, "sha256": {k: v for k, v in (data.get("sha256") or {}).items() if k != "manifest"}}
    canonical = json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _seal(manifest: ArtifactManifest, path: Path) -> None:
    """Record what a hand edit could silently break: the contract's digest (an image input with dynamic
    height/width runs at any working size, so no shape check catches an edited ``working_size``), the
    digest of an OpenVINO ``.xml``'s ``.bin`` (the weights live there, not in the hashed ``.xml``), and
    last one digest over the whole manifest, so that no key can be edited or deleted unnoticed."""
    manifest.sha256["preprocess"] = contract_sha256(manifest.preprocess)
    artifact = manifest.artifact_path(path)
    if artifact.suffix == ".xml" and artifact.with_suffix(".bin").is_file():
        manifest.sha256["companions"] = companion_sha256((artifact.with_suffix(".bin"),))
    manifest.sha256["manifest"] = manifest_sha256(manifest.to_dict())


def confined(folder: Path, name: str, manifest_path: PathLike) -> Path:
    """``folder / name``, refused unless it resolves (links followed) inside ``folder``."""
    path = folder / name
    inside = os.path.realpath(folder)
    if ".." in Path(name).parts or os.path.isabs(name) or not os.path.realpath(path).startswith(inside + os.sep):
        raise ConfigError(
            f"{manifest_path}: {name!r} leads out of the manifest's folder {folder} (a link or '..'); "
            "a manifest may only name files beside it"
        )
    return path


def check_names_artifact(manifest: ArtifactManifest, artifact_path: PathLike, manifest_path: PathLike) -> None:
    """Refuse to run ``artifact_path`` under a manifest that describes another file (a sibling artifact)."""
    named = manifest.artifact_path(manifest_path)
    if Path(os.path.normpath(named)) != Path(os.path.normpath(artifact_path)):
        raise ConfigError(
            f"{manifest_path}: describes the artifact {manifest.artifact!r}, not {Path(artifact_path).name!r}; "
            "load the artifact the manifest names, or re-export this one"
        )


def read_manifest(path: PathLike) -> ArtifactManifest:
    """Read and validate a manifest file; every problem is a one-line :class:`ConfigError`."""
    data = read_json_file(path, "manifest", ConfigError, " (every artifact needs its <artifact>.json beside it)")
    return ArtifactManifest.from_dict(data, source=str(path))


def sha256_file(path: PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, or of a directory artifact (``.mlpackage``, OpenVINO folder).

    For a directory, every regular file is hashed in sorted relative-path order, and each file's
    relative path and size are hashed before its bytes, so renaming or moving a file changes the
    digest and no two different trees can concatenate to the same byte stream.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            name = file.relative_to(path).as_posix().encode("utf-8")
            digest.update(name + b"\0" + file.stat().st_size.to_bytes(8, "little"))
            _update_from_file(digest, file, chunk_size)
    else:
        _update_from_file(digest, path, chunk_size)
    return digest.hexdigest()


class IntegrityError(ConfigError):
    """An artifact's bytes are not the ones its manifest recorded (changed, truncated or appended to)."""


def verify_artifact_sha256(manifest: ArtifactManifest, artifact_path: PathLike, manifest_path: PathLike) -> str:
    """Check the artifact against the manifest's ``sha256.artifact``; return the digest, or fail closed.

    A weight scaled in place still loads and scores, and a byte appended reads as a protobuf error,
    so the digest is the only thing that tells a user their file is not the exported one. A missing
    digest is refused too: there is nothing to vouch for the file.
    """
    artifact_path = Path(artifact_path)
    check_names_artifact(manifest, artifact_path, manifest_path)
    sealed = manifest.sha256.get("preprocess")
    if sealed and sealed != contract_sha256(manifest.preprocess):
        raise IntegrityError(
            f"{manifest_path}: key 'preprocess' was edited after export (sha256 {contract_sha256(manifest.preprocess)} "
            f"does not match {sealed} recorded in sha256.preprocess); the artifact was trained and exported for "
            "the recorded contract: re-export it, or pass --no-verify (verify=False) to run it anyway"
        )
    _check_manifest_digest(manifest, manifest_path)
    recorded = manifest.sha256.get("artifact")
    if not artifact_path.exists():
        return ""  # the runner reports "artifact not found" with the path
    actual = sha256_file(artifact_path)
    if not recorded:
        raise IntegrityError(
            f"{artifact_path}: {manifest_path} records no sha256 for the artifact (actual sha256 {actual}); "
            "re-export it, or pass --no-verify (verify=False) to run it unchecked"
        )
    _check_digest(artifact_path, actual, recorded, manifest_path)
    # Companion files (an OpenVINO .xml's .bin holds the weights) are recorded by file name.
    companions = manifest.sha256.get("companions") or {}
    for name, digest in sorted(companions.items() if isinstance(companions, dict) else ()):
        companion = confined(artifact_path.parent, name, manifest_path)
        if companion.exists():  # a missing one is the runner's to report, with the backend's words
            _check_digest(companion, sha256_file(companion), digest, manifest_path)
    return actual


def _check_manifest_digest(manifest: ArtifactManifest, manifest_path: PathLike) -> None:
    recorded = manifest.sha256.get("manifest")
    if not recorded:
        raise IntegrityError(
            f"{manifest_path}: records no sha256.manifest (written before edgeiqa sealed every manifest key, or "
            "the key was deleted); re-export the artifact, or pass --no-verify (verify=False) to run it unchecked"
        )
    actual = manifest_sha256(manifest.to_dict())
    if actual != recorded:
        raise IntegrityError(
            f"{manifest_path}: was edited after export (sha256 {actual} does not match {recorded} recorded in "
            "sha256.manifest); re-export the artifact, or pass --no-verify (verify=False) to run it anyway"
        )


def _check_digest(path: Path, actual: str, recorded: str, manifest_path: PathLike) -> None:
    if actual != recorded:
        raise IntegrityError(
            f"{path}: sha256 {actual} does not match {recorded} recorded in {manifest_path} "
            "(the file was changed or corrupted after export); re-export it, or pass --no-verify "
            "(verify=False) to run it anyway"
        )


def companion_sha256(companions: tuple[PathLike, ...]) -> dict[str, str]:
    """``{file name: sha256}`` of an artifact's companion files, for ``manifest.sha256["companions"]``."""
    return {Path(c).name: sha256_file(c) for c in companions if Path(c).exists()}


def _update_from_file(digest: hashlib._Hash, path: Path, chunk_size: int) -> None:
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
