"""The HTTP handlers: a thin translation of requests onto the routes of the core.

:class:`RouteHandler` serves every route of :mod:`.routes` at one path: it checks
authentication (the Jupyter server's identity provider, with the ``mlaas``
authorization resource), decodes the query and the JSON body, lets the route's
request models check them, awaits the core and writes the JSON reply. Two routes
need more than JSON: the predictions (JSON or Arrow IPC bodies and replies) and the
bundle uploads (raw or multipart archives); file downloads are streamed. Errors of
every route go through :func:`._reply.error_reply`, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.ioloop import IOLoop

from .._json import encode_json
from ..errors import PayloadTooLarge, SpecError
from ..inference import payload
from ..inference.service import prediction_reply
from ._reply import error_reply
from .routes import API_PREFIX, ROUTES, Call, Route

if TYPE_CHECKING:
    from ..core.service import Mlaas

__all__ = ["AUTH_RESOURCE", "MlaasHandler", "RouteHandler", "url_specs"]

AUTH_RESOURCE = "mlaas"
_CHUNK = 256 * 1024
_LOG_IN = (
    "not authenticated: send the server's token ('Authorization: token <T>' or "
    "?token=<T>), or log in to the Jupyter server"
)


class MlaasHandler(ExtensionHandlerMixin, APIHandler):
    """Base of our handlers: the core service, JSON replies and JSON errors."""

    auth_resource = AUTH_RESOURCE

    @property
    def core(self) -> Mlaas:
        return self.settings["mlaas_core"]  # type: ignore[no-any-return]

    def reply(self, data: Any, status: int = 200) -> None:
        """Finish with ``data`` as strict JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(encode_json(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        status, body = error_reply(exc_info[1] if exc_info else None, status_code)
        anonymous = getattr(self, "_jupyter_current_user", None) is None
        if status == 403 and anonymous and self.check_host():
            # no identity (no token, a wrong one, no session cookie: jupyter_server says
            # 403, or 403 for a missing _xsrf): 401, who are you, as RFC 9110 has it;
            # 403 stays for a known user refused (a path outside the data roots) and for
            # a Host header the server does not answer to (DNS rebinding)
            status, body = 401, {"error": "Unauthorized", "detail": _LOG_IN}
            self.set_header("WWW-Authenticate", 'token realm="mlaas"')
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(encode_json(body))

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        status, body = error_reply(value, 500)
        if status >= 500:
            super().log_exception(typ, value, tb)
        else:
            self.log.info("%d %s: %s", status, self._request_summary(), body["detail"])


class RouteHandler(MlaasHandler):
    """Every route of one path (see the module docstring)."""

    def initialize(self, name: str, routes: Mapping[str, Route]) -> None:
        super().initialize(name)
        self.routes = routes

    def _route(self) -> Route:
        method = self.request.method or "GET"
        if method not in self.routes:
            raise web.HTTPError(
                405, "%s is not allowed here; allowed: %s", method, ", ".join(self.routes)
            )
        return self.routes[method]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:  # here: send_error clears the headers set before raising
            self.set_header("Allow", ", ".join(self.routes))
        super().write_error(status_code, **kwargs)

    def query(self) -> dict[str, str | list[str]]:
        """The query arguments as sent (tornado's getters would turn a NUL into a
        space and hide it from the path checks); the last value of each wins, but
        for the arguments its query model repeats (``jobs=a&jobs=b``)."""
        model = self._route().query
        repeatable: frozenset[str] = getattr(model, "repeatable", frozenset())
        arguments: dict[str, str | list[str]] = {}
        for key, values in self.request.query_arguments.items():
            repeated = key in repeatable and len(values) > 1
            try:
                texts = [value.decode("utf-8") for value in (values if repeated else values[-1:])]
            except UnicodeDecodeError:
                raise SpecError(key, "not valid UTF-8") from None
            arguments[key] = texts if repeated else texts[0]
        return arguments

    def json_body(self) -> Any:
        """The JSON document of the body (None when empty)."""
        if not self.request.body:
            return None
        try:
            return orjson.loads(self.request.body)
        except orjson.JSONDecodeError as err:
            raise SpecError("body", f"not valid JSON (UTF-8): {err}") from None

    async def serve(self, **params: str) -> None:
        route = self._route()
        body = None if route.raw_body else self.json_body()
        call = route.check(params, self.query(), body)
        if route.name == "predict":
            await self._predict(route, call)
        elif route.name == "upload_model":
            await self._upload(route, call)
        elif route.returns in ("file", "html"):
            await self._download(route, call)
        else:
            self.reply(await route.run(self.core, call), route.status_for(call))

    async def _download(self, route: Route, call: Call) -> None:
        stream, name, media = await route.run(self.core, call)
        with stream:
            self.set_header("Content-Type", media)
            shown = "inline" if route.returns == "html" else "attachment"  # a page: in the tab
            self.set_header("Content-Disposition", f'{shown}; filename="{name}"')
            loop = IOLoop.current()
            while chunk := await loop.run_in_executor(None, stream.read, _CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish(set_content_type=media)  # APIHandler.finish would say JSON (empty files)

    async def _upload(self, route: Route, call: Call) -> None:
        self._check_size(self.core.max_upload_bytes)
        uploads = [f for files in self.request.files.values() for f in files]
        if len(uploads) > 1:
            raise SpecError("body", f"send one bundle archive per request, not {len(uploads)}")
        query = call.query
        if uploads:
            data, filename = uploads[0]["body"], uploads[0]["filename"] or query.filename
            name = self.get_body_argument("name", None) or query.name
            query = query.model_copy(update={"filename": filename, "name": name})
        else:
            data = self.request.body
        info = await route.run(self.core, Call(call.params, query, data))
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{info['name']}")
        self.reply(info, route.status)

    async def _predict(self, route: Route, call: Call) -> None:
        self._check_size(self.core.max_predict_bytes)
        kind, raw = self.request.headers.get("Content-Type"), self.request.body
        if len(raw) < payload.FAST_JSON_BYTES:
            decoded = payload.decode(raw, kind)
        else:  # in a thread: the event loop goes on serving small requests meanwhile
            decoded = await IOLoop.current().run_in_executor(None, payload.decode, raw, kind)
        name, version = call.params["name"], call.query.version
        bundle, number, scores = await self.core.models.scores(name, decoded, version)
        if payload.wants_arrow(self.request.headers.get("Accept")):
            meta = {"model": name, "version": number, "task": bundle.task}
            # APIHandler.finish sets the Content-Type: JSON unless told otherwise
            self.finish(
                payload.encode_arrow(scores, bundle.classes, meta),
                set_content_type=payload.ARROW_STREAM,
            )
            return
        self.set_header("Content-Type", "application/json")
        self.finish(encode_json(prediction_reply(name, number, bundle, scores)))

    def _check_size(self, limit: int) -> None:
        size = len(self.request.body or b"")
        if size > limit:
            raise PayloadTooLarge(f"the request body has {size} bytes; the limit is {limit}")

    @web.authenticated
    @authorized
    async def get(self, **params: str) -> None:
        await self.serve(**params)

    @web.authenticated
    @authorized
    async def post(self, **params: str) -> None:
        await self.serve(**params)

    @web.authenticated
    @authorized
    async def delete(self, **params: str) -> None:
        await self.serve(**params)

    @web.authenticated
    @authorized
    async def put(self, **params: str) -> None:
        await self.serve(**params)

    @web.authenticated
    @authorized
    async def patch(self, **params: str) -> None:
        await self.serve(**params)


class NotFoundHandler(MlaasHandler):
    """A JSON 404 for any other path under ``mlaas/api/``."""

    @web.authenticated
    def _missing(self, rest: str) -> None:
        raise web.HTTPError(404, "no such endpoint: %s", self.request.path)

    get = post = put = patch = delete = _missing


def url_specs(name: str) -> list[tuple[str, type[MlaasHandler], dict[str, Any]]]:
    """The URL specs of every route (one handler per path), then the catch-all; the
    patterns start with ``/mlaas/api/`` (the server prefixes its base URL)."""
    by_path: dict[str, dict[str, Route]] = {}
    for route in ROUTES:
        by_path.setdefault(route.pattern, {})[route.method] = route
    specs: list[tuple[str, type[MlaasHandler], dict[str, Any]]] = [
        (f"/{API_PREFIX}{pattern}", RouteHandler, {"name": name, "routes": routes})
        for pattern, routes in by_path.items()
    ]
    specs.append((f"/{API_PREFIX}(?P<rest>.*)", NotFoundHandler, {"name": name}))
    return specs
