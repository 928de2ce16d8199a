"""Errors of the export layer; each message is one line naming the artifact and what failed."""

from __future__ import annotations

from typing import Any

from edgeiqa.errors import EdgeIQAError


class ExportError(EdgeIQAError):
    """A converter failed, or produced an artifact that fails its own checks (named in the message)."""


class ParityError(EdgeIQAError):
    """An artifact's scores differ from the torch model's beyond tolerance.

    The artifact and its manifest (``valid: false``, with the parity record) are still written, so
    the failure is recorded; ``result`` is the :class:`~edgeiqa.export.exporter.ExportResult`, whose
    ``parity`` is the :class:`~edgeiqa.runtime.parity_record.ParityRecord`. The message is one short
    line: the rule that failed, by how much, and ``--allow-invalid`` (which runs the artifact anyway).
    """

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result
