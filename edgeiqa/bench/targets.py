"""What one benchmark worker runs: an exported artifact on a backend, or a torch checkpoint on a device.

On the command line a target is a path, optionally followed by ``@backend`` to run an artifact on a
backend other than its format's default (``student_fp32.onnx@openvino``). A path with no manifest that
a backend's path rule claims (the torch plugin's checkpoint folder) is timed on that backend, once per
device and precision. Backend names and what ``threads`` sets come from the runtime's backend records.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.manifest import read_manifest
from edgeiqa.runtime.runners import backend_names, claiming_backend, get_backend

# "artifact": a file with a manifest; "torch": a checkpoint folder (the values bench results carry).
TargetKind = Literal["artifact", "torch"]


@dataclass(frozen=True)
class Target:
    """One thing to time in one worker process.

    ``kind`` is ``artifact`` (a file with a manifest) or ``torch`` (a checkpoint folder); ``backend`` is
    None for the format's default runner; ``torch_device``/``torch_precision`` apply to ``torch`` only.
    """

    kind: TargetKind
    path: str
    label: str
    backend: str | None = None
    providers: tuple[str, ...] | None = None
    torch_device: str = "cpu"
    torch_precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["providers"] = list(self.providers) if self.providers is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        providers = data.get("providers")
        return cls(**{**data, "providers": tuple(providers) if providers is not None else None})

    def runner_options(self, backend: str, threads: int | None) -> dict[str, Any]:
        """Keyword options for the runner of ``backend``: every runner takes ``threads``; execution
        providers go to a backend that has them."""
        opts: dict[str, Any] = {}
        if threads is not None and get_backend(backend).thread_option is not None:
            opts["threads"] = int(threads)
        if self.providers is not None and get_backend(backend).accepts("providers"):
            opts["providers"] = list(self.providers)
        if self.kind == "torch":
            opts.update(device=self.torch_device, precision=self.torch_precision)
        return opts


def _split_backend(text: str) -> tuple[str, str | None]:
    head, sep, tail = text.rpartition("@")
    if sep and head and tail in backend_names():
        return head, tail
    return text, None


def parse_targets(
    specs: Sequence[str | os.PathLike | Target],
    *,
    torch_devices: Sequence[str] = ("cpu",),
    providers: Sequence[str] | None = None,
) -> list[Target]:
    """Targets for command-line artifact specs; a torch folder yields one target per device/precision
    (CPU: fp32; CUDA: fp32 and fp16); :class:`Target` objects pass through. Missing paths raise
    :class:`ConfigError` naming them."""
    targets: list[Target] = []
    for spec in specs:
        if isinstance(spec, Target):
            targets.append(spec)
            continue
        text, backend = _split_backend(str(spec))
        path = Path(text)
        if not path.exists():
            raise ConfigError(f"{path}: artifact not found")
        if path.suffix == ".json" and path.is_file():  # a manifest given instead of its artifact
            path = read_manifest(path).artifact_path(path)
        claimed = claiming_backend(path)
        if claimed is not None:
            if backend not in (None, claimed.name):
                raise ConfigError(
                    f"{path}: a checkpoint folder runs only on the {claimed.name} backend, not {backend!r}"
                )
            targets += _torch_targets(path, torch_devices, claimed.name, claimed.precisions)
        else:
            label = path.name + (f"@{backend}" if backend else "")
            targets.append(
                Target("artifact", str(path), label, backend, tuple(providers) if providers is not None else None)
            )
    return _unique_labels(targets)


def _torch_targets(path: Path, devices: Sequence[str], backend: str, precisions: Sequence[str]) -> list[Target]:
    """One target per device and precision; half precision is timed on CUDA only (autocast)."""
    out = []
    for device in devices:
        for precision in precisions if device.startswith("cuda") else precisions[:1]:
            out.append(
                Target(
                    "torch",
                    str(path),
                    f"torch {precision} {device}",
                    backend,
                    torch_device=device,
                    torch_precision=precision,
                )
            )
    return out


def _unique_labels(targets: list[Target]) -> list[Target]:
    """Two targets may share a label (same file name in two folders): add the parent folder's name."""
    seen: dict[str, int] = {}
    for t in targets:
        seen[t.label] = seen.get(t.label, 0) + 1
    return [
        replace(t, label=f"{t.label} ({Path(t.path).resolve().parent.name}/{Path(t.path).name})")
        if seen[t.label] > 1
        else t
        for t in targets
    ]
