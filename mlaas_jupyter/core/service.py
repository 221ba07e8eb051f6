"""`Mlaas`: the one core service behind every front door.

The REST handlers (a Jupyter server or ``mlaas serve``), the in-process client (a
notebook with no server, a script), the magics, the widgets and the CLI all call
the same methods: ``mlaas.jobs`` (submit, list, cancel, delete, events, logs,
artefacts), ``mlaas.models`` (the registry and predictions), ``mlaas.sweeps``
(hyperparameter sweeps) and ``mlaas.data`` (files, trees, branches, histograms).
Nothing here imports Jupyter: the kernel executor takes whatever kernel manager it
is given (the server's, or a plain ``jupyter_client`` one made here when there is
no server).

Configure it like any traitlets application::

    c.Mlaas.data_roots = ["/data/nanoaod"]
    c.Mlaas.default_executor = "kernel"
    c.Mlaas.max_concurrent_jobs = 4
    c.Mlaas.resume_lost_jobs = True     # at start-up, jobs lost by the last stop resume
    c.DaskExecutor.scheduler = "tcp://scheduler:8786"
    c.Mlaas.cluster = {"gateway": {"address": "https://gateway.example.org"}}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Float, Int, List, Type, Unicode, Union, default, validate
from traitlets.config import LoggingConfigurable

from ..errors import MlaasError
from ..inference.registry import ModelRegistry
from ..inference.service import PredictionService
from ..jobs.executors import Executor, executor_classes
from ..jobs.manager import JobManager
from ..jobs.models import Job, JobEvent
from ..jobs.store import JobStore, default_runs_dir, default_store_path
from ..specs.cluster import ClusterSpec
from ..specs.training import TrainConfig
from ._data import DataService
from ._jobs import JobsService
from ._models import ModelsService
from ._sweeps import SweepsService
from .paths import DataRoots

__all__ = ["EventListener", "Mlaas"]

EventListener = Callable[[JobEvent, Job], None]
_PLUGINS = executor_classes()


def _plugin(name: str) -> Any:
    return _PLUGINS.get(name, Executor)


class Mlaas(LoggingConfigurable):
    """Jobs, models and data behind one facade (see the module docstring).

    Call :meth:`start` once before using it (it opens the job store and marks the
    jobs of a stopped process lost) and ``await`` :meth:`stop` at the end.
    """

    data_roots = List(
        Unicode(),
        config=True,
        help="Folders whose files clients may read and train on; relative paths are "
        "taken from the first. Default: the current folder, and every other path.",
    )
    allow_remote_urls = Bool(
        True, config=True, help="Accept root://, https://... URLs in specs and requests."
    )
    job_store = Unicode(config=True, help="SQLite file of the jobs, their events and logs.")
    runs_dir = Unicode(config=True, help="Parent folder of the jobs' run folders.")
    models_dir = Unicode(config=True, help="Registry of served models (<name>/<version>/).")
    max_concurrent_jobs = Int(2, config=True, help="Jobs running at once; others are queued.")
    default_executor = Unicode("local", config=True, help="Executor of jobs submitted without one.")
    enabled_executors = List(
        Unicode(),
        default_value=["local", "dask", "kernel"],
        config=True,
        help="Executors to offer, by name (plug-ins of the mlaas_jupyter.executors group).",
    )
    local_executor_class = Type(
        default_value=_plugin("local"),
        klass=Executor,
        config=True,
        help="Executor of 'local' jobs (a subprocess each).",
    )
    dask_executor_class = Type(
        default_value=_plugin("dask"),
        klass=Executor,
        config=True,
        help="Executor of 'dask' jobs (configure it with c.DaskExecutor.cluster).",
    )
    kernel_executor_class = Type(
        default_value=_plugin("kernel"),
        klass=Executor,
        config=True,
        help="Executor of 'kernel' jobs (configure it with c.KernelExecutor.default_kernel).",
    )
    kernel_manager = AnyTrait(
        None,
        allow_none=True,
        help="The kernel manager of kernel jobs (the Jupyter server's; default: the "
        "kernel executor's own).",
    )
    auto_register_models = Bool(
        True, config=True, help="Register the bundle of each succeeded job as a model."
    )
    max_cached_models = Int(4, config=True, help="Models kept loaded for predictions.")
    predict_max_delay_ms = Float(2.0, config=True, help="Micro-batching window of predictions.")
    predict_max_batch = Int(4096, config=True, help="Rows of one model call.")
    predict_workers = Int(2, config=True, help="Threads running model calls.")
    max_predict_bytes = Int(64 << 20, config=True, help="Largest prediction request body.")
    max_upload_bytes = Int(512 << 20, config=True, help="Largest uploaded bundle archive.")
    histogram_max_events = Int(
        1_000_000, config=True, help="Events read per class for a histogram."
    )
    resume_lost_jobs = Bool(
        False,
        config=True,
        help="At start-up, resume the jobs that start-up marked lost (their process had "
        "stopped): each runs again as the same job, from its last checkpoint.",
    )
    plot_style = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Experiment style of the plots of training jobs whose spec sets none "
        "(training.style): CMS, ATLAS, LHCb, ALICE or none.",
    )

    cluster = Union(
        [Unicode(), Dict()],
        default_value=None,
        allow_none=True,
        config=True,
        help="Dask cluster of the jobs whose spec sets none: the statistics pass and "
        "data-parallel ranks of training jobs, the files of prediction jobs; 'local', an "
        "address, or {scheduler|gateway|jobqueue}.",
    )

    @default("job_store")
    def _default_job_store(self) -> str:
        return str(default_store_path())

    @default("runs_dir")
    def _default_runs_dir(self) -> str:
        return str(default_runs_dir())

    @default("models_dir")
    def _default_models_dir(self) -> str:
        return str(Path(self.runs_dir).parent / "models")

    @validate("plot_style")
    def _check_plot_style(self, proposal: Any) -> str | None:
        value = proposal["value"]
        return None if value is None else TrainConfig.parse({"style": value}).style

    @validate("cluster")
    def _check_cluster(self, proposal: Any) -> Any:
        value = proposal["value"]
        return None if value is None else ClusterSpec.parse(value, "Mlaas.cluster").to_dict()

    @validate("default_executor")
    def _check_default_executor(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value not in self.enabled_executors:
            raise ValueError(
                f"default_executor must be one of {', '.join(self.enabled_executors)}: {value!r}"
            )
        return value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._listeners: list[EventListener] = []
        self._started = False
        self._lost_at_start: list[str] = []
        self._resuming: asyncio.Task[list[dict[str, Any]]] | None = None

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> Mlaas:
        """Open the store and the registry, and build the executors; returns itself."""
        if self._started:
            return self
        self.roots = DataRoots(
            self.data_roots or [os.getcwd(), os.sep], allow_remote=self.allow_remote_urls
        )
        self.store = JobStore(self.job_store)
        self.registry = ModelRegistry(self.models_dir, max_cached=self.max_cached_models)
        self.predictions = PredictionService(
            self.registry,
            max_batch=self.predict_max_batch,
            max_delay_ms=self.predict_max_delay_ms,
            workers=self.predict_workers,
        )
        self.manager = JobManager(
            self.store,
            self._executors(),
            default_executor=self.default_executor,
            max_concurrent=self.max_concurrent_jobs,
            runs_dir=self.runs_dir,
            on_event=self._on_event,  # specs are admitted by .jobs and .models, in a thread
        )
        self.jobs = JobsService(
            self.roots, self.manager, self.store, self.runs_dir, self.plot_style, self.cluster
        )
        self.models = ModelsService(
            self.registry, self.predictions, self.roots, self.manager, self.log, self.cluster
        )
        if self.auto_register_models:
            self._listeners.append(self.models.registrar)
        self.sweeps = SweepsService(self.jobs, self.registry, parent=self)
        self._listeners.append(self.sweeps.on_event)
        self.data = DataService(self.roots, self.histogram_max_events)
        lost = self.manager.recover()
        self.sweeps.recover()  # after the jobs: a lost sweep's running trials are lost jobs
        self._started = True
        self._lost_at_start = [job.id for job in reversed(lost)]  # oldest first
        if self.resume_lost_jobs:
            with contextlib.suppress(RuntimeError):  # no running loop: resume_lost() later
                self._resuming = asyncio.get_running_loop().create_task(self.resume_lost())
        self.log.info(
            "mlaas: data roots %s, job store %s, models %s (%d interrupted job(s) marked lost)",
            ", ".join(self.roots.roots),
            self.job_store,
            self.models_dir,
            len(lost),
        )
        return self

    async def resume_lost(self) -> list[dict[str, Any]]:
        """With ``resume_lost_jobs``, resume the jobs that :meth:`start` marked lost (once;
        a job that cannot be resumed, e.g. a sweep's trial, stays lost with a warning);
        returns the resumed jobs. :meth:`start` calls it when a loop runs, the server
        extension once its loop has started."""
        lost, self._lost_at_start = self._lost_at_start, []
        if not self.resume_lost_jobs:
            return []
        resumed = []
        for job_id in lost:
            try:
                resumed.append(await self.jobs.resume(job_id))
            except MlaasError as err:
                self.log.warning("mlaas: job %s stays lost: %s", job_id, err)
        if resumed:
            self.log.info("mlaas: %d lost job(s) resumed", len(resumed))
        return resumed

    async def stop(self) -> None:
        """Stop the running jobs (they become lost), the executors and the store."""
        if not self._started:
            return
        self._started = False
        if self._resuming is not None and not self._resuming.done():
            await self._resuming  # its jobs are queued: they stop as lost with the others
        self.predictions.close()
        await self.sweeps.close()  # first: a driver must not submit trials while jobs stop
        await self.manager.shutdown()
        self.store.close()

    def add_event_listener(self, listener: EventListener) -> None:
        """Call ``listener(event, job)`` with every stored job event (after the store)."""
        self._listeners.append(listener)

    def info(self) -> dict[str, Any]:
        """Where things are kept and what runs jobs: what a client shows the user."""
        return {
            "version": _version(),
            "job_store": self.job_store,
            "runs_dir": self.runs_dir,
            "models_dir": self.models_dir,
            "data_roots": list(self.roots.roots),
            "executors": list(self.manager.executors),
            "default_executor": self.manager.default_executor,
        }

    # -- internals ---------------------------------------------------------------------

    def _on_event(self, event: JobEvent, job: Job) -> None:
        for listener in self._listeners:
            try:
                listener(event, job)
            except Exception:  # one broken listener must not lose the others' events
                self.log.exception("mlaas: an event listener failed")

    def _executors(self) -> dict[str, Executor]:
        built: dict[str, Executor] = {}
        for name in self.enabled_executors:
            try:
                built[name] = self._executor(name)
            except Exception as err:  # one broken executor must not take the service down
                self.log.error("mlaas: the %s executor is unavailable: %s", name, err)
        if self.default_executor not in built:
            raise ValueError(f"the default executor {self.default_executor!r} is unavailable")
        return built

    def _executor(self, name: str) -> Executor:
        if name == "local":
            return self.local_executor_class(parent=self)  # type: ignore[no-any-return]
        if name == "dask":
            return self.dask_executor_class(parent=self)  # type: ignore[no-any-return]
        if name == "kernel":
            # without a kernel manager (no Jupyter server) the executor makes its own
            given = {} if self.kernel_manager is None else {"kernel_manager": self.kernel_manager}
            return self.kernel_executor_class(parent=self, **given)  # type: ignore[no-any-return]
        if name not in _PLUGINS:
            known = ", ".join(sorted({"local", "dask", "kernel", *_PLUGINS}))
            raise ValueError(f"no executor plug-in named {name!r}; installed: {known}")
        return _PLUGINS[name](parent=self)


def _version() -> str:
    from .._version import __version__

    return __version__


logging.getLogger("mlaas_jupyter").addHandler(logging.NullHandler())
