"""NVIDIA Polygraphy's ``check lint`` on the ONNX graphs meant for TensorRT, recorded in the manifest.

``polygraphy check lint`` runs the ONNX checker and ONNX Runtime node by node and reports invalid
nodes, unused inputs and nodes, and other graph smells, without TensorRT or a GPU (it needs
``onnx_graphsurgeon`` and ``onnxruntime``, which the ``onnx`` extra installs). Polygraphy's Python side of
the tool is not a public API, so it runs as its command line in a subprocess, with a timeout, and writes
its JSON report, which is summarised here. Polygraphy never installs anything at run time here
(``POLYGRAPHY_AUTOINSTALL_DEPS=0``): a missing package means the lint was "not run", which is recorded
and is never an export failure. A lint that finds problems is recorded too (``failed`` with its messages):
the parity gate, not the linter, decides whether an artifact is valid.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

LintVerdict = Literal["passed", "failed", "not run"]
NEEDS = ("polygraphy", "onnx_graphsurgeon", "onnxruntime")
TIMEOUT_S = 300.0
_MAIN = "import sys; from polygraphy.tools import main; sys.exit(main())"


def polygraphy_lint(path: Path, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Lint the ONNX file at ``path``; a JSON-ready ``{"verdict", "tool", ...}`` (see the module doc)."""
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        return _not_run(f"{', '.join(missing)} not installed (pip install 'edgeiqa[onnx]')")
    tool = f"polygraphy check lint {metadata.version('polygraphy')}"
    with tempfile.TemporaryDirectory(prefix="edgeiqa-lint-") as folder:
        report = Path(folder) / "lint.json"
        command = [sys.executable, "-c", _MAIN, "check", "lint", str(path), "-o", str(report)]
        env = {**os.environ, "POLYGRAPHY_AUTOINSTALL_DEPS": "0"}
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return _not_run(f"{tool} did not finish in {timeout:g} s", tool)
        if not report.is_file():  # it stopped before linting: say why in its own last words
            lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            return _not_run(
                f"{tool} wrote no report ({lines[-1].strip() if lines else f'exit {done.returncode}'})", tool
            )
        return summarise(json.loads(report.read_text(encoding="utf-8")), done.returncode, tool)


def summarise(report: dict[str, Any], returncode: int, tool: str) -> dict[str, Any]:
    """The verdict and messages of a ``check lint`` JSON report (failing nodes or exceptions: failed)."""
    entries = report.get("lint_entries") or []
    summary = report.get("summary") or {}
    failing = list(summary.get("failing") or [])
    errors = [e for e in entries if e.get("level") == "exception"]
    verdict: LintVerdict = "failed" if failing or errors or returncode != 0 else "passed"
    messages = [
        {
            "level": e.get("level"),
            "source": e.get("source"),
            "message": str(e.get("message", "")),
            "nodes": list(e.get("nodes") or []),
        }
        for e in entries
    ]
    return {
        "verdict": verdict,
        "tool": tool,
        "passing_nodes": len(summary.get("passing") or []),
        "failing_nodes": failing,
        "messages": messages,
    }


def _not_run(reason: str, tool: str = "polygraphy check lint") -> dict[str, Any]:
    return {"verdict": "not run", "tool": tool, "reason": reason}
