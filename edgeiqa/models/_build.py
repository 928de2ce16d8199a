"""Shared plumbing for the variant builders: merge overrides into a config and build the model."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.contract import PreprocessContract

C = TypeVar("C")


def _coerce(name: str, value: Any) -> Any:
    """Accept JSON-ish values (dicts, lists) for config fields that are dataclasses or tuples."""
    if name == "contract" and isinstance(value, dict):
        return PreprocessContract.from_dict(value)
    if name == "views" and isinstance(value, dict):
        from edgeiqa.models.teacher_views import TeacherViewSpec

        return TeacherViewSpec.from_dict(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def make_config(cls: type[C], variant: str, defaults: dict[str, Any], overrides: dict[str, Any]) -> C:
    """``cls(**defaults | overrides)``; an unknown key raises a ConfigError naming it and the variant."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"model {variant!r} has no option(s) {unknown}; options: {sorted(known)}")
    values = {**defaults, **overrides}
    return cls(**{k: _coerce(k, v) for k, v in values.items()})
