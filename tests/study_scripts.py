"""The study scripts under studies/ as modules, for the tests of what they compute (imported by test
modules; tests/ is on sys.path). Scripts that import their siblings put studies/ on sys.path themselves."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"


def load_study(name: str) -> ModuleType:
    """``studies/<name>.py``, executed as a fresh module named ``name``."""
    spec = importlib.util.spec_from_file_location(name, STUDIES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
