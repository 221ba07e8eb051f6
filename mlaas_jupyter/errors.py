"""Exceptions shared by every layer, each with the HTTP status it stands for.

All of them derive from :class:`MlaasError` (itself a ``ValueError``) so that callers —
the CLI, the REST handlers, the magics, the client — turn any of them into a short
message without a traceback. The web layer replies with ``status``; the HTTP
transport of the client raises the same class again from that reply (see
:func:`error_for_status`), so a caller sees the same error whichever door it used.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "Conflict",
    "DataError",
    "ExpressionError",
    "MlaasError",
    "NotFound",
    "PathRefused",
    "PayloadTooLarge",
    "SourceError",
    "SpecError",
    "TrainingError",
    "error_for_status",
]


class MlaasError(ValueError):
    """Base class: a problem with the user's input that a message can explain."""

    #: the HTTP status of a reply carrying this error
    status: ClassVar[int] = 400


class SpecError(MlaasError):
    """A dataset, model, training or request specification has a wrong field.

    Parameters
    ----------
    field
        Dotted path of the offending field, e.g. ``"jagged.Jet_pt.length"``.
    message
        What is wrong, including the allowed values when there is a fixed set.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)

    def __reduce__(self) -> tuple[type[SpecError], tuple[str, str]]:
        return type(self), (self.field, self.message)


class SourceError(MlaasError):
    """A file cannot be found, opened or read; the message names the file."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self) -> tuple[type[SourceError], tuple[str, str]]:
        return type(self), (self.path, self.message)


class ExpressionError(MlaasError):
    """A new-branch or cut expression is invalid or refers to unknown names."""

    def __init__(self, expression: str, message: str) -> None:
        self.expression = expression
        self.message = message
        super().__init__(f"in expression {expression!r}: {message}")

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, str]]:
        return type(self), (self.expression, self.message)


class DataError(MlaasError):
    """The data themselves are unusable (no events after cuts, NaN values, ...)."""


class TrainingError(MlaasError):
    """Training cannot go on (bad model file, NaN loss, single class, ...)."""


class NotFound(MlaasError):
    """A job, model, file or artefact does not exist."""

    status = 404


class PathRefused(MlaasError):
    """A client path is outside the data roots (or tries to look as if it were not).

    Parameters
    ----------
    path
        The path as the client gave it.
    reason
        Why it is refused, for the client.
    """

    status = 403

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path!r}: {reason}")

    def __reduce__(self) -> tuple[type[PathRefused], tuple[str, str]]:
        return type(self), (self.path, self.reason)


class Conflict(MlaasError):
    """The thing is not in a state that allows this (a running job cannot be deleted)."""

    status = 409


class PayloadTooLarge(MlaasError):
    """A request holds more bytes or events than the service accepts."""

    status = 413


def error_for_status(status: int, detail: str, field: str | None = None) -> MlaasError:
    """The exception a reply with ``status`` and ``detail`` stands for (the client's
    HTTP transport raises it, so that both transports raise the same classes)."""
    if field is not None and status == 400:
        prefix = f"{field}: "
        return SpecError(field, detail[len(prefix) :] if detail.startswith(prefix) else detail)
    for cls in (NotFound, PathRefused, Conflict, PayloadTooLarge):
        if cls.status == status:
            error = cls.__new__(cls)
            MlaasError.__init__(error, detail)
            return error
    error = MlaasError(detail)
    return error
