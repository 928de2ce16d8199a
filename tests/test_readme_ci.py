"""The README's set-up commands and CI stay one and the same."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_two_setup_commands_pinning_the_torch_pair() -> None:
    commands = _readme_commands()[:2]
    assert len(commands) == 2
    for command in commands:
        assert command.index("torch==2.14.1 torchvision==0.29.1") < command.index("pip install -e")


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _readme_commands()[1]
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
