"""The ``jetson`` extra resolves to binary wheels for a Jetson (manylinux aarch64, CPython 3.10).

This asks the package index (``pip install --dry-run`` with ``--platform``/``--python-version``/
``--only-binary=:all:``), as CI can; it is skipped when the index cannot be reached, which it probes
first by resolving numpy for the same platform.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11, as CI runs

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = [
    "--platform",
    "manylinux_2_35_aarch64",
    "--python-version",
    "310",
    "--implementation",
    "cp",
    "--abi",
    "cp310",
    "--only-binary=:all:",
]


def jetson_requirements() -> list[str]:
    """The extra's requirements with ``edgeiqa[...]`` self-references expanded."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def expand(name: str) -> list[str]:
        out = []
        for req in extras[name]:
            if req.startswith("edgeiqa["):
                for sub in req[len("edgeiqa[") : -1].split(","):
                    out += expand(sub.strip())
            else:
                out.append(req)
        return out

    return sorted(set(expand("jetson")))


def test_the_jetson_extra_leaves_out_what_a_jetson_cannot_install() -> None:
    names = {r.split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in jetson_requirements()}
    assert {"onnxruntime", "scipy", "psutil", "matplotlib"} <= names
    assert not names & {"coremltools", "tensorrt", "cuda-python", "torch", "pycuda"}


def _dry_run(requirements: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    # --isolated: the index a CI runner (or a Jetson) sees, not this machine's pip configuration.
    argv = [
        sys.executable,
        "-m",
        "pip",
        "--isolated",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--target",
        str(tmp_path / "target"),
        "--timeout",
        "20",
        *PLATFORM,
        *requirements,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


@pytest.mark.network
def test_the_jetson_extra_resolves_to_aarch64_cp310_wheels(tmp_path: Path) -> None:
    probe = _dry_run(["numpy"], tmp_path)
    if probe.returncode != 0:
        errors = [line for line in probe.stderr.splitlines() if "ERROR" in line or "Error" in line]
        pytest.skip(f"the package index cannot be reached: {(errors or ['no answer'])[0]}")
    done = _dry_run(jetson_requirements(), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
