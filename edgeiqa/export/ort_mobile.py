"""ONNX Runtime Mobile: the ``.ort`` format that Android/iOS builds of ONNX Runtime load, plus the
reduced-operator config file a minimal ONNX Runtime build is compiled from.

A format of its own (``--format ort``), not an option of the ONNX exporter: the ``.ort`` file is a
different artifact (its own hash, manifest and parity gate), the ONNX exporter stays untouched, and
the one FORMATS table keeps describing every artifact. The exporter writes the ONNX file of the same
precision first (:func:`edgeiqa.export.onnx_export.export_onnx`: FP32, FP16, or U8S8 INT8, the ARM/x86
CPU flavour), then ONNX Runtime's own converter (``onnxruntime.tools.convert_onnx_models_to_ort``)
optimises it at level ``all`` for ``target_platform="arm"`` (no x86-only NCHWc layout) with a fixed
optimisation style, saves it in ORT format and writes ``required_operators_and_types.config`` (type
reduction on) beside it: the ops and types a ``--minimal_build --include_ops_by_config`` build needs.
The parity gate runs the ``.ort`` file in the ONNX Runtime runner here (ONNX Runtime loads both formats).
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Any

from edgeiqa.errors import require
from edgeiqa.export.artifact import ExportedFiles
from edgeiqa.export.errors import ExportError
from edgeiqa.export.images import ImageSet
from edgeiqa.export.onnx_export import export_onnx
from edgeiqa.export.options import ExportOptions
from edgeiqa.export.source import ExportSource

TARGET_PLATFORM = "arm"
CONFIG_SUFFIX = ".required_operators_and_types.config"


def export_ort(
    source: ExportSource, precision: str, work: Path, name: str, calib: ImageSet | None, options: ExportOptions
) -> ExportedFiles:
    """The ``ort`` format's exporter: the ONNX export of ``precision``, converted to ORT format."""
    stem = Path(name).stem
    onnx_dir = work / "_onnx"
    onnx_dir.mkdir()
    onnx = export_onnx(source, precision, onnx_dir, f"{stem}.onnx", calib, options)
    details = dict(onnx.details)
    details["ort"] = convert_to_ort(onnx.artifact, work)
    target, config = work / f"{stem}.ort", work / f"{stem}{CONFIG_SUFFIX}"
    return ExportedFiles(target, onnx.inputs, onnx.outputs, details, (config,))


def convert_to_ort(onnx_path: Path, out_dir: Path, target_platform: str = TARGET_PLATFORM) -> dict[str, Any]:
    """``model.onnx`` -> ``out_dir/model.ort`` + ``model.required_operators_and_types.config``; what was done."""
    ort = require("onnxruntime", "onnx", "ORT-format conversion")
    tool = require("onnxruntime.tools.convert_onnx_models_to_ort", "onnx", "ORT-format conversion")
    start = time.perf_counter()
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):  # the tool prints every step
            tool.convert_onnx_models_to_ort(
                onnx_path,
                output_dir=out_dir,
                optimization_styles=[tool.OptimizationStyle.Fixed],
                target_platform=target_platform,
                enable_type_reduction=True,
            )
    except Exception as exc:  # the tool re-raises ORT's own exception types
        text = str(exc).strip().splitlines()
        raise ExportError(
            f"{onnx_path.name}: ONNX Runtime cannot convert it to ORT format "
            f"({text[0] if text else type(exc).__name__})"
        ) from exc
    ort_path = out_dir / f"{onnx_path.stem}.ort"
    config = out_dir / f"{onnx_path.stem}{CONFIG_SUFFIX}"
    if not ort_path.is_file() or not config.is_file():
        raise ExportError(f"{onnx_path.name}: the ORT converter wrote no {ort_path.name} / {config.name}")
    return {
        "converter": f"onnxruntime {ort.__version__} tools.convert_onnx_models_to_ort",
        "optimization": "level all, style Fixed",
        "target_platform": target_platform,
        "type_reduction": True,
        "config": config.name,
        "operators": read_config(config),
        "seconds": round(time.perf_counter() - start, 3),
    }


def read_config(config: Path) -> dict[str, list[str]]:
    """``domain;opset;Op1{types},Op2`` lines -> ``{"ai.onnx:17": ["Conv", ...]}`` (types dropped)."""
    ops: dict[str, list[str]] = {}
    for line in config.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(";", 2)
        if len(parts) != 3:
            continue
        domain, opset, names = parts
        # Type lists hold commas inside braces: split on commas outside them.
        depth, current, found = 0, "", []
        for char in names:
            depth += char == "{"
            depth -= char == "}"
            if char == "," and depth == 0:
                found.append(current)
                current = ""
            else:
                current += char
        found.append(current)
        key = f"{domain or 'ai.onnx'}:{opset}"
        ops.setdefault(key, []).extend(sorted({n.split("{")[0].strip() for n in found if n.strip()}))
    return ops
