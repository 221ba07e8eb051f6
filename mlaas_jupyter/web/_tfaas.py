"""TFaaS's routes, for its existing clients (``mlaas serve --tfaas``).

TFaaS (github.com/vkuznet/TFaaS) serves TensorFlow models at the root of its server;
its curl recipes, its C++ client (``TFClient``, used in CMSSW) and scripts call
``POST /json``, ``POST /proto``, ``GET /models``, ``POST /upload``, ``DELETE /delete``
and ``GET /status``. These handlers mount the same paths beside ``/mlaas/api/``,
translate TFaaS's formats (:mod:`._tfaas_formats`, :mod:`._tfaas_proto`) and call the
same core methods as our REST routes: predictions go through the same
``PredictionService`` (micro-batched with every other request), uploads through the
registry's archive check, errors through the same JSON error reply. Authentication is
ours, not TFaaS's X509: the server's token (``Authorization: token <T>`` or
``?token=<T>``). They are not in the OpenAPI document, which describes
``/mlaas/api/``: their contract is TFaaS's, and they exist only with ``--tfaas``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from jupyter_server.auth.decorator import authorized
from tornado import httputil, web

from .._version import __version__
from ..errors import MlaasError, PayloadTooLarge, SpecError
from ._tfaas_formats import TFaaSRow, output_labels, output_vectors, parse_row, tfaas_model
from ._tfaas_proto import decode_row, encode_predictions
from .handlers import MlaasHandler

__all__ = ["TFAAS_PATHS", "tfaas_url_specs"]

#: the paths mounted at the server's root (below its base URL)
TFAAS_PATHS = ("json", "proto", "models", "upload", "delete", "status")
_NOT_A_BUNDLE = (
    "; TFaaS's TensorFlow graph files are not served here: send a bundle archive (zip, tar "
    "or tar.gz of a bundle folder) as the body, or as the form's 'model' file"
)


@dataclass
class _Counters:
    """What ``GET /status`` tells: since when the routes serve, and how many calls."""

    started: float = field(default_factory=time.monotonic)
    get: int = 0
    post: int = 0


class TFaaSHandler(MlaasHandler):
    """Base of the TFaaS routes: our authentication and errors, TFaaS's counters."""

    allowed: tuple[str, ...] = ()

    def initialize(self, name: str, counters: _Counters) -> None:
        super().initialize(name)
        self.counters = counters

    def on_finish(self) -> None:
        super().on_finish()
        if self.request.method == "GET":
            self.counters.get += 1
        elif self.request.method == "POST":
            self.counters.post += 1

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.allowed))
        super().write_error(status_code, **kwargs)

    def check_size(self, limit: int) -> None:
        size = len(self.request.body or b"")
        if size > limit:
            raise PayloadTooLarge(f"the request body has {size} bytes; the limit is {limit}")

    async def model_name(self, named: str | None) -> str:
        """The model a request names; unnamed (TFaaS then uses its last upload), the
        only served model."""
        if named is not None:
            return named
        names = await asyncio.to_thread(self.core.models.registry.names)
        if len(names) == 1:
            return names[0]
        served = ", ".join(names) or "none"
        raise SpecError("model", f"name the model to use (served: {served})")

    async def scores(self, row: TFaaSRow) -> tuple[list[Any], list[str]]:
        """The output vector(s) of a row's event(s) and the labels of the outputs."""
        self.check_size(self.core.max_predict_bytes)
        name = await self.model_name(row.model)
        bundle, _, scores = await self.core.models.scores(name, row.payload())
        vectors = output_vectors(scores, row.one_event)
        width = len(vectors) if row.one_event else len(vectors[0]) if vectors else 0
        return vectors, output_labels(list(bundle.classes or []), width)


class JsonHandler(TFaaSHandler):
    """``POST /json``: a JSON row in, the model's outputs out (``[0.87]``)."""

    allowed = ("POST",)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            body = orjson.loads(self.request.body or b"null")
        except orjson.JSONDecodeError as err:
            raise SpecError("body", f"not valid JSON (UTF-8): {err}") from None
        vectors, _ = await self.scores(parse_row(body))
        self.reply(vectors)


