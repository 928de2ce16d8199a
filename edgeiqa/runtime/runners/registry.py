"""One record per backend, and everything that used to list backends by name, derived from the records.

A :class:`Backend` says what one runtime can run (its artifact formats and file suffixes), how to make
its runner (a ``"module:Class"`` imported only when a runner is made, so the table loads anywhere), what
``threads=`` sets in it, and what it can do (precisions, dynamic batch, platforms, the package it needs,
whether it needs torch). From the records come: the manifest's format list (:func:`format_names`), the
backends of a format and its default (:func:`backends_for_format`: the first backend registered for a
format is its default), :func:`runner_for`, the bench targets' backend names and thread option, the
export layer's "can the gate run here" and the CLI's choices.

Adding a backend is one runner module and one record: a torch-free one goes into
:data:`edgeiqa.runtime.runners.backends.BUILTIN`; one that needs another layer (torch) registers its
record from its own floor with :func:`register`, and is found on demand through the entry-point group
:data:`PLUGIN_GROUP`, so the runtime never names a module above itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from edgeiqa.errors import ConfigError, EdgeIQAError
from edgeiqa.runtime.runners.base import ModelSource, PathLike, Runner

if TYPE_CHECKING:  # the manifest module asks this one for the format list
    from edgeiqa.runtime.manifest import ArtifactManifest

RunnerFactory = Callable[..., Runner]
PathRule = Callable[[Path], bool]
# Backends that live above the torch-free runtime are packaging plugins: the entry-point group names, per
# backend, its record (or a function that registers it). Read only when a lookup misses.
PLUGIN_GROUP = "edgeiqa.backends"
_PLATFORM_NAMES = {"darwin": "macOS", "linux": "Linux", "win32": "Windows"}


@dataclass(frozen=True)
class Backend:
    """One backend.

    Attributes:
        name: the backend's name (``onnxruntime``), as in ``--backend`` and ``PATH@backend``.
        title: its name for people (``ONNX Runtime``).
        runner: ``"module:Class"`` of its :class:`Runner` (imported when a runner is made), or the class.
        formats: the manifest formats it runs; for each format the first backend registered is the default.
        suffixes: the artifact file (or folder) suffixes it reads.
        modules: the importable packages it needs, any one of them (``ai_edge_litert`` or ``tflite_runtime``).
        extra: the ``pip install 'edgeiqa[<extra>]'`` that provides them.
        thread_option: what ``threads=`` sets in the backend; None: no thread knob (ignored).
        default_options: runner options :func:`create_runner` passes unless the caller gives them.
        precision_option: the runner option that pins the compute precision (OpenVINO would otherwise
            run an "FP32" model in bf16), which the parity gate sets; None: the graph runs as stored.
        precisions: the artifact precisions it runs.
        dynamic_batch: whether one call runs a whole batch (False: a fixed batch-1 model is run one
            sample at a time, or the engine's optimisation profile bounds the batch).
        platforms: ``sys.platform`` values it runs on; empty: any.
        needs_torch: whether it imports torch (never true of a built-in runtime backend).
        claims_path: for a model that carries its own contract (a torch checkpoint folder): the one rule
            that says a path with no manifest beside it is this backend's. Its runner takes ``verify=``.
    """

    name: str
    title: str
    runner: str | RunnerFactory
    formats: tuple[str, ...]
    suffixes: tuple[str, ...]
    modules: tuple[str, ...]
    extra: str
    thread_option: str | None
    precisions: tuple[str, ...]
    dynamic_batch: bool = True
    platforms: tuple[str, ...] = ()
    needs_torch: bool = False
    default_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    precision_option: str | None = None
    claims_path: PathRule | None = None

    def runner_class(self) -> RunnerFactory:
        """The runner class, imported now."""
        if not isinstance(self.runner, str):
            return self.runner
        module, _, attribute = self.runner.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def accepts(self, option: str) -> bool:
        """Whether its runner takes the keyword ``option``."""
        return option in inspect.signature(self.runner_class()).parameters

    @property
    def runs_here(self) -> bool:
        """Whether it can run on this machine: the platform is right and its package is installed."""
        if self.platforms and sys.platform not in self.platforms:
            return False
        return any(importlib.util.find_spec(m) is not None for m in self.modules)

    def not_here_reason(self) -> str:
        """Why :attr:`runs_here` is False, in one line (for a parity record)."""
        if self.platforms and sys.platform not in self.platforms:
            where = " or ".join(_PLATFORM_NAMES.get(p, p) for p in self.platforms)
            return f"{self.title} prediction needs {where}"
        return f"{self.title} prediction needs the '{self.modules[0]}' package, which is not installed here"


_REGISTRY: dict[str, Backend] = {}
_SCANNED: list[bool] = []  # non-empty once every plugin of the group was offered (entry points cost a scan)


def register(backend: Backend) -> Backend:
    """Add (or replace, by name) a backend record; returns it. Registration order sets format defaults."""
    _REGISTRY[backend.name] = backend
    return backend


def registered() -> tuple[Backend, ...]:
    """Every backend registered so far (built-ins, plus plugins already loaded), in registration order."""
    return tuple(_REGISTRY.values())


def load_plugins(only: str | None = None) -> None:
    """Register the backends the installed packages declare under :data:`PLUGIN_GROUP`.

    A plugin whose own dependency is missing stays unregistered; one whose module does not import at
    all means the installed package metadata is stale, which is said in one line.
    """
    from importlib.metadata import entry_points

    if only is None:
        if _SCANNED:
            return
        _SCANNED.append(True)
    for entry in entry_points(group=PLUGIN_GROUP):
        if (only is not None and entry.name != only) or entry.name in _REGISTRY:
            continue
        try:
            loaded = entry.load()
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("edgeiqa"):
                raise EdgeIQAError(
                    f"backend plugin {entry.name!r} names {entry.value}, which does not import "
                    "(stale package metadata: reinstall edgeiqa, pip install -e .)"
                ) from exc
            continue  # the plugin's own dependency is missing
        except ImportError:
            continue
        record = loaded if isinstance(loaded, Backend) else loaded()
        if isinstance(record, Backend) and record.name not in _REGISTRY:
            register(record)


def get_backend(name: str) -> Backend:
    """The record of backend ``name`` (plugins loaded on a miss); a one-line error names the known ones."""
    if name not in _REGISTRY:
        load_plugins(only=name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; registered: {', '.join(_REGISTRY)}") from None


def format_names() -> tuple[str, ...]:
    """Every artifact format some backend runs (plugins included), in registration order: the CLI's choices."""
    load_plugins()
    return _formats()


def is_known_format(fmt: str) -> bool:
    """Whether some backend runs ``fmt`` (plugins are scanned only when the built-ins do not)."""
    return fmt in _formats() or fmt in format_names()


def _formats() -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for b in _REGISTRY.values() for f in b.formats))


