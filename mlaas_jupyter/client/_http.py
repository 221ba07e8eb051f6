"""The HTTP transport: the routes of a server's REST API (``{base_url}mlaas/api/``).

Requests are built from the same operation table the server mounts; error replies
become the exceptions the core raises (the class is chosen by the status, the
message is the reply's ``detail``), so that a caller sees the same errors in a
notebook under JupyterLab and under nbconvert.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from .._json import encode_json
from ..errors import MlaasError, error_for_status
from ..web.routes import API_PREFIX, route

__all__ = ["HttpTransport", "quote"]


def quote(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


class HttpTransport:
    """Calls the REST API of the server at ``url`` (its base URL) with ``token``."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/") + "/"
        self.token = token
        self.timeout = timeout

    @property
    def where(self) -> str:
        return f"the Jupyter server at {self.url}"

    def call(
        self,
        name: str,
        params: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """Send the request of route ``name``; the decoded JSON reply (bytes for a
        download)."""
        operation = route(name)
        path = operation.path
        for key, value in (params or {}).items():
            parts = value.split("/") if key == "path" else [value]
            encoded = "/".join(quote(part) for part in parts)
            path = path.replace("{" + key + "}", encoded)
        arguments = {k: _text(v) for k, v in (query or {}).items() if v is not None}
        if arguments:
            path += "?" + urllib.parse.urlencode(arguments)
        if isinstance(body, bytes | bytearray):
            data, kind = bytes(body), "application/octet-stream"
        elif body is not None:
            data, kind = encode_json(body), "application/json"
        else:
            data, kind = None, ""
        content = self.send(operation.method, path, data, kind)
        if operation.returns != "json":  # a download or a page: its bytes
            return content
        return json.loads(content) if content else None

    def send(self, method: str, path: str, data: bytes | None = None, kind: str = "") -> bytes:
        """One request to ``mlaas/api/<path>``: the reply's bytes."""
        full = self.url + API_PREFIX + path
        request = urllib.request.Request(full, data=data, method=method)
        request.add_header("Accept", "application/json")
        if kind:
            request.add_header("Content-Type", kind)
        if self.token:
            request.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as err:
            raise _error(err) from None
        except (urllib.error.URLError, OSError) as err:
            raise MlaasError(f"{method} {full}: {getattr(err, 'reason', err)}") from None

    def probe(self) -> str | None:
        """None when the server's mlaas API answers, else what is wrong."""
        try:
            self.call("info")
        except MlaasError as err:
            if err.status == 404:
                return "has no mlaas extension"
            if err.status in (401, 403):
                return f"refused the request: {err}"
            return f"does not answer: {err}"
        return None

    def close(self) -> None:
        """Nothing to release (one connection per request)."""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def _error(err: urllib.error.HTTPError) -> MlaasError:
    """The reply's ``{"error", "detail", "field"?}`` (or jupyter_server's
    ``{"message"}``) as the exception the core raised."""
    try:
        body = json.loads(err.read() or b"{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    detail = str(body.get("detail") or body.get("message") or err.reason or f"HTTP {err.code}")
    failed = error_for_status(err.code, detail, body.get("field"))
    if err.code not in (400, 403, 404, 409, 413):
        failed.status = err.code  # type: ignore[misc]
    return failed
