"""Dataset loaders by name: ``load_dataset("koniq10k", "/data/koniq")`` -> :class:`IQATable`.

A small registry in the timm manner: loaders are plain functions ``(root: Path, **options) -> IQATable``
put into one dict by :func:`register_loader`; the built-in ones are registered below, explicitly and
by name (no import side effects to rely on). A project adds its own with the same decorator::

    @register_loader("mydata")
    def load_mydata(root: Path, *, metadata: str = "scores.csv") -> IQATable: ...

Every loader validates the whole dataset (columns, every score, every image file) before it returns,
and reports the first problem as a one-line :class:`DataError` naming the file and line.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeiqa.data.formats import generic, livec, official
from edgeiqa.data.records import IQATable
from edgeiqa.errors import ConfigError, DataError

LoaderFn = Callable[..., IQATable]

_LOADERS: dict[str, LoaderFn] = {}


def register_loader(name: str) -> Callable[[LoaderFn], LoaderFn]:
    """Decorator that registers ``fn`` as the loader for dataset ``name`` (names are unique)."""

    def decorator(fn: LoaderFn) -> LoaderFn:
        if name in _LOADERS and _LOADERS[name] is not fn:
            raise ValueError(f"a dataset loader named {name!r} is already registered ({_LOADERS[name].__module__})")
        _LOADERS[name] = fn
        return fn

    return decorator


def list_loaders() -> list[str]:
    """Names of every registered dataset loader, sorted."""
    return sorted(_LOADERS)


def get_loader(name: str) -> LoaderFn:
    """The loader function registered as ``name``."""
    try:
        return _LOADERS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(list_loaders())}") from None


def load_dataset(name: str, root: str | os.PathLike[str], **options: Any) -> IQATable:
    """Load dataset ``name`` from ``root`` (its folder; for ``csv`` also the CSV file itself).

    ``options`` go to the loader (e.g. ``image_dir=``, ``metadata=``, ``mos_scale=`` for koniq10k);
    an option the loader does not take is a :class:`ConfigError` listing the ones it does.
    """
    loader = get_loader(name)
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{path}: dataset path does not exist (dataset {name!r})")
    signature = inspect.signature(loader)
    try:
        signature.bind(path, **options)
    except TypeError:
        accepted = list(signature.parameters)[1:]
        unknown = sorted(k for k in options if k not in accepted) or sorted(options)
        raise ConfigError(f"dataset {name!r} does not take option(s) {unknown}; it accepts {accepted}") from None
    return loader(path.resolve(), **options)


register_loader("uhdiqa")(official.load_uhdiqa)
register_loader("koniq10k")(official.load_koniq10k)
register_loader("spaq")(official.load_spaq)
register_loader("kadid10k")(official.load_kadid10k)
register_loader("livec")(livec.load_livec)
register_loader("csv")(generic.load_csv)
