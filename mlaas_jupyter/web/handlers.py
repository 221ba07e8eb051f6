"""REST handlers of the MLaaS extension: thin wrappers, one class per route.

Every method needs an authenticated user (``@web.authenticated``) allowed by the
server's authorizer (``@authorized``, resource ``"mlaas"``). Errors are JSON
``{"error": ..., "detail": ...}`` with the status of their cause (see
:func:`error_reply`); blocking work (files, histograms, zips) runs in a thread.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from http.client import responses
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.ioloop import IOLoop

from ..core import browse
from ..core.paths import PathRefused
from ..errors import MlaasError, SpecError
from ..jobs.models import Job
from ..jobs.store import JobNotFound, JobStateError
from ..stream._validate import as_int, as_mapping
from ..stream.histograms import HistogramRequest, compute_histograms

if TYPE_CHECKING:
    from ..core.paths import DataRoots
    from ..jobs.manager import JobManager
    from .extension import MlaasExtension

__all__ = [
    "AUTH_RESOURCE",
    "catch_all_handler",
    "default_handlers",
    "error_reply",
    "job_json",
    "plain_json",
]

AUTH_RESOURCE = "mlaas"
T = TypeVar("T")
_JOB = r"/mlaas/api/jobs/(?P<job_id>[0-9A-Za-z_-]+)"
_CHUNK = 256 * 1024


def plain_json(value: Any) -> Any:
    """``value`` with NaN and infinities as None (strict JSON for browsers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    return value


def job_json(job: Job) -> dict[str, Any]:
    """A job as JSON-ready data: like ``Job.to_dict()``, without its deep copy (the
    reply is serialised at once; ``GET jobs`` is hot)."""
    data = dict(vars(job))
    data["state"] = job.state.value
    return data


def error_reply(exc: BaseException | None, status: int) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for an exception raised by a handler."""
    detail: str
    extra: dict[str, Any] = {}
    if isinstance(exc, web.HTTPError):
        status = exc.status_code
        detail = exc.get_message() or exc.reason or ""
    elif isinstance(exc, PathRefused):
        status, detail = 403, str(exc)
    elif isinstance(exc, JobNotFound | browse.NotFound):
        status, detail = 404, str(exc)
    elif isinstance(exc, JobStateError):
        status, detail = 409, str(exc)
    elif isinstance(exc, MlaasError):
        status, detail = 400, str(exc)
        if isinstance(exc, SpecError):
            extra["field"] = exc.field
    elif exc is not None:
        status, detail = 500, f"unexpected {type(exc).__name__}; see the server log"
    else:
        detail = ""
    reason = responses.get(status, "Error")
    return status, {"error": reason, "detail": detail or reason, **extra}


class MlaasHandler(ExtensionHandlerMixin, APIHandler):
    """Base class: JSON replies and errors, access to the extension's components."""

    auth_resource = AUTH_RESOURCE

    @property
    def mlaas(self) -> MlaasExtension:
        return self.settings["mlaas"]  # type: ignore[no-any-return]

    @property
    def manager(self) -> JobManager:
        return self.mlaas.manager

    @property
    def roots(self) -> DataRoots:
        return self.mlaas.roots

    def reply(self, data: Any, status: int = 200) -> None:
        """Finish with ``data`` as JSON."""
        self.set_status(status)
        try:
            text = json.dumps(data, allow_nan=False)
        except ValueError:
            text = json.dumps(plain_json(data))
        self.finish(text)

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread so the server stays responsive."""
        return await IOLoop.current().run_in_executor(None, functools.partial(fn, *args))

    def body(self) -> dict[str, Any]:
        """The JSON object of the request body (SpecError when it is not one)."""
        data = self.get_json_body()
        return dict(as_mapping("body", data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        status, reply = error_reply(exc_info[1] if exc_info else None, status_code)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(reply))

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        status, reply = error_reply(value, 500)
        if isinstance(value, web.HTTPError) or status >= 500:
            super().log_exception(typ, value, tb)
        else:
            self.log.info("%d %s: %s", status, self._request_summary(), reply["detail"])


def _path_arg(handler: MlaasHandler, name: str, default: str | None = None) -> str:
    """A query argument as sent: tornado's own getters turn control characters (NUL)
    into spaces, which would hide a NUL byte from the path checks."""
    values = handler.request.query_arguments.get(name)
    if not values:
        if default is None:
            raise web.MissingArgumentError(name)
        return default
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(name, "the path is not valid UTF-8") from None


def _int_arg(handler: MlaasHandler, name: str, default: int | None) -> int | None:
    raw = handler.get_query_argument(name, None)
    return default if raw in (None, "") else as_int(name, _number(name, raw), minimum=0)


def _number(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SpecError(name, f"expected an integer, got {raw!r}") from None


class FilesHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = _path_arg(self, "path", "")
        self.reply(await self.blocking(browse.list_folder, self.roots, path))


class TreesHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = _path_arg(self, "path")
        self.reply(await self.blocking(browse.tree_names, self.roots, path))


class BranchesHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        path, tree = _path_arg(self, "path"), self.get_query_argument("tree", None)
        self.reply(await self.blocking(browse.tree_info, self.roots, path, tree or None))


class HistogramsHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = HistogramRequest.from_dict(self.body(), self.mlaas.histogram_max_events)
        self.reply(await self.blocking(compute_histograms, request, self.roots.check_pattern))


class JobsHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        states = self.get_query_argument("state", None)
        jobs = self.manager.list(
            state=states.split(",") if states else None,
            limit=_int_arg(self, "limit", None),
            name=self.get_query_argument("name", None),
            kind=self.get_query_argument("kind", None) or None,
        )
        self.reply({"jobs": [job_json(job) for job in jobs]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body()
        spec = await self.blocking(browse.load_job_spec, self.roots, body)
        job = await self.manager.submit(
            spec,
            executor=body.get("executor"),
            kernel_name=body.get("kernel_name"),
            name=body.get("name"),
        )
        self.set_header("Location", self.request.path.rstrip("/") + "/" + job.id)
        self.reply(job_json(job), 201)


class JobHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.reply(job_json(self.manager.get(job_id)))

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        self.reply(job_json(await self.manager.cancel(job_id)))


class ResubmitHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        self.reply(job_json(await self.manager.resubmit(job_id)), 201)


class EventsHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        since = _int_arg(self, "since", 0) or 0
        events = self.manager.events(job_id, since, _int_arg(self, "limit", None))
        job = self.manager.get(job_id)
        last = events[-1].seq if events else since
        self.reply(
            {
                "job_id": job_id,
                "state": job.state.value,
                "next": last,
                "events": [event.to_dict() for event in events],
            }
        )


class LogsHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        text = self.manager.logs(job_id)
        self.reply({"job_id": job_id, "state": self.manager.get(job_id).state.value, "text": text})


class ArtefactsHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        job = self.manager.get(job_id)
        artefacts = await self.blocking(browse.list_artefacts, job.run_dir)
        self.reply({"job_id": job_id, "artefacts": artefacts})


class ArtefactHandler(MlaasHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str, path: str) -> None:
        job = self.manager.get(job_id)
        stream, name, media = await self.blocking(browse.open_artefact, job, path)
        with stream:
            self.set_header("Content-Type", media)
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            while chunk := await self.blocking(stream.read, _CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish(set_content_type=media)


class NotFoundHandler(MlaasHandler):
    """JSON 404 for any other path under ``mlaas/api/`` (not an API route)."""

    openapi_exempt = True

    @web.authenticated
    def _missing(self, rest: str) -> None:
        raise web.HTTPError(404, "no such endpoint: %s", self.request.path)

    get = post = put = patch = delete = _missing


default_handlers: list[tuple[str, type[MlaasHandler]]] = [
    (r"/mlaas/api/files", FilesHandler),
    (r"/mlaas/api/trees", TreesHandler),
    (r"/mlaas/api/branches", BranchesHandler),
    (r"/mlaas/api/histograms", HistogramsHandler),
    (r"/mlaas/api/jobs", JobsHandler),
    (_JOB, JobHandler),
    (_JOB + r"/resubmit", ResubmitHandler),
    (_JOB + r"/events", EventsHandler),
    (_JOB + r"/logs", LogsHandler),
    (_JOB + r"/artefacts", ArtefactsHandler),
    (_JOB + r"/artefacts/(?P<path>.+)", ArtefactHandler),
]
#: JSON 404 for the rest of the prefix: registered after every other route
catch_all_handler: tuple[str, type[MlaasHandler]] = (r"/mlaas/api/(?P<rest>.*)", NotFoundHandler)
