"""The command line: sub-commands route to their jobs and user errors are one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeiqa.cli import main


def test_building_the_parser_imports_no_heavy_package() -> None:
    # In a fresh interpreter: this test process may already hold torch from other tests.
    code = (
        "import sys; from edgeiqa.cli import build_parser; build_parser(); "
        "print(sorted({'torch', 'onnx', 'onnxruntime', 'openvino', 'scipy'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_info_prints_cost_and_names_an_unknown_model(capsys) -> None:
    assert main(["info", "test_eqcnet", "--input", "640x480"]) == 0
    out = capsys.readouterr().out
    assert "test_eqcnet (student)" in out and "GMACs per image" in out and "640x480" in out
    assert main(["info", "no_such_model"]) == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    assert main(["info", "test_eqcnet", "--input", "4k"]) == 2
    assert "argument --input: expected WIDTHxHEIGHT" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["data", "synth", "--out", "OUT", "--pristine", "MISSING"], "does not exist"),
        (["data", "synth", "--out", "OUT", "--types", "sepia"], "sepia"),
    ],
)
def test_data_synth_user_errors_exit_2(tmp_path, capsys, argv, message) -> None:
    argv = [a.replace("OUT", str(tmp_path / "out")).replace("MISSING", str(tmp_path / "nope")) for a in argv]
    assert main(argv + ["--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgeiqa: error: ") and message in err
    assert not (tmp_path / "out").exists()