def backend_names() -> tuple[str, ...]:
    """Every backend name (plugins included), for ``PATH@backend`` and ``--backend``."""
    load_plugins()
    return tuple(_REGISTRY)


def backends_for_format(fmt: str) -> tuple[str, ...]:
    """The backends that run ``fmt``, its default first; an unknown format is a one-line error."""
    if fmt not in _formats():
        load_plugins()
    names = tuple(b.name for b in _REGISTRY.values() if fmt in b.formats)
    if not names:
        raise ConfigError(f"no backend runs the artifact format {fmt!r}; known formats: {', '.join(_formats())}")
    return names


def claiming_backend(path: PathLike) -> Backend | None:
    """The backend whose path rule claims ``path`` (a checkpoint folder for torch), or None."""
    path = Path(path)
    for loaded_plugins in (False, True):
        if loaded_plugins:
            load_plugins()
        for backend in _REGISTRY.values():
            if backend.claims_path is not None and backend.claims_path(path):
                return backend
    return None


def create_runner(backend: str, model: ModelSource, **opts: Any) -> Runner:
    """An (inactive) runner of a registered backend for a file or an in-memory model; ``opts`` go to
    its constructor over the record's ``default_options``, and a wrong option is a one-line error."""
    record = get_backend(backend)
    factory = record.runner_class()
    options = {**record.default_options, **opts}
    try:
        inspect.signature(factory).bind(model, **options)
    except TypeError as exc:
        raise ConfigError(f"backend {backend!r} does not accept the options {sorted(opts)} ({exc})") from exc
    return factory(model, **options)


def runner_for(manifest: ArtifactManifest, artifact_path: PathLike, backend: str | None = None, **opts: Any) -> Runner:
    """An (inactive) runner for the artifact the manifest describes; ``backend`` overrides the default."""
    allowed = backends_for_format(manifest.format)
    backend = backend or allowed[0]
    if backend not in allowed:
        raise ConfigError(
            f"backend {backend!r} cannot run a {manifest.format!r} artifact ({artifact_path}); "
            f"use one of: {', '.join(allowed)}"
        )
    return create_runner(backend, artifact_path, **opts)
