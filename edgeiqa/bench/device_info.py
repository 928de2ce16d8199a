"""What machine a benchmark ran on: CPU, cores, memory, OS, library versions, GPU, Jetson power state.

Every probe is guarded: a missing file, tool or package leaves its key ``None`` (or absent for the
device-specific ones) and records why under ``probe_errors``, so collecting metadata never fails a
benchmark. External tools (``nvidia-smi``, ``nvpmodel``, ``jetson_clocks``) get a short timeout: on a
Jetson ``jetson_clocks --show`` needs root and may hang waiting for nothing.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeiqa.runtime.manifest import library_versions

LIBRARIES = (
    "edgeiqa",
    "numpy",
    "pillow",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "tensorrt",
    "torch",
    "timm",
    "coremltools",
    "simplejpeg",
    "scipy",
)
_TOOL_TIMEOUT_S = 5.0
_MAX_TOOL_LINES = 12


def _read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def _cpuinfo_fields(text: str) -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per processor block."""
    blocks: list[dict[str, str]] = []
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        blocks.append(fields)
    return blocks


def cpu_model(cpuinfo_text: str | None = None) -> str | None:
    """The CPU's marketing name: x86 ``model name``; ARM boards put it in ``Hardware``/``Model``."""
    text = cpuinfo_text if cpuinfo_text is not None else _read_text("/proc/cpuinfo")
    for fields in _cpuinfo_fields(text):
        for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
            if fields.get(key):
                return fields[key]
    return platform.processor() or None


def physical_cores(cpuinfo_text: str | None = None) -> int | None:
    """Physical cores: psutil when present, else distinct (physical id, core id) pairs in /proc/cpuinfo."""
    try:
        import psutil

        count = psutil.cpu_count(logical=False)
        if count:
            return int(count)
    except ImportError:
        pass
    text = cpuinfo_text if cpuinfo_text is not None else _read_text("/proc/cpuinfo")
    pairs = {(f.get("physical id"), f.get("core id")) for f in _cpuinfo_fields(text) if "core id" in f}
    # ARM kernels print no core ids: every listed processor is then a core.
    return len(pairs) or sum(1 for f in _cpuinfo_fields(text) if "processor" in f) or None


def usable_cores() -> int | None:
    """Cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def total_ram_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        pass
    for line in _read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def run_tool(argv: list[str], timeout: float = _TOOL_TIMEOUT_S) -> str | None:
    """A tool's stdout (first lines, stripped), or None when it is not installed."""
    if shutil.which(argv[0]) is None:
        return None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    lines = [line.rstrip() for line in done.stdout.strip().splitlines()]
    return "\n".join(lines[:_MAX_TOOL_LINES]) or None


def nvidia_gpus() -> list[dict[str, str]] | None:
    """Name, driver and memory of each NVIDIA GPU that ``nvidia-smi`` lists; None without the tool."""
    out = run_tool(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if out is None:
        return None
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return gpus


def board_model() -> str | None:
    """``/proc/device-tree/model`` (NUL-terminated): the Jetson module, or any other device-tree board."""
    path = Path("/proc/device-tree/model")
    if not path.exists():
        return None
    return path.read_bytes().rstrip(b"\0").decode("utf-8", "replace").strip() or None


def cpu_governor() -> str | None:
    """cpufreq governor of CPU 0: ``performance`` vs ``powersave``/``schedutil`` moves latency a lot."""
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return path.read_text().strip() if path.exists() else None


def _probe(info: dict[str, Any], errors: dict[str, str], key: str, fn: Callable[[], Any]) -> None:
    try:
        info[key] = fn()
    except Exception as exc:  # noqa: BLE001 - a probe must never fail the benchmark
        info[key] = None
        errors[key] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def collect_device_info(device_name: str | None = None) -> dict[str, Any]:
    """JSON-ready description of this machine; ``device_name`` is the label the report groups by."""
    info: dict[str, Any] = {"name": device_name or socket.gethostname()}
    errors: dict[str, str] = {}
    probes: dict[str, Callable[[], Any]] = {
        "hostname": socket.gethostname,
        "cpu_model": cpu_model,
        "cores_logical": os.cpu_count,
        "cores_physical": physical_cores,
        "cores_usable": usable_cores,
        "ram_bytes": total_ram_bytes,
        "os": platform.platform,
        "machine": platform.machine,
        "python": lambda: sys.version.split()[0],
        "libraries": lambda: library_versions(LIBRARIES),
        "cpu_governor": cpu_governor,
        "gpus": nvidia_gpus,
        "board_model": board_model,
        "nvpmodel": lambda: run_tool(["nvpmodel", "-q"]),
        "jetson_clocks": lambda: run_tool(["jetson_clocks", "--show"]),
    }
    for key, fn in probes.items():
        _probe(info, errors, key, fn)
    info["probe_errors"] = errors
    return info
