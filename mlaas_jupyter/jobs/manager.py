"""`JobManager`: submits, queues, runs, cancels and resumes training jobs.

The manager owns the jobs' states, the queue and the store; executors only run.
All its coroutines run on one asyncio event loop (the Jupyter server's, or the
background loop of the core in a process without a server). Every event an
executor reports is stored, then handed to ``on_event(job_event, job)``; state
changes are events too (``{"type": "state", "state": ...}``). Executors report the
text their job prints as ``{"type": "log", "text": ...}`` events, which go to the
job's logs and not to its events.

:class:`JobManager` checks the specs and creates the jobs; it runs them through its
base class, :class:`._scheduler.JobScheduler` (the queue, the runs, cancelling,
waiting, stopping).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..specs.prediction import PredictSpec, is_prediction
from ..specs.training import TrainSpec
from ._scheduler import JobScheduler, OnEvent
from .executors.base import Executor
from .models import Job, JobEvent, JobState
from .store import JobStateError, JobStore, default_runs_dir

__all__ = ["JobManager"]

log = logging.getLogger("mlaas_jupyter.jobs")

RESUMABLE = frozenset({JobState.LOST, JobState.FAILED, JobState.CANCELLED})


class JobManager(JobScheduler):
    """Runs jobs on executors, at most ``max_concurrent`` at a time, in submission order.

    Parameters
    ----------
    store
        Where jobs, events and logs are kept.
    executors
        The executors by name (``"local"``, ``"dask"``, ``"kernel"``, ...).
    default_executor
        The executor of jobs submitted without one.
    max_concurrent
        Jobs running at once; the others wait as ``queued``.
    runs_dir
        Parent of the jobs' run folders (``runs_dir/<job id>``).
    on_event
        Called with each stored event and the job (after the store is updated).
    check_spec
        Called with each submitted :class:`TrainSpec` or :class:`PredictSpec`; raises
        (e.g. ``SpecError``) to refuse it, e.g. for files outside the allowed folders.
    cancel_timeout
        Seconds a cancelled job's run may take to end before it is abandoned.
    """

    def __init__(
        self,
        store: JobStore,
        executors: Mapping[str, Executor],
        *,
        default_executor: str = "local",
        max_concurrent: int = 2,
        runs_dir: str | Path | None = None,
        on_event: OnEvent | None = None,
        check_spec: Callable[[TrainSpec | PredictSpec], None] | None = None,
        cancel_timeout: float = 60.0,
    ) -> None:
        if default_executor not in executors:
            raise ValueError(f"default executor {default_executor!r} is not in {sorted(executors)}")
        super().__init__(
            store,
            executors,
            max_concurrent=max_concurrent,
            on_event=on_event,
            cancel_timeout=cancel_timeout,
        )
        self.default_executor = default_executor
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.check_spec = check_spec

    # -- reading -----------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        return self.store.get(job_id)

    def list(
        self,
        state: JobState | str | Collection[JobState | str] | None = None,
        limit: int | None = None,
        name: str | None = None,
        kind: str | None = None,
    ) -> list[Job]:
        return self.store.list(state=state, limit=limit, name=name, kind=kind)

    def events(
        self, job_id: str, since: int = 0, limit: int | None = None
    ) -> builtins.list[JobEvent]:
        return self.store.events(job_id, since=since, limit=limit)

    def logs(self, job_id: str) -> str:
        return self.store.logs(job_id)

    def recover(self) -> builtins.list[Job]:
        """At startup: jobs left running or queued by a stopped process become lost."""
        lost = self.store.mark_interrupted()
        if lost:
            log.info("%d job(s) marked lost: %s", len(lost), ", ".join(j.id for j in lost))
        return lost

    # -- submitting --------------------------------------------------------------------

    def _validate(
        self, spec: Mapping[str, Any] | TrainSpec | PredictSpec, executor: str | None
    ) -> tuple[Any, str]:
        """The checked spec (a TrainSpec or, for ``{"predict": ...}``, a PredictSpec)."""
        if isinstance(spec, Mapping) and is_prediction(spec):
            spec = PredictSpec.from_dict(spec["predict"])
        checked = spec if isinstance(spec, TrainSpec | PredictSpec) else TrainSpec.from_dict(spec)
        name = executor or self.default_executor
        if name not in self.executors:
            raise SpecError(
                "executor",
                f"unknown executor {name!r}; allowed values: {', '.join(self.executors)}",
            )
        if self.check_spec is not None:
            self.check_spec(checked)
        return checked, name

    async def submit(
        self,
        spec: Mapping[str, Any] | TrainSpec | PredictSpec,
        *,
        executor: str | None = None,
        kernel_name: str | None = None,
        name: str | None = None,
        sweep: str | None = None,
    ) -> Job:
        """Validate ``spec`` and queue a new job (a trial of the sweep ``sweep`` when
        given); ``SpecError`` when it is invalid."""
        train_spec, executor = self._validate(spec, executor)
        if isinstance(train_spec, PredictSpec):
            return await self._enqueue(
                train_spec, executor, name=name or train_spec.job_name(), kernel_name=kernel_name
            )
        model = train_spec.model
        default = train_spec.training.name or model.name or Path(model.file or "model").stem
        return await self._enqueue(
            train_spec, executor, name=name or default, kernel_name=kernel_name, sweep=sweep
        )

    async def resubmit(self, job_id: str) -> Job:
        """A new job continuing a lost, failed or cancelled one from its last checkpoint
        (same spec with ``training.resume``, same run folder)."""
        old = self.store.get(job_id)
        if old.state not in RESUMABLE:
            raise JobStateError(
                f"job {old.id} is {old.state.value}; only lost, failed or cancelled jobs "
                "can be resubmitted"
            )
        for other in self.store.list(state=(JobState.QUEUED, JobState.RUNNING)):
            if other.run_dir == old.run_dir:
                raise JobStateError(f"job {other.id} is already continuing job {old.id}")
        spec = dict(old.spec)
        if not is_prediction(spec):
            spec["training"] = {**old.spec.get("training", {}), "resume": True}
        train_spec, executor = self._validate(spec, old.executor)
        return await self._enqueue(
            train_spec,
            executor,
            name=old.name,
            kernel_name=old.kernel_name,
            run_dir=old.run_dir,
            resumed_from=old.id,
        )

    def resumable(self, job_id: str) -> Job:
        """The job ``job_id`` when :meth:`resume` may run it again, else
        :class:`JobStateError` saying why."""
        old = self.store.get(job_id)
        if old.state is not JobState.LOST:
            raise JobStateError(
                f"job {old.id} is {old.state.value}; only a lost job can be resumed "
                "(resubmit makes a new job that continues a failed or cancelled one)"
            )
        if old.sweep is not None:
            raise JobStateError(
                f"job {old.id} is a trial of sweep {old.sweep}; resume the sweep instead"
            )
        for other in self.store.list(state=(JobState.QUEUED, JobState.RUNNING)):
            if other.run_dir == old.run_dir:
                raise JobStateError(f"job {other.id} is already continuing job {old.id}")
        return old

    async def resume(self, job_id: str) -> Job:
        """Run a lost job again, the same job: lost -> queued, a ``resumed`` event after
        its old events, then a run in its run folder from its last checkpoint (a
        training's ``training.resume``: the epochs done are not trained again, its
        history continues); a prediction job scores its files again.

        Raises
        ------
        JobStateError
            Unless the job is lost (the message names its state), when it is a trial
            of a sweep (resume the sweep), or when a resubmitted job already continues
            it in its run folder.
        """
        old = self.resumable(job_id)
        if self._stopping:
            raise JobStateError("the job manager is shutting down")
        spec = dict(old.spec)
        if not is_prediction(spec):
            spec["training"] = {**old.spec.get("training", {}), "resume": True}
        checked, _ = self._validate(spec, old.executor)
        job = self.store.reopen(job_id, checked.to_dict())
        if self._loop is None:
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        epoch = _checkpoint_epoch(old.run_dir) if job.kind == "train" else None
        if job.kind != "train":
            message = "resumed: its files are scored again"
        elif epoch:
            message = f"resumed from the checkpoint of epoch {epoch}"
        else:
            message = "resumed from the start (no epoch was checkpointed)"
        self._record(
            job_id,
            {"type": "resumed", "message": message, "checkpoint_epoch": epoch, "reason": old.error},
        )
        self._record(job_id, {"type": "state", "state": JobState.QUEUED.value})
        self._queue.append(job_id)
        self._pump()
        log.info("job %s %s", job_id, message)
        return self.store.get(job_id)

    async def _enqueue(self, spec: TrainSpec | PredictSpec, executor: str, **fields: Any) -> Job:
        if self._stopping:
            raise JobStateError("the job manager is shutting down")
        if self._loop is None:
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        job_id = uuid.uuid4().hex[:12]
        fields.setdefault("run_dir", None)
        fields["run_dir"] = fields["run_dir"] or str(self.runs_dir / job_id)
        kind = "predict" if isinstance(spec, PredictSpec) else "train"
        job = Job(
            job_id,
            state=JobState.QUEUED,
            spec=spec.to_dict(),
            executor=executor,
            kind=kind,
            **fields,
        )
        self.store.create(job)
        self._record(job.id, {"type": "state", "state": JobState.QUEUED.value})
        self._queue.append(job.id)
        self._pump()
        return self.store.get(job.id)


def _checkpoint_epoch(run_dir: str | None) -> int | None:
    """The last checkpointed epoch of a training run folder (None when there is none)."""
    if not run_dir:
        return None
    try:
        state = json.loads((Path(run_dir) / "checkpoint" / "progress.json").read_text())
        return int(state["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
