"""The HTTP side of :class:`~mlaas_jupyter.client.Client`: calls to the ``mlaas`` REST API.

:func:`send` sends a request to ``{base_url}mlaas/api/<path>`` with the server's token
and reads the answer (JSON, text or raw bytes); the server's error replies become
exceptions the embedded mode raises too (:class:`JobNotFound` for a 404 of a job,
:class:`JobStateError` for a 409, else :class:`MlaasError`, each with the HTTP
``status``), as the client's methods are the same in both modes. :func:`probe` tells
whether a server has the ``mlaas`` API.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from ..errors import MlaasError
from ..jobs.store import JobNotFound, JobStateError

__all__ = ["plain", "probe", "quote", "send"]

_API = "mlaas/api/"


def send(
    url: str,
    token: str,
    method: str,
    path: str,
    body: Any = None,
    raw: bool = False,
    *,
    timeout: float,
) -> Any:
    """``method`` on ``path`` of the REST API of the server at ``url`` (its base URL,
    ending in ``/``): the JSON answer decoded, a text one as text, the bytes when
    ``raw``; None when empty."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(_join(url, path), data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content = response.read()
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        raise _http_error(err, method, path) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        failed = MlaasError(f"{method} {_join(url, path)}: {reason}")
        raise failed from None
    if raw:
        return content
    if not content:
        return None
    if "json" in kind:
        return json.loads(content)
    return content.decode("utf-8", "replace")


def probe(url: str, token: str, *, timeout: float) -> str | None:
    """None when the server's mlaas API answers, else what is wrong."""
    try:
        send(url, token, "GET", "jobs?limit=1", timeout=timeout)
    except MlaasError as err:
        status = getattr(err, "status", None)
        if status == 404:
            return "has no mlaas extension"
        return f"does not answer: {err}" if status is None else f"refused the request: {err}"
    return None


def plain(value: Any) -> Any:
    """NumPy arrays and scalars as JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def _join(url: str, path: str) -> str:
    return url + _API + path


def quote(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _http_error(err: urllib.error.HTTPError, method: str, path: str) -> MlaasError:
    """The server's ``{"error", "detail"}`` (or jupyter_server's ``{"message"}``) as an
    exception: JobNotFound for a 404 of a job, JobStateError for a 409."""
    try:
        body = json.loads(err.read() or b"{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("error") or body.get("message") or err.reason or "")
    detail = body.get("detail")
    text = f"HTTP {err.code}: {message}" + (f" ({detail})" if detail else "")
    failed: MlaasError
    if err.code == 404 and path.startswith("jobs/"):
        failed = JobNotFound(text)
    elif err.code == 409:
        failed = JobStateError(text)
    else:
        failed = MlaasError(f"{method} {path}: {text}")
    failed.status = err.code  # type: ignore[attr-defined]
    return failed
