"""The model routes' logic, written once for the Jupyter extension and ``mlaas serve``.

Routes, relative to ``{base_url}mlaas/api/``:

=======  ===============================  ==============================================
GET      ``models``                       every version of every model (metadata)
POST     ``models?name=&filename=``       upload a bundle archive (zip, tar, tar.gz) as
                                          the raw body, or as the one file of a
                                          ``multipart/form-data`` body (field ``name``
                                          optional); 201 and the new version's metadata
GET      ``models/{name}[?version=]``     the versions of a model, or one version
DELETE   ``models/{name}[?version=]``     remove one version, or all
POST     ``models/{name}/predict``        score a JSON payload (see ``service``), or
         ``[?version=]``                  an Arrow IPC stream (see ``payload``)
POST     ``models/{name}/predict_file``   score a file into a friend tree: body
                                          ``{"path", "out", "tree"?, "version"?,
                                          "prefix"?}`` (only where a path resolver is
                                          configured); with ``"async": true`` a
                                          prediction job (202 + the job, kind
                                          ``predict``): ``path`` may be globs or a
                                          list, ``out`` a folder; ``step_size``?,
                                          ``executor``?
=======  ===============================  ==============================================

Errors are JSON ``{"error": <reason>, "detail": <what is wrong>}``: 400 for bad input
(malformed JSON, missing or unknown features, bad values, bad archives), 401/403 for
authentication, 404 for unknown models, 413 for bodies or batches over the limits.
The handler classes combine these mixins with their server's base class, which decides
how requests are authenticated, and map HTTP methods to the mixins' coroutines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.client import responses
from typing import Any

from tornado import web
from tornado.ioloop import IOLoop
from tornado.log import gen_log

from ..errors import DataError, MlaasError, SpecError
from ..inference import payload
from ..inference.registry import ModelRegistry
from ..inference.service import PayloadTooLarge, PredictionService, prediction_reply

__all__ = [
    "ApiMixin",
    "ModelRoute",
    "ModelsRoute",
    "PredictFileRoute",
    "PredictRoute",
    "ServeContext",
    "error_reply",
]


@dataclass
class ServeContext:
    """What the model routes share: the registry, the service and the body limits.

    ``resolve_path`` turns a client path into a checked local path (e.g.
    ``DataRoots.resolve`` of the extension); without it ``predict_file`` is refused.
    """

    registry: ModelRegistry
    service: PredictionService
    max_predict_bytes: int = 64 << 20
    max_upload_bytes: int = 512 << 20
    resolve_path: Callable[[str], str] | None = None
    #: submits a prediction job (spec, name, executor or None) -> the job as JSON;
    #: enables ``"async": true`` of ``predict_file``
    submit_job: Callable[[dict[str, Any], str, str | None], Awaitable[dict[str, Any]]] | None = None


def error_reply(exc: BaseException | None, status: int) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for an exception raised while handling a request."""
    detail = ""
    if isinstance(exc, web.HTTPError):
        status = exc.status_code
        detail = exc.log_message % exc.args if exc.log_message else (exc.reason or "")
    elif isinstance(exc, MlaasError):
        default = 403 if type(exc).__name__ == "PathRefused" else 400
        status, detail = int(getattr(exc, "status", default)), str(exc)
    elif exc is not None:
        status, detail = 500, f"unexpected {type(exc).__name__}; see the server log"
    reason = responses.get(status, "Error")
    return status, {"error": reason, "detail": detail or reason}


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class ApiMixin(web.RequestHandler):
    """JSON replies and errors, the shared context, body and argument helpers."""

    context: ServeContext

    def initialize(self, context: ServeContext) -> None:
        self.context = context

    def reply(self, data: Any, status: int = 200) -> None:
        """Finish with ``data`` as JSON (NaN and infinities as null)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        try:
            text = json.dumps(data, allow_nan=False)
        except ValueError:
            text = json.dumps(_plain(data))
        self.finish(text)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        status, body = error_reply(exc_info[1] if exc_info else None, status_code)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        status, body = error_reply(value, 500)
        if status >= 500:
            super().log_exception(typ, value, tb)
        else:
            gen_log.info("%d %s: %s", status, self._request_summary(), body["detail"])

    def check_body_size(self, limit: int) -> None:
        """:class:`PayloadTooLarge` when the body is over ``limit`` bytes."""
        size = len(self.request.body or b"")
        if size > limit:
            raise PayloadTooLarge(f"the request body has {size} bytes; the limit is {limit}")

    def json_payload(self) -> Any:
        """The JSON document of the body; DataError naming the problem when malformed."""
        return payload.decode(self.request.body)

    def version_arg(self, value: Any = None) -> int | None:
        """The ``version`` query argument (or ``value``) as a positive integer, if any."""
        raw = value if value is not None else self.get_query_argument("version", None)
        if raw in (None, ""):
            return None
        try:
            number = int(raw)
        except (TypeError, ValueError):
            raise SpecError("version", f"expected a positive integer, got {raw!r}") from None
        if number < 1 or isinstance(raw, bool | float):
            raise SpecError("version", f"expected a positive integer, got {raw!r}")
        return number


class ModelsRoute(ApiMixin):
    """``models``: list (GET) and upload (POST)."""

    async def list_models(self) -> None:
        infos = await IOLoop.current().run_in_executor(None, self.context.registry.list)
        self.reply({"models": [info.to_dict() for info in infos]})

    async def upload(self) -> None:
        self.check_body_size(self.context.max_upload_bytes)
        uploads = [f for files in self.request.files.values() for f in files]
        if len(uploads) > 1:
            raise DataError(f"send one bundle archive per request, not {len(uploads)} files")
        if uploads:
            data, filename = uploads[0]["body"], uploads[0]["filename"] or "upload"
            name = self.get_argument("name", None)
        else:
            data = self.request.body
            filename = self.get_query_argument("filename", None) or "upload"
            name = self.get_query_argument("name", None)
        if not data:
            raise DataError("empty upload: send a zip or tar(.gz) of a bundle folder")
        registry = self.context.registry
        info = await IOLoop.current().run_in_executor(
            None, registry.register_archive, data, filename, name or None
        )
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{info.name}")
        self.reply(info.to_dict(), 201)


class ModelRoute(ApiMixin):
    """``models/{name}``: metadata (GET) and removal (DELETE)."""

    async def show(self, name: str) -> None:
        registry, version = self.context.registry, self.version_arg()
        if version is not None:
            info = await IOLoop.current().run_in_executor(None, registry.info, name, version)
            self.reply(info.to_dict())
            return
        versions = registry.versions(name)
        infos = [registry.info(name, v) for v in versions]
        self.reply({"name": name, "latest": versions[-1], "versions": [i.to_dict() for i in infos]})

    async def remove(self, name: str) -> None:
        registry, version = self.context.registry, self.version_arg()
        removed = await IOLoop.current().run_in_executor(None, registry.delete, name, version)
        self.reply({"name": name, "deleted": removed})


class PredictRoute(ApiMixin):
    """``models/{name}/predict``: score a JSON payload."""

    async def predict(self, name: str) -> None:
        self.check_body_size(self.context.max_predict_bytes)
        request = self.request
        kind = request.headers.get("Content-Type")
        if len(request.body) < payload.FAST_JSON_BYTES:
            body = payload.decode(request.body, kind)
        else:  # in a thread: the event loop goes on serving small requests meanwhile
            body = await IOLoop.current().run_in_executor(None, payload.decode, request.body, kind)
        service, version = self.context.service, self.version_arg()
        bundle, number, scores = await service.scores(name, body, version)
        if not payload.wants_arrow(request.headers.get("Accept")):
            self.set_header("Content-Type", "application/json")
            self.finish(payload.encode_json(prediction_reply(name, number, bundle, scores)))
            return
        meta = {"model": name, "version": number, "task": bundle.task}
        self.set_header("Content-Type", payload.ARROW_STREAM)
        self.finish(payload.encode_arrow(scores, bundle.classes, meta))


class PredictFileRoute(ApiMixin):
    """``models/{name}/predict_file``: score a file into a friend tree, now or as a job."""

    _SYNC_KEYS = frozenset({"path", "out", "tree", "version", "async", "prefix"})
    _ASYNC_KEYS = _SYNC_KEYS | {"step_size", "executor"}

    async def predict_file(self, name: str) -> None:
        resolve = self.context.resolve_path
        if resolve is None:
            raise web.HTTPError(404, "predict_file is not enabled on this server")
        self.check_body_size(1 << 20)
        body = self.json_payload()
        if not isinstance(body, dict):
            raise SpecError("body", "send a JSON object {'path': ..., 'out': ...}")
        asynchronous = body.get("async", False)
        if not isinstance(asynchronous, bool):
            raise SpecError("async", f"expected true or false, got {asynchronous!r}")
        allowed = self._ASYNC_KEYS if asynchronous else self._SYNC_KEYS
        extra = sorted(set(body) - allowed)
        if extra:
            hint = "" if asynchronous else ' (step_size and executor need "async": true)'
            raise SpecError(extra[0], f"unknown field(s) {extra}; allowed: {sorted(allowed)}{hint}")
        path = body.get("path")
        paths_ok = isinstance(path, str) or (
            asynchronous
            and isinstance(path, list)
            and bool(path)
            and all(isinstance(p, str) for p in path)
        )
        if not paths_ok:
            what = "a file, folder or glob (or a list of them)" if asynchronous else "a file"
            raise SpecError("path", f"give the file(s) to score as 'path': {what}")
        if not isinstance(body.get("out"), str):
            what = "folder (or .root file)" if asynchronous else "file"
            raise SpecError("out", f"give the friend-tree {what} to write as 'out'")
        for key in ("tree", "prefix", "executor"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise SpecError(key, f"expected a string, got {body[key]!r}")
        version = self.version_arg(body.get("version"))
        if asynchronous:
            await self._submit(name, body, version)
            return
        source, out = resolve(body["path"]), resolve(body["out"])
        service = self.context.service
        prefix = body.get("prefix") or "score"
        self.reply(
            await service.predict_file(
                name, source, out, body.get("tree"), version=version, branch_prefix=prefix
            )
        )

    async def _submit(self, name: str, body: dict[str, Any], version: int | None) -> None:
        """``"async": true``: a prediction job scoring ``path`` (files, folders, globs)
        into friend trees in the folder ``out`` (or the file ``out``, ending in
        ``.root``, for one input); replies 202 with the job. The model is resolved to
        one version now: the job scores with that version whatever is uploaded later."""
        submit = self.context.submit_job
        if submit is None:
            raise web.HTTPError(404, "prediction jobs are not enabled on this server")
        registry = self.context.registry
        number = registry.resolve(name, version)
        paths = body["path"] if isinstance(body["path"], list) else [body["path"]]
        spec: dict[str, Any] = {
            "bundle": str(registry.path(name, number)),
            "model": name,
            "version": number,
            "files": paths,
            "output": body["out"],
        }
        for key in ("tree", "prefix", "step_size"):
            if body.get(key) is not None:
                spec[key] = body[key]
        job = await submit({"predict": spec}, f"predict-{name}", body.get("executor"))
        self.set_header("Location", f"jobs/{job['id']}")
        self.reply(job, 202)