class ProtoHandler(TFaaSHandler):
    """``POST /proto``: a serialised ``Row`` in, a serialised ``Predictions`` out."""

    allowed = ("POST",)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        model, keys, values = decode_row(self.request.body or b"")
        vector, labels = await self.scores(TFaaSRow(model, keys, values))
        # APIHandler.finish would say JSON; TFaaS's reply is bare protobuf bytes
        self.finish(encode_predictions(vector, labels), set_content_type="application/octet-stream")


class ModelsHandler(TFaaSHandler):
    """``GET /models``: the latest version of each model, as TFaaS's ``TFParams``."""

    allowed = ("GET",)

    @web.authenticated
    @authorized
    async def get(self) -> None:
        latest = {info["name"]: info for info in (await self.core.models.list())["models"]}
        self.reply([tfaas_model(info) for info in latest.values()])


class UploadHandler(TFaaSHandler):
    """``POST /upload``: a bundle archive as the body (TFaaS's ``--bundle`` upload) or
    as the ``model`` file of a form (its ``-F name=... -F model=@...`` upload)."""

    allowed = ("POST",)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.check_size(self.core.max_upload_bytes)
        name = self.get_query_argument("name", None)
        kind = self.request.headers.get("Content-Type", "")
        encoding = self.request.headers.get("Content-Encoding", "").lower()
        if not kind.lower().startswith("multipart/form-data"):
            filename = "upload.tar.gz" if encoding == "gzip" else "upload"
            info = await self.core.models.upload(self.request.body, filename, name)
            self.reply(info)
            return
        arguments: dict[str, list[bytes]] = {}
        files: dict[str, list[httputil.HTTPFile]] = {}
        # tornado leaves a form with a Content-Encoding (TFaaS's client sends base64) unread
        httputil.parse_body_arguments(kind, self.request.body, arguments, files)
        parts = files.get("model") or [f for fs in files.values() for f in fs]
        if len(parts) != 1:
            raise SpecError("model", "send the bundle archive as the form's one 'model' file")
        data = parts[0]["body"]
        if encoding == "base64":
            try:
                data = base64.b64decode(data)
            except binascii.Error as err:
                raise SpecError("model", f"not valid base64 ({err})") from None
        if name is None and arguments.get("name"):
            name = arguments["name"][-1].decode("utf-8", errors="replace")
        try:
            info = await self.core.models.upload(data, parts[0]["filename"], name or None)
        except MlaasError as err:
            if err.status != 400 or "bad bundle archive" not in str(err):
                raise
            raise MlaasError(f"{err}{_NOT_A_BUNDLE}") from None
        self.reply(info)


class DeleteHandler(TFaaSHandler):
    """``DELETE /delete`` (model in a form field or ``?model=``) or ``/delete/<model>``:
    every version of a model."""

    allowed = ("DELETE",)

    @web.authenticated
    @authorized
    async def delete(self, model: str | None = None) -> None:
        name = model or self.get_argument("model", None)
        if not name:
            raise SpecError("model", "name the model: DELETE /delete/<name> or ?model=<name>")
        self.reply(await self.core.models.delete(name))


class StatusHandler(TFaaSHandler):
    """``GET /status``: TFaaS's server status (its Go-runtime and memory figures
    excepted), plus the number of models and our version."""

    allowed = ("GET",)

    @web.authenticated
    @authorized
    async def get(self) -> None:
        load1, load5, load15 = os.getloadavg()
        names = await asyncio.to_thread(self.core.models.registry.names)
        self.reply(
            {
                "Uptime": time.monotonic() - self.counters.started,
                "getRequests": self.counters.get,
                "postRequests": self.counters.post,
                "Load": {"load1": load1, "load5": load5, "load15": load15},
                "NGo": threading.active_count(),  # TFaaS counts goroutines; here threads
                "models": len(names),
                "version": __version__,
            }
        )


def tfaas_url_specs(name: str) -> list[tuple[str, type[MlaasHandler], dict[str, Any]]]:
    """The URL specs of TFaaS's routes at the root (the server prefixes its base URL)."""
    kwargs = {"name": name, "counters": _Counters()}
    return [
        ("/json", JsonHandler, kwargs),
        ("/proto", ProtoHandler, kwargs),
        ("/models", ModelsHandler, kwargs),
        ("/upload", UploadHandler, kwargs),
        ("/delete", DeleteHandler, kwargs),
        ("/delete/(?P<model>[^/]+)", DeleteHandler, kwargs),
        ("/status", StatusHandler, kwargs),
    ]
