"""`MlaasExtension`: the Jupyter Server extension (REST API, job manager, event bus).

Enable it with ``jupyter server extension enable mlaas_jupyter.web`` (the package
installs that config already) and configure it like any Jupyter application::

    c.MlaasExtension.data_roots = ["/data/nanoaod", "/eos/user/me/ntuples"]
    c.MlaasExtension.max_concurrent_jobs = 4
    c.MlaasExtension.default_executor = "kernel"
    c.MlaasExtension.default_kernel = "python3-gpu"
    c.MlaasExtension.dask_scheduler = "tcp://scheduler:8786"
    c.MlaasExtension.kernel_executor_class = "mypackage.MyKernelExecutor"

Every stored job event is also emitted on the server's event bus with the schema
:data:`JOB_EVENT_SCHEMA_ID` (see ``events/job.yaml``), so websocket clients of
``/api/events/subscribe`` follow jobs live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_events.logger import EventLogger
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, List, Type, Unicode, default, validate

from ..core.paths import DataRoots
from ..errors import SourceError, SpecError
from ..inference.batch import PredictSpec
from ..inference.registry import ModelRegistry
from ..inference.service import PredictionService
from ..jobs.manager import JobManager
from ..jobs.models import Job, JobEvent
from ..jobs.store import JobStore, default_runs_dir, default_store_path
from ..stream.sources import resolve_files
from ._models_api import ServeContext
from ._models_handlers import job_registrar, model_handlers
from .handlers import catch_all_handler, default_handlers, job_json, plain_json

__all__ = ["JOB_EVENT_SCHEMA_ID", "JOB_EVENT_SCHEMA_PATH", "MlaasExtension"]

JOB_EVENT_SCHEMA_ID = "https://mlaas-jupyter.readthedocs.io/events/job"
JOB_EVENT_SCHEMA_PATH = Path(__file__).parent / "events" / "job.yaml"
EXECUTORS = ("kernel", "local", "dask")


class MlaasExtension(ExtensionApp):
    """Train models on ROOT files from Jupyter: REST API under ``/mlaas/api/``."""

    name = "mlaas"
    description = __doc__
    load_other_extensions = True

    data_roots = List(
        Unicode(),
        config=True,
        help="Folders whose files clients may read (and train on); default: the server's "
        "root_dir. Relative paths in requests are taken from the first one.",
    )
    allow_remote_urls = Bool(
        False, config=True, help="Accept root://, https://... URLs in specs and requests."
    )
    job_store = Unicode(config=True, help="SQLite file of the jobs, their events and logs.")
    runs_dir = Unicode(config=True, help="Parent folder of the jobs' run folders.")
    max_concurrent_jobs = Int(2, config=True, help="Jobs running at once; others are queued.")
    default_executor = Unicode(
        "kernel", config=True, help="Executor of jobs submitted without one: kernel|dask|local."
    )
    default_kernel = Unicode("python3", config=True, help="Kernel spec of kernel jobs.")
    dask_scheduler = Unicode(
        "", config=True, help="Address of a dask scheduler; empty: a LocalCluster on demand."
    )
    models_dir = Unicode(config=True, help="Registry of served models (<name>/<version>/ bundles).")
    auto_register_models = Bool(
        True, config=True, help="Register the bundle of each succeeded job."
    )
    max_cached_models = Int(4, config=True, help="Models kept loaded for predictions.")
    predict_max_delay_ms = Float(2.0, config=True, help="Micro-batching window of predictions.")
    histogram_max_events = Int(
        1_000_000, config=True, help="Events read per class by the histograms endpoint."
    )
    kernel_executor_class = Type(
        default_value="mlaas_jupyter.jobs.executors.kernel.KernelExecutor",
        klass=object,
        config=True,
        help="Executor of 'kernel' jobs: called as cls(kernel_manager, default_kernel=...).",
    )
    local_executor_class = Type(
        default_value="mlaas_jupyter.jobs.executors.local.LocalExecutor",
        klass=object,
        config=True,
        help="Executor of 'local' jobs (a subprocess each): called as cls().",
    )
    dask_executor_class = Type(
        default_value="mlaas_jupyter.jobs.executors.dask.DaskExecutor",
        klass=object,
        config=True,
        help="Executor of 'dask' jobs: called as cls(scheduler=address or None).",
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

    @validate("default_executor")
    def _check_executor(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value not in EXECUTORS:
            raise ValueError(f"default_executor must be one of {', '.join(EXECUTORS)}: {value!r}")
        return value

    # -- set-up ------------------------------------------------------------------------

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        roots = self.data_roots or [self.serverapp.root_dir]
        self.roots = DataRoots(roots, allow_remote=self.allow_remote_urls)
        bus = self.serverapp.event_logger
        assert bus is not None
        self._bus: EventLogger = bus
        if JOB_EVENT_SCHEMA_ID not in self._bus.schemas.schema_ids:
            self._bus.register_event_schema(JOB_EVENT_SCHEMA_PATH)
        self.registry = ModelRegistry(self.models_dir, max_cached=self.max_cached_models)
        self.predictions = PredictionService(self.registry, max_delay_ms=self.predict_max_delay_ms)
        self.serve_context = ServeContext(
            self.registry,
            self.predictions,
            resolve_path=self.roots.resolve,
            submit_job=self._submit_prediction,
        )
        self._register = (
            job_registrar(self.registry, self.log) if self.auto_register_models else None
        )
        self.store = JobStore(self.job_store)
        self.manager = JobManager(
            self.store,
            self._executors(),
            default_executor=self.default_executor,
            max_concurrent=self.max_concurrent_jobs,
            runs_dir=self.runs_dir,
            on_event=self._on_job_event,
            check_spec=self.roots.check_spec,
        )
        lost = self.manager.recover()
        self.log.info(
            "mlaas: data roots %s, job store %s (%d interrupted job(s) marked lost)",
            ", ".join(self.roots.roots),
            self.job_store,
            len(lost),
        )

    def _executors(self) -> dict[str, Any]:
        assert self.serverapp is not None
        kernel: Any = self.kernel_executor_class
        local: Any = self.local_executor_class
        dask: Any = self.dask_executor_class
        km = self.serverapp.kernel_manager
        makers = {
            "kernel": lambda: kernel(km, default_kernel=self.default_kernel),
            "local": lambda: local(),
            "dask": lambda: dask(scheduler=self.dask_scheduler or None),
        }
        executors: dict[str, Any] = {}
        for name, make in makers.items():
            try:
                executors[name] = make()
            except Exception as err:  # one broken executor must not take the server down
                self.log.error("mlaas: the %s executor is unavailable: %s", name, err)
        return executors

    def initialize_handlers(self) -> None:
        models = [
            (r"/mlaas/api/" + p, cls, kw) for p, cls, kw in model_handlers(self.serve_context)
        ]
        self.handlers.extend(models + default_handlers)
        self.handlers.append(catch_all_handler)  # last: JSON 404 for anything else

    async def _submit_prediction(
        self, spec: dict[str, Any], name: str, executor: str | None = None
    ) -> dict[str, Any]:
        """A prediction job (``models/{name}/predict_file`` with ``"async": true``):
        the files must exist and, like the output, be inside the data roots."""
        checked = PredictSpec.from_dict(spec["predict"], base_dir=self.roots.primary)
        self.roots.check_spec(checked)  # PathRefused (403) before any file is looked at
        try:
            files = resolve_files(list(checked.files))
        except SourceError as err:
            raise SpecError("path", str(err)) from None
        checked.outputs_for(files)  # SpecError: several inputs for one output file
        return job_json(await self.manager.submit(checked, name=name, executor=executor))

    def _on_job_event(self, event: JobEvent, job: Job) -> None:
        self.forward_event(event, job)
        if self._register is not None:
            self._register(event, job)  # a succeeded job's bundle becomes a served model

    def forward_event(self, event: JobEvent, job: Job) -> None:
        """Emit a stored job event on the server's event bus (called by the manager)."""
        data: dict[str, Any] = {
            "job_id": event.job_id,
            "name": job.name,
            "seq": event.seq,
            "time": event.time,
            "type": event.type,
            "state": job.state.value,
            "executor": job.executor,
            "data": plain_json(event.data),
        }
        self._bus.emit(schema_id=JOB_EVENT_SCHEMA_ID, data=data)

    async def stop_extension(self) -> None:
        predictions = getattr(self, "predictions", None)
        if predictions is not None:
            predictions.close()
        manager = getattr(self, "manager", None)
        if manager is not None:
            await manager.shutdown()
            self.store.close()
