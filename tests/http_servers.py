"""Web servers on loopback, each in a thread, for the tests of remote files: one that
honours HTTP range requests (as uproot needs), ``python -m http.server``'s handler
(which ignores them), one answering a fixed status (401, 403, 404, or a redirect), and
one that closes the connection in the middle of a reply, and one that never answers."""

from __future__ import annotations

import base64
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["RangeHandler", "StalledHandler", "StatusHandler", "serving", "static_handler"]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early (as uproot does on a full reply) is expected


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


class _QuietStatic(_Quiet, SimpleHTTPRequestHandler):
    pass


def static_handler(folder: Path) -> Any:
    """``python -m http.server``'s handler on ``folder``: it answers a ``Range`` request
    with the whole file (200)."""
    return partial(_QuietStatic, directory=str(folder))


class RangeHandler(_Quiet):
    """Serves the files of ``folder`` honouring ``Range`` (206 with Content-Range),
    to those who give ``token`` when it is set; with ``cut_after`` set, a reply of more
    bytes stops after that many and the connection is closed (a server or network
    dropping mid-read)."""

    folder: Path
    cut_after: int | None = None
    #: when set, requests without ``Authorization: Bearer <token>`` or HTTP basic
    #: authentication with this token as password get 401
    token: str | None = None

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        if given.startswith("Basic "):
            given = base64.b64decode(given[len("Basic ") :]).decode().partition(":")[2]
        return self.token is None or given in (self.token, f"Bearer {self.token}")

    def _send(self, head_only: bool) -> None:
        if not self._authorised():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="data"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.folder / self.path.lstrip("/").split("?")[0]
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            stop = min(int(match.group(2)) + 1 if match.group(2) else len(data), len(data))
            body = data[start:stop]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head_only:
            return
        if self.cut_after is not None and len(body) > self.cut_after:
            self.wfile.write(body[: self.cut_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(head_only=False)

    def do_HEAD(self) -> None:
        self._send(head_only=True)


class StatusHandler(_Quiet):
    """Answers every request with ``status``; ``Location: location`` when it is set."""

    status = 404
    location: str | None = None

    def do_GET(self) -> None:
        self.send_response(self.status)
        if self.location is not None:
            self.send_header("Location", self.location)
        if self.status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="data"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET


class StalledHandler(_Quiet):
    """Reads the request and answers nothing until ``released`` is set."""

    released: threading.Event

    def do_GET(self) -> None:
        self.released.wait()

    do_HEAD = do_GET


@contextmanager
def serving(handler: Any) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a server of ``handler`` running in a thread."""
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
