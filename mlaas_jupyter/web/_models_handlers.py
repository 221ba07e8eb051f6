"""The model routes as Jupyter Server handlers (token/cookie auth of the server).

Wire them into an extension with :func:`model_handlers`; patterns are relative to
``{base_url}mlaas/api/`` and go BEFORE any catch-all route of that prefix::

    context = ServeContext(registry, PredictionService(registry), resolve_path=roots.resolve)
    self.handlers[:0] = [
        (r"/mlaas/api/" + pattern, cls, kwargs) for pattern, cls, kwargs in model_handlers(context)
    ]

Every method needs an authenticated user (``@web.authenticated``) allowed by the
server's authorizer (``@authorized``, resource ``"mlaas"``); the logic lives in
:mod:`mlaas_jupyter.web._models_api`, shared with ``mlaas serve``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..inference.registry import ModelRegistry
from . import _models_api as api
from ._models_api import ServeContext

if TYPE_CHECKING:
    from ..jobs.models import Job, JobEvent

__all__ = ["AUTH_RESOURCE", "job_registrar", "model_handlers"]

AUTH_RESOURCE = "mlaas"
NAME = r"(?P<name>[^/]+)"


class _Base(api.ApiMixin, APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, context: ServeContext) -> None:
        api.ApiMixin.initialize(self, context)


class ModelsHandler(api.ModelsRoute, _Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.list_models()

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self.upload()


class ModelHandler(api.ModelRoute, _Base):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        await self.show(name)

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.remove(name)


class PredictHandler(api.PredictRoute, _Base):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        await self.predict(name)


class PredictFileHandler(api.PredictFileRoute, _Base):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        await self.predict_file(name)


def model_handlers(context: ServeContext) -> list[tuple[str, type[Any], dict[str, Any]]]:
    """``(pattern, handler class, kwargs)`` of the model routes, relative to
    ``{base_url}mlaas/api/`` (``models``, ``models/{name}``, ``.../predict``,
    ``.../predict_file``)."""
    kwargs = {"context": context}
    return [
        ("models", ModelsHandler, kwargs),
        (f"models/{NAME}", ModelHandler, kwargs),
        (f"models/{NAME}/predict", PredictHandler, kwargs),
        (f"models/{NAME}/predict_file", PredictFileHandler, kwargs),
    ]


def job_registrar(
    registry: ModelRegistry, log: logging.Logger | None = None
) -> Callable[[JobEvent, Job], None]:
    """An ``on_event(event, job)`` hook of the job manager that registers the bundle of
    every job that succeeds, as the next version of the job's name (characters other
    than letters, digits, ``.``, ``_`` and ``-`` become ``-``). The copy and check run
    in a worker thread; a failure is logged, never raised."""
    logger = log or logging.getLogger("mlaas_jupyter.inference")

    def register(bundle: str, name: str | None) -> None:
        try:
            info = registry.register(bundle, name=name)
        except Exception as err:
            logger.warning("mlaas: cannot register the bundle %s: %s", bundle, err)
        else:
            logger.info("mlaas: registered %s as %s version %d", bundle, info.name, info.version)

    def on_event(event: JobEvent, job: Job) -> None:
        if event.type != "state" or event.data.get("state") != "succeeded" or not job.bundle:
            return
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", job.name).strip("-._")[:100] or None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): register here
            register(job.bundle, name)
        else:
            loop.run_in_executor(None, register, job.bundle, name)

    return on_event
