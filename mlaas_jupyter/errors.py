"""Exceptions shared by every layer.

All of them derive from :class:`MlaasError` (itself a ``ValueError``) so that
callers — the CLI, the REST handlers, the magics — can turn any of them into a
short message without a traceback.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "ExpressionError",
    "MlaasError",
    "SourceError",
    "SpecError",
    "TrainingError",
]


class MlaasError(ValueError):
    """Base class: a problem with the user's input that a message can explain."""


class SpecError(MlaasError):
    """A dataset, model or training specification has a wrong field.

    Parameters
    ----------
    field
        Dotted path of the offending field, e.g. ``"jagged.Jet_pt.length"``.
    message
        What is wrong, including the allowed values when there is a fixed set.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class SourceError(MlaasError):
    """A file cannot be found, opened or read; the message names the file."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class ExpressionError(MlaasError):
    """A new-branch or cut expression is invalid or refers to unknown names."""

    def __init__(self, expression: str, message: str) -> None:
        self.expression = expression
        super().__init__(f"in expression {expression!r}: {message}")


class DataError(MlaasError):
    """The data themselves are unusable (no events after cuts, NaN values, ...)."""


class TrainingError(MlaasError):
    """Training cannot go on (bad model file, NaN loss, single class, ...)."""
