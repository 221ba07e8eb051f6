"""`MlaasExtension`: the core service inside a Jupyter server.

Installing the package enables it (``jupyter server extension list`` shows
``mlaas_jupyter``); it mounts the routes of :mod:`.routes` under
``{base_url}mlaas/api/``, lends the server's kernel manager to the kernel executor
(with a gateway, ``--gateway-url``, also a client that reaches the gateway's kernels:
:mod:`.gateway`), and emits every stored job event on the server's event bus with
the schema :data:`JOB_EVENT_SCHEMA_ID` (``events/job.yaml``), so that websocket
clients of ``/api/events/subscribe`` follow jobs live. It is configured through the core::

    c.Mlaas.data_roots = ["/data/nanoaod", "/eos/user/me/ntuples"]
    c.Mlaas.max_concurrent_jobs = 4
    c.Mlaas.default_executor = "kernel"
    c.Mlaas.resume_lost_jobs = True
    c.KernelExecutor.default_kernel = "python3-gpu"
    c.DaskExecutor.scheduler = "tcp://scheduler:8786"

``c.MlaasExtension.tfaas = True`` (``mlaas serve --tfaas``) also mounts TFaaS's routes
at the server's root for TFaaS's clients (:mod:`._tfaas`).

Under a server the defaults differ from the in-process core's: data roots are the
server's ``root_dir`` (clients may not read elsewhere), jobs run in kernels, and
remote URLs are refused unless allowed.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool

from .._json import to_plain
from ..core.service import Mlaas
from ..jobs.models import Job, JobEvent
from .handlers import url_specs

__all__ = [
    "JOB_EVENT_SCHEMA_ID",
    "JOB_EVENT_SCHEMA_PATH",
    "MlaasExtension",
    "freeze_startup_objects",
]

JOB_EVENT_SCHEMA_ID = "https://mlaas-jupyter.readthedocs.io/events/job"
JOB_EVENT_SCHEMA_PATH = Path(__file__).parent / "events" / "job.yaml"


class MlaasExtension(ExtensionApp):
    """Train models on ROOT files from Jupyter: REST API under ``/mlaas/api/``."""

    name = "mlaas"
    description = "Train models on ROOT files from Jupyter (REST API under /mlaas/api/)"
    load_other_extensions = True
    classes = [Mlaas]  # noqa: RUF012 - traitlets reads it from the class
    tfaas = Bool(
        False,
        help="Also mount TFaaS's routes (/json, /proto, /models, /upload, /delete, /status) "
        "at the server's root, for TFaaS's clients (mlaas serve --tfaas)",
    ).tag(config=True)

    freeze_gc = Bool(
        True,
        help="Once the server has started, collect garbage and freeze the objects left "
        "(gc.freeze): the modules, classes and settings of start-up are never garbage, but "
        "each full collection walked all of them, a pause of 30-60 ms of every request.",
    ).tag(config=True)

    def server_defaults(self) -> dict[str, Any]:
        """What the core gets under a server unless ``c.Mlaas`` says otherwise."""
        assert self.serverapp is not None
        return {
            "data_roots": [self.serverapp.root_dir],
            "default_executor": "kernel",
            "allow_remote_urls": False,
        }

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        given = self.config.get("Mlaas", {})
        defaults = {k: v for k, v in self.server_defaults().items() if k not in given}
        self.core = Mlaas(
            parent=self, kernel_manager=self.serverapp.kernel_manager, **defaults
        ).start()
        self._lend_gateway_clients()
        bus = self.serverapp.event_logger
        assert bus is not None
        if JOB_EVENT_SCHEMA_ID not in bus.schemas.schema_ids:
            bus.register_event_schema(JOB_EVENT_SCHEMA_PATH)
        self._bus = bus
        self.core.add_event_listener(self.forward_event)
        self.settings["mlaas_core"] = self.core

    def _lend_gateway_clients(self) -> None:
        """Kernels on a gateway: the kernel executor talks to them with our client
        (the server's own sends no credentials and spins the event loop)."""
        assert self.serverapp is not None
        gateway = getattr(self.serverapp, "gateway_config", None)
        kernels = self.core.manager.executors.get("kernel")
        if gateway is None or not gateway.gateway_enabled or kernels is None:
            return
        if hasattr(kernels, "client_factory") and kernels.client_factory is None:
            from .gateway import gateway_client_factory

            kernels.client_factory = gateway_client_factory(gateway)
            self.log.info("mlaas: kernel jobs run on the gateway %s", gateway.url)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Once the server's loop runs: freeze what start-up made (``freeze_gc``), then
        resume the jobs start-up marked lost when ``c.Mlaas.resume_lost_jobs`` asks."""
        if self.freeze_gc:
            frozen = freeze_startup_objects()
            self.log.info("mlaas: %d start-up objects moved out of the garbage collector", frozen)
        await self.core.resume_lost()

    def initialize_handlers(self) -> None:
        self.handlers.extend(url_specs(self.name))
        if self.tfaas:
            from ._tfaas import tfaas_url_specs

            self.handlers.extend(tfaas_url_specs(self.name))

    def forward_event(self, event: JobEvent, job: Job) -> None:
        """Emit a stored job event on the server's event bus."""
        data: dict[str, Any] = {
            "job_id": event.job_id,
            "name": job.name,
            "seq": event.seq,
            "time": event.time,
            "type": event.type,
            "state": job.state.value,
            "executor": job.executor,
            "data": to_plain(event.data),
        }
        self._bus.emit(schema_id=JOB_EVENT_SCHEMA_ID, data=data)

    async def stop_extension(self) -> None:
        core = getattr(self, "core", None)
        if core is not None:
            await core.stop()


def freeze_startup_objects() -> int:
    """Collect the garbage of start-up, then move every object left to the permanent
    generation (:func:`gc.freeze`); returns how many were moved.

    A Jupyter server holds some 240,000 objects once its extensions are loaded (modules,
    classes, traitlets, the core's imports), nearly all of them for its whole life. A
    full (generation 2) collection walks every one, 30 to 60 ms during which no request
    is served: with 50 clients waiting, that is the 99th percentile of their latency.
    Frozen, they are skipped; the collections that remain walk only what came later.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
