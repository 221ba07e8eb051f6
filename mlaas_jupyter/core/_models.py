"""`ModelsService`: ``mlaas.models``, the model registry and predictions of the core.

Succeeded training jobs register their bundle as the next version of a model named
after the job (see :class:`JobRegistrar`); bundles can also be uploaded as archives.
Predictions score JSON rows or columns (micro-batched with concurrent requests), or
whole files into friend trees, now or as a prediction job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from ..inference.registry import ModelRegistry
from ..inference.service import PredictionService
from ..jobs.manager import JobManager
from ..jobs.models import Job, JobEvent
from ..specs.prediction import PredictSpec, default_output
from ..specs.requests import PredictFileRequest
from ._jobs import admit, job_json
from .paths import DataRoots

if TYPE_CHECKING:
    from ..inference.bundle import ModelBundle

__all__ = ["JobRegistrar", "ModelsService"]


class ModelsService:
    """List, upload, delete and use the served models."""

    def __init__(
        self,
        registry: ModelRegistry,
        predictions: PredictionService,
        roots: DataRoots,
        manager: JobManager,
        log: logging.Logger | None = None,
        cluster: dict[str, Any] | None = None,
    ) -> None:
        self.registry, self.predictions, self.roots = registry, predictions, roots
        self.manager, self.cluster = manager, cluster
        self.registrar = JobRegistrar(registry, log)

    async def list(self) -> dict[str, Any]:
        """Every version of every model (metadata)."""
        await self.registrar.settled()
        infos = await asyncio.to_thread(self.registry.list)
        return {"models": [info.to_dict() for info in infos]}

    async def show(self, name: str, version: int | None = None) -> dict[str, Any]:
        """One version's metadata, or (without ``version``) every version of a model."""
        await self.registrar.settled()
        if version is not None:
            return (await asyncio.to_thread(self.registry.info, name, version)).to_dict()
        return await asyncio.to_thread(self._versions, name)

    def _versions(self, name: str) -> dict[str, Any]:
        versions = self.registry.versions(name)
        infos = [self.registry.info(name, v).to_dict() for v in versions]
        return {"name": name, "latest": versions[-1], "versions": infos}

    async def upload(self, data: bytes, filename: str | None, name: str | None) -> dict[str, Any]:
        """Register the bundle of a zip or tar(.gz) archive; its metadata."""
        if not data:
            raise SpecError("body", "empty upload: send a zip or tar(.gz) of a bundle folder")
        register = self.registry.register_archive
        info = await asyncio.to_thread(register, data, filename or "upload", name)
        return info.to_dict()

    async def delete(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Remove one version, or every version, of a model."""
        removed = await asyncio.to_thread(self.registry.delete, name, version)
        return {"name": name, "deleted": removed}

    async def scores(
        self, name: str, payload: Any, version: int | None = None
    ) -> tuple[ModelBundle, int, Any]:
        """(bundle, version, scores array) of a decoded payload (rows, columns, or
        TFaaS keys/values), sharing model calls with concurrent requests."""
        await self.registrar.settled()
        return await self.predictions.scores(name, payload, version)

    async def predict(
        self, name: str, payload: Mapping[str, Any], version: int | None = None
    ) -> dict[str, Any]:
        """``{"model", "version", "task", "scores"}`` (and ``classes`` for multi-class)."""
        await self.registrar.settled()
        return await self.predictions.predict(name, payload, version)

    async def predict_file(self, name: str, request: PredictFileRequest) -> dict[str, Any]:
        """Score a file into a friend tree now, or (``async``) submit a prediction job
        scoring files, folders or globs into friend trees; paths stay in the roots."""
        await self.registrar.settled()
        if request.asynchronous:
            return await self._submit(name, request)
        roots = self.roots
        source = roots.resolve(request.paths[0])
        # by default scores/ beside the input: no glob naming the inputs reaches it
        out = roots.resolve(request.out or str(default_output(source, request.prefix)))
        if os.path.isdir(out):  # a folder is where a prediction job writes, not one friend tree
            raise SpecError(
                "out",
                f"{request.out!r} is a folder: give the friend-tree file to write (.root), "
                'or add "async": true to score into the folder',
            )
        return await self.predictions.predict_file(
            name, source, out, request.tree, version=request.version, branch_prefix=request.prefix
        )

    async def _submit(self, name: str, request: PredictFileRequest) -> dict[str, Any]:
        # the model is resolved to one version now: the job scores with that version
        # whatever is uploaded later
        number = self.registry.resolve(name, request.version)
        fields: dict[str, Any] = {
            "bundle": str(self.registry.path(name, number)),
            "model": name,
            "version": number,
            "files": request.paths,
            "output": request.out,
            "tree": request.tree,
            "prefix": request.prefix,
        }
        if request.step_size is not None:
            fields["step_size"] = request.step_size
        if request.cluster is not None:
            fields["cluster"] = request.cluster.to_dict()
        elif self.cluster is not None:  # the server's c.Mlaas.cluster
            fields["cluster"] = self.cluster
        spec = PredictSpec.from_dict(fields, base_dir=self.roots.primary)
        await asyncio.to_thread(admit, self.roots, spec)
        manager = self.manager
        job = await manager.submit(spec, name=f"predict-{name}", executor=request.executor)
        return job_json(job)


class JobRegistrar:
    """An event listener that registers the bundle of every job that succeeds (but the
    trials of sweeps), as the next version of the job's name (characters other than
    letters, digits, ``.``, ``_`` and ``-`` become ``-``).

    The copy and check run in a worker thread; a failure is logged, never raised.
    :meth:`settled` waits for the registrations under way, so that a client that saw
    a job succeed finds its model at once.
    """

    def __init__(self, registry: ModelRegistry, log: logging.Logger | None = None) -> None:
        self.registry = registry
        self.log = log or logging.getLogger("mlaas_jupyter.core")
        self._pending: set[asyncio.Future[None]] = set()

    def _register(self, bundle: str, name: str | None) -> None:
        try:
            info = self.registry.register(bundle, name=name)
        except Exception as err:
            self.log.warning("mlaas: cannot register the bundle %s: %s", bundle, err)
        else:
            self.log.info("mlaas: registered %s as %s version %d", bundle, info.name, info.version)

    def __call__(self, event: JobEvent, job: Job) -> None:
        if event.type != "state" or event.data.get("state") != "succeeded" or not job.bundle:
            return
        if job.sweep is not None:  # a sweep registers its best trial only, once it ends
            return
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", job.name).strip("-._")[:100] or None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): register here
            self._register(job.bundle, name)
            return
        future = loop.run_in_executor(None, self._register, job.bundle, name)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        """Return once the registrations started so far are done."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
