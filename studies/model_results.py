"""One results file per study, one entry per model: measured once, written after each, kept on a re-run.

``studies/uhd_check.py`` and ``studies/degrade_check.py`` take models as ``NAME=PATH`` and share this loop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgeiqa.fileio import atomic_write_text


def measure_models(
    out: Path,
    header: dict[str, Any],
    specs: Sequence[str],
    measure: Callable[[str], dict[str, Any]],
    row: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """``measure(PATH)`` for every ``NAME=PATH`` not yet in ``out``'s ``models`` (delete an entry to redo it),
    stored with its path and seconds; ``rows`` (what docs/results.md renders) holds ``row(entry)`` per model.
    ``header`` is written over the file's top-level keys; the file is rewritten after each model."""
    result = json.loads(out.read_text()) if out.exists() else {}
    result.update(header)
    models = result.setdefault("models", {})
    for spec in specs:
        name, _, path = spec.partition("=")
        if name in models:
            continue
        start = time.perf_counter()
        models[name] = {"path": path, **measure(path), "seconds": round(time.perf_counter() - start, 1)}
        result["rows"] = {n: row(m) for n, m in models.items()}
        atomic_write_text(out, json.dumps(result, indent=1, sort_keys=True))
        print(name, json.dumps(result["rows"][name]))
    return result
