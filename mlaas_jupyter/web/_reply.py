"""What every reply of the API is made of: the JSON encoder and one error reply.

Replies are written by :func:`mlaas_jupyter._json.encode_json`. Errors are
``{"error": <reason phrase>, "detail": <what is wrong>, "field"?: <the spec field>}``
with the status the
exception carries (:attr:`MlaasError.status`); anything else is a 500 whose detail
names no internals (the traceback goes to the server log).
"""

from __future__ import annotations

from http.client import responses
from typing import Any

from tornado import web

from ..errors import MlaasError, SpecError

__all__ = ["error_reply"]


def error_reply(exc: BaseException | None, status: int) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of a reply to a request that raised ``exc``."""
    detail = ""
    extra: dict[str, Any] = {}
    if isinstance(exc, web.HTTPError):
        status = exc.status_code
        detail = exc.log_message % exc.args if exc.log_message and exc.args else ""
        detail = detail or exc.log_message or exc.reason or ""
    elif isinstance(exc, MlaasError):
        status, detail = exc.status, str(exc)
        if isinstance(exc, SpecError):
            extra["field"] = exc.field
    elif exc is not None:
        status, detail = 500, f"unexpected {type(exc).__name__}; see the server log"
    reason = responses.get(status, "Error")
    return status, {"error": reason, "detail": detail or reason, **extra}
