"""``mlaas serve``: the model routes on a plain tornado server, without Jupyter.

The same routes as the Jupyter extension (:mod:`mlaas_jupyter.web._models_api`) under
``/mlaas/api/``, plus ``GET /mlaas/api/health`` (no token needed) and an empty
``GET /mlaas/api/jobs`` (so that :class:`mlaas_jupyter.Client` connects to it).
Every other request needs the token: ``Authorization: token <T>`` (or ``Bearer``), or
``?token=<T>``; 401 without one, 403 with a wrong one.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import socket
import threading
from typing import Any

from tornado import web
from tornado.httpserver import HTTPServer

from .._version import __version__
from ..inference.registry import ModelRegistry
from ..inference.service import PredictionService
from . import _models_api as api
from ._models_api import ServeContext

__all__ = ["ServerThread", "bind", "make_app", "make_context", "new_token", "serve"]

PREFIX = "/mlaas/api/"
NAME = r"(?P<name>[^/]+)"
log = logging.getLogger("mlaas_jupyter.inference")


class _Base(api.ApiMixin):
    """Token authentication (constant-time comparison), JSON errors."""

    token: str

    def initialize(self, context: ServeContext, token: str = "") -> None:
        api.ApiMixin.initialize(self, context)
        self.token = token

    def set_default_headers(self) -> None:
        self.set_header("Server", "mlaas")

    def prepare(self) -> None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        given = value.strip() if scheme.lower() in ("token", "bearer") else ""
        given = given or self.get_query_argument("token", "")
        if not given:
            raise web.HTTPError(401, "send 'Authorization: token <T>' or ?token=<T>")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise web.HTTPError(403, "invalid token")


class ModelsHandler(api.ModelsRoute, _Base):
    async def get(self) -> None:
        await self.list_models()

    async def post(self) -> None:
        await self.upload()


class ModelHandler(api.ModelRoute, _Base):
    async def get(self, name: str) -> None:
        await self.show(name)

    async def delete(self, name: str) -> None:
        await self.remove(name)


class PredictHandler(api.PredictRoute, _Base):
    async def post(self, name: str) -> None:
        await self.predict(name)


class PredictFileHandler(api.PredictFileRoute, _Base):
    async def post(self, name: str) -> None:
        await self.predict_file(name)


class JobsHandler(_Base):
    async def get(self) -> None:
        self.reply({"jobs": []})


class HealthHandler(_Base):
    def prepare(self) -> None:
        pass

    async def get(self) -> None:
        self.reply({"status": "ok", "version": __version__})


class NotFoundHandler(_Base):
    def prepare(self) -> None:
        raise web.HTTPError(404, "no such endpoint: %s", self.request.path)


def make_context(
    models_dir: str,
    *,
    max_cached: int = 4,
    max_batch: int = 4096,
    max_delay_ms: float = 2.0,
    workers: int = 2,
    **limits: Any,
) -> ServeContext:
    """A registry on ``models_dir`` and its prediction service (``limits``: the body
    limits of :class:`ServeContext`)."""
    registry = ModelRegistry(models_dir, max_cached=max_cached)
    service = PredictionService(
        registry, max_batch=max_batch, max_delay_ms=max_delay_ms, workers=workers
    )
    return ServeContext(registry, service, **limits)


def make_app(context: ServeContext, token: str) -> web.Application:
    """The tornado application of the model routes, guarded by ``token``."""
    if not token:
        raise ValueError("a token is required")
    kwargs = {"context": context, "token": token}
    routes: list[Any] = [
        (PREFIX + "health", HealthHandler, kwargs),
        (PREFIX + "jobs", JobsHandler, kwargs),
        (PREFIX + "models", ModelsHandler, kwargs),
        (PREFIX + f"models/{NAME}", ModelHandler, kwargs),
        (PREFIX + f"models/{NAME}/predict", PredictHandler, kwargs),
        (PREFIX + f"models/{NAME}/predict_file", PredictFileHandler, kwargs),
    ]
    return web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=kwargs,
        compress_response=False,
    )


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on ``host:port`` (port 0: a free one)."""
    from tornado.netutil import bind_sockets

    return bind_sockets(port, host, reuse_port=False)


async def serve(
    context: ServeContext,
    token: str,
    sockets: list[socket.socket],
    stop: asyncio.Event | None = None,
) -> None:
    """Serve on ``sockets`` until ``stop`` is set (forever without one)."""
    limit = max(context.max_predict_bytes, context.max_upload_bytes) + (1 << 20)
    server = HTTPServer(make_app(context, token), max_body_size=limit, idle_connection_timeout=300)
    server.add_sockets(sockets)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        server.stop()
        await server.close_all_connections()
        context.service.close()


def new_token() -> str:
    """A random token (URL-safe, 32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


class ServerThread:
    """A server on an event loop of its own, in a daemon thread (tests, notebooks).

    ``ServerThread(context, token).start()`` listens on a free port of 127.0.0.1;
    ``url`` is its base URL (``http://127.0.0.1:<port>/``); ``stop()`` ends it.
    """

    def __init__(self, context: ServeContext, token: str, host: str = "127.0.0.1", port: int = 0):
        self.context, self.token = context, token
        self.sockets = bind(host, port)
        self.port = int(self.sockets[0].getsockname()[1])
        self.url = f"http://{host}:{self.port}/"
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="mlaas-serve", daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(serve(self.context, self.token, self.sockets, self._stop))
        self._loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
