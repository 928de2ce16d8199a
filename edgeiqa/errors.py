"""Error types whose message is a complete, one-line explanation for the user.

The CLI turns any :class:`EdgeIQAError` into ``edgeiqa: error: <message>`` on stderr and exit code 2,
with no traceback: the message must therefore name the bad file, row or value itself.
"""

from __future__ import annotations


class EdgeIQAError(Exception):
    """Base class for errors that are the user's to fix (bad input, missing file, missing extra)."""

    exit_code = 2


class DataError(EdgeIQAError):
    """A dataset's metadata or one of its images is unusable."""


class ImageDecodeError(EdgeIQAError):
    """One image file cannot be decoded (corrupt, truncated, empty, not an image, too large)."""


class ConfigError(EdgeIQAError):
    """A configuration file or value is invalid."""


class MissingDependencyError(EdgeIQAError):
    """An optional package is needed for this feature; the message says which extra installs it."""


def require(module: str, extra: str, feature: str):
    """Import an optional module or raise a one-line error naming the pip extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no branch - message is what matters
        raise MissingDependencyError(
            f"{feature} needs the '{module}' package ({exc}); install it with: pip install 'edgeiqa[{extra}]'"
        ) from exc
