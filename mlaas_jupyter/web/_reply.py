"""What every reply of the API is made of: one JSON encoder and one error reply.

Strict JSON for browsers and other clients: NaN and infinities become ``null``, NumPy
arrays and scalars are written as numbers. Errors are ``{"error": <reason phrase>,
"detail": <what is wrong>, "field"?: <the spec field>}`` with the status the
exception carries (:attr:`MlaasError.status`); anything else is a 500 whose detail
names no internals (the traceback goes to the server log).
"""

from __future__ import annotations

from http.client import responses
from typing import Any

import orjson
from tornado import web

from ..errors import MlaasError, SpecError

__all__ = ["encode_json", "error_reply", "to_plain"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _fallback(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode_json(data: Any) -> bytes:
    """``data`` as strict JSON bytes (NaN and infinities as null)."""
    return orjson.dumps(data, default=_fallback, option=_OPTIONS)


def to_plain(data: Any) -> Any:
    """``data`` as a client would read it back from a JSON reply (the in-process
    transport hands this out, so both transports give equal results)."""
    return orjson.loads(encode_json(data))


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
