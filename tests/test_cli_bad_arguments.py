"""Every sub-command, given a bad argument, exits 2 with exactly one ``edgeiqa: error:`` line.

The list of sub-commands comes from the parser itself, so a new sub-command without a row here fails
:func:`test_every_sub_command_has_a_bad_argument_row`.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

from edgeiqa.cli import build_parser, main

BAD = {
    "quickstart": ["quickstart", "--seed", "-3"],
    "run": ["run", "--config", "c.yaml", "--seed", "-1"],
    "data": ["data", "synth", "--out", "x", "--max-side", "0"],
    "info": ["info", "test_eqcnet", "--input", "12"],
    "train-teacher": ["train-teacher", "--config", "c.yaml", "--seed", "x"],
    "baseline": ["baseline", "--config", "c.yaml", "--seed", "-1"],
    "distill": ["distill", "--config", "c.yaml", "--bogus-flag"],
    "export": ["export", "ckpt", "--format", "onnx", "--precision", "fp32", "--out", "o", "--calib-n", "0"],
    "build-engine": ["build-engine", "m.onnx", "--precision", "int8", "--workspace-mb", "-1"],
    "predict": ["predict", "m.onnx", "a.jpg", "--workers", "-1"],
    "models": ["models", "one", "two"],
    "bench": ["bench", "m.onnx", "--out", "r.json", "--split", "bogus"],
    "report": ["report"],
    "label": ["label", "--out", "labels.csv", "--batch", "0"],
    "speed": ["speed", "m.onnx", "a.jpg", "--repeats", "0"],
}


def _sub_commands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def test_every_sub_command_has_a_bad_argument_row() -> None:
    assert sorted(BAD) == _sub_commands()


@pytest.mark.parametrize("command", sorted(BAD))
def test_bad_arguments_are_one_line_and_exit_2(command, capsys) -> None:
    assert main(BAD[command]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"edgeiqa: error: {command}"), captured.err
    assert captured.out == ""


def test_an_unknown_sub_command_is_one_line(capsys) -> None:
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.startswith("edgeiqa: error: argument command: invalid choice")


def test_predict_help_documents_batch_decoder_workers_and_verification(capsys) -> None:
    assert main(["predict", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in (
        "--batch BATCH images per inference call",
        "--decoder {auto,pillow,simplejpeg} JPEG decoder",
        "decode threads (default: the CPU count, at most 4)",
        "--no-verify",
        "--allow-invalid",
    ):
        assert needle in text


def test_the_package_parses_as_python_3_10() -> None:
    root = Path(__file__).resolve().parents[1] / "edgeiqa"
    files = sorted(root.rglob("*.py"))
    assert len(files) > 50
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 10))
