"""Artifact manifest: round trip, one-line schema errors naming file and key, atomic writes, hashes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from runtime_helpers import tiny_contract

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.manifest import (
    SCHEMA,
    ArtifactManifest,
    library_versions,
    manifest_path_for,
    read_manifest,
    sha256_file,
    tensor_spec,
    write_manifest,
)


def _manifest(**overrides) -> ArtifactManifest:
    values = dict(
        format="onnx",
        precision="int8",
        artifact="student_int8.onnx",
        model="eqcnet_tiny",
        inputs=[tensor_spec("image", ["batch", 3, 224, 224]), tensor_spec("fragments", ["batch", 3, 224, 224])],
        outputs=[tensor_spec("score", ["batch"])],
        preprocess=tiny_contract().to_dict(),
        score_mapping={"kind": "logistic4", "params": [1.0, 0.0, 0.5, 0.1], "folded": True, "mos_range": [0, 1]},
        sha256={"artifact": "ab" * 32, "checkpoint": "cd" * 32},
        versions={"onnx": "1.17"},
        parity={"max_abs": 1e-4, "srcc": 0.999},
        extra={"note": "x"},
    )
    values.update(overrides)
    return ArtifactManifest(**values)


def _write_raw(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_round_trip_keeps_every_field_and_the_contract(tmp_path: Path) -> None:
    manifest = _manifest()
    path = write_manifest(manifest, tmp_path / "student_int8.onnx.json")
    again = read_manifest(path)
    assert again == manifest
    assert again.schema == SCHEMA
    assert again.contract == tiny_contract()
    assert again.input_names == ("image", "fragments") and again.output_names == ("score",)
    assert again.artifact_path(path) == tmp_path / "student_int8.onnx"
    assert json.loads(path.read_text())["schema"] == SCHEMA
    assert list(json.loads(path.read_text()))[0] == "schema"  # first key, for humans reading the file


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx.json"
    write_manifest(_manifest(), path)
    write_manifest(_manifest(precision="fp16"), path)
    assert read_manifest(path).precision == "fp16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx.json"]


def test_write_refuses_an_invalid_manifest_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = write_manifest(_manifest(), tmp_path / "m.onnx.json")
    with pytest.raises(ConfigError, match=r"m\.onnx\.json: key 'format' is 'pytorch'"):
        write_manifest(_manifest(format="pytorch"), path)
    assert read_manifest(path).format == "onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx.json"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"schema": "edgeiqa.manifest/2"},
            r"x\.json: key 'schema' is 'edgeiqa.manifest/2'; this runtime reads 'edgeiqa.manifest/1'",
        ),
        (
            {"format": "tflite"},
            r"x\.json: key 'format' is 'tflite'; expected one of onnx, ort, openvino, coreml, "
            r"litert, tensorrt, torch",
        ),
        ({"precision": ""}, r"x\.json: key 'precision' must be a non-empty string"),
        ({"artifact": "/abs/model.onnx"}, r"x\.json: key 'artifact' must name a file in the manifest's folder"),
        ({"inputs": []}, r"x\.json: key 'inputs' must be a non-empty list"),
        (
            {"outputs": [{"name": "score", "shape": ["batch"]}]},
            r"x\.json: key 'outputs'\[0\] must have exactly the keys",
        ),
        (
            {"inputs": [{"name": "image", "shape": [1.5], "dtype": "float32"}]},
            r"x\.json: key 'inputs'\[0\]: shape must list",
        ),
        ({"preprocess": {"working_size": 8}}, r"x\.json: key 'preprocess': working_size must be >= 16 px, got 8"),
        (
            {"preprocess": {"colour": "x"}},
            r"x\.json: key 'preprocess': preprocessing contract has unknown keys \['colour'\]",
        ),
        ({"sha256": "abc"}, r"x\.json: key 'sha256' must be an object, got str"),
        ({"parity": [1]}, r"x\.json: key 'parity' must be an object or null"),
        ({"valid": "yes"}, r"x\.json: key 'valid' must be true or false"),
        ({"colour": 1}, r"x\.json: unknown key 'colour' \(put custom data under 'extra'\)"),
    ],
)
def test_schema_errors_name_the_file_and_the_key(tmp_path: Path, change: dict, message: str) -> None:
    data = _manifest().to_dict()
    data.update(change)
    path = _write_raw(tmp_path / "x.json", data)
    with pytest.raises(ConfigError, match=message) as info:
        read_manifest(path)
    assert "\n" not in str(info.value)


def test_missing_key_invalid_json_and_missing_file(tmp_path: Path) -> None:
    data = _manifest().to_dict()
    del data["preprocess"]
    with pytest.raises(ConfigError, match=r"x\.json: missing key 'preprocess'$"):
        read_manifest(_write_raw(tmp_path / "x.json", data))
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "edgeiqa.manifest/1",\n "format": }')
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON \(line 2, column 12: Expecting value\)"):
        read_manifest(bad)
    with pytest.raises(ConfigError, match=r"nope\.onnx\.json: manifest not found"):
        read_manifest(tmp_path / "nope.onnx.json")
    with pytest.raises(ConfigError, match=r"list\.json: a manifest must be a JSON object, got list"):
        read_manifest(_write_raw(tmp_path / "list.json", [1, 2]))


def test_manifest_path_for_files_and_directory_artifacts() -> None:
    assert manifest_path_for("out/student_int8.onnx") == Path("out/student_int8.onnx.json")
    assert manifest_path_for("out/student.xml") == Path("out/student.xml.json")
    assert manifest_path_for("out/student.mlpackage/") == Path("out/student.mlpackage.json")


def test_sha256_of_a_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert sha256_file(path, chunk_size=4096) == hashlib.sha256(data).hexdigest()


def test_sha256_of_a_directory_is_order_independent_and_content_sensitive(tmp_path: Path) -> None:
    def make(root: Path, order: list[str], payload: bytes = b"weights") -> Path:
        for name in order:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(payload if name.endswith("bin") else name.encode())
        return root

    a = make(tmp_path / "a.mlpackage", ["Manifest.json", "Data/model.bin", "Data/spec.mlmodel"])
    b = make(tmp_path / "b.mlpackage", ["Data/spec.mlmodel", "Data/model.bin", "Manifest.json"])
    c = make(tmp_path / "c.mlpackage", ["Manifest.json", "Data/model.bin", "Data/spec.mlmodel"], b"weightz")
    assert sha256_file(a) == sha256_file(b)
    assert sha256_file(a) != sha256_file(c)
    (b / "Data" / "model.bin").rename(b / "Data" / "renamed.bin")
    assert sha256_file(a) != sha256_file(b)


def test_library_versions_reads_metadata_without_importing() -> None:
    versions = library_versions(("numpy", "not-a-real-package-xyz"))
    assert set(versions) == {"numpy"} and versions["numpy"][0].isdigit()
