"""Exceptions raised by harmcast.

Every error names what the reader needs to fix the input: the file, the row
and the field, and what was expected. Each class also subclasses a builtin so
callers that only know the builtin still catch it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "HarmcastError",
    "SchemaError",
    "LinkageError",
    "ConfigError",
    "GateFailed",
    "SensitiveFeature",
    "NotApproved",
    "ReviewError",
]


class HarmcastError(Exception):
    """Base class of every error harmcast raises on purpose."""


class SchemaError(HarmcastError, ValueError):
    """An input file does not match its published schema.

    Parameters
    ----------
    file : path of the offending file.
    message : what is wrong and what was expected.
    row : 1-based line number in the file (the header is line 1), if known.
    field : column name, if known.
    """

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        where = self.file
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class LinkageError(HarmcastError, ValueError):
    """Records cannot be linked at all (for example, no area reference)."""


class ConfigError(HarmcastError, ValueError):
    """params.yaml or policy.yaml is invalid."""


class GateFailed(HarmcastError, RuntimeError):
    """A candidate model failed one or more governance checks."""

    def __init__(self, failed: list[str]) -> None:
        self.failed = list(failed)
        super().__init__("governance gate failed: " + "; ".join(self.failed))


class SensitiveFeature(HarmcastError, ValueError):
    """An audit-only attribute is among the model's features."""


class NotApproved(HarmcastError, PermissionError):
    """A model version is not approved (or its card does not verify) for serving."""


class ReviewError(HarmcastError, PermissionError):
    """A review action is not allowed (reviewer off roster, version not gate-passed...)."""
