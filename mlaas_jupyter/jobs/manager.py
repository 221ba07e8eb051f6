"""`JobManager`: submits, queues, runs, cancels and resumes training jobs.

The manager owns the jobs' states, the queue and the store; executors only run.
All its coroutines run on one asyncio event loop (the Jupyter server's, or the
background loop of an embedded :class:`mlaas_jupyter.client.Client`). Every event an
executor reports is stored, then handed to ``on_event(job_event, job)``; state
changes are events too (``{"type": "state", "state": ...}``). Executors report the
text their job prints as ``{"type": "log", "text": ...}`` events, which go to the
job's logs and not to its events.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..serve.batch import PredictSpec, is_prediction
from ..train.spec import TrainSpec
from .executors.base import Executor, JobCancelled, JobFailed
from .models import FINISHED, Job, JobEvent, JobState
from .store import INTERRUPTED, INTERRUPTED_QUEUED, JobStateError, JobStore, default_runs_dir

__all__ = ["JobManager"]

log = logging.getLogger("mlaas_jupyter.jobs")

OnEvent = Callable[[JobEvent, Job], None]
RESUMABLE = frozenset({JobState.LOST, JobState.FAILED, JobState.CANCELLED})


class JobManager:
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
        self.store = store
        self.executors = dict(executors)
        self.default_executor = default_executor
        self.max_concurrent = max(1, max_concurrent)
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.on_event = on_event
        self.check_spec = check_spec
        self.cancel_timeout = cancel_timeout
        self._queue: collections.deque[str] = collections.deque()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._cancelling: set[str] = set()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

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
    ) -> Job:
        """Validate ``spec`` and queue a new job; ``SpecError`` when it is invalid."""
        train_spec, executor = self._validate(spec, executor)
        if isinstance(train_spec, PredictSpec):
            return await self._enqueue(
                train_spec, executor, name=name or train_spec.job_name(), kernel_name=kernel_name
            )
        model = train_spec.model
        default = train_spec.training.name or model.name or Path(model.file or "model").stem
        return await self._enqueue(
            train_spec, executor, name=name or default, kernel_name=kernel_name
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

    # -- running -----------------------------------------------------------------------

    def _pump(self) -> None:
        while self._queue and len(self._tasks) < self.max_concurrent and not self._stopping:
            job_id = self._queue.popleft()
            self._tasks[job_id] = asyncio.create_task(self._run(job_id), name=f"mlaas-job-{job_id}")

    def _record(self, job_id: str, event: dict[str, Any]) -> None:
        """Store an event (a log text goes to the logs) and forward it; never raises."""
        try:
            if event.get("type") == "log":
                self.store.append_log(job_id, str(event.get("text", "")))
                return
            stored = self.store.append_event(job_id, event)
            if self.on_event is not None:
                self.on_event(stored, self.store.get(job_id))
        except Exception:
            log.exception("cannot record an event of job %s", job_id)

    def _emitter(self, job_id: str) -> Callable[[dict[str, Any]], None]:
        def emit(event: dict[str, Any]) -> None:
            if self._loop is not None and threading.get_ident() != self._loop_thread:
                self._loop.call_soon_threadsafe(self._record, job_id, dict(event))
            else:
                self._record(job_id, event)

        return emit

    def _set_state(
        self, job_id: str, state: JobState, error: str | None = None, **fields: Any
    ) -> Job:
        if fields:
            self.store.update(job_id, **fields)
        job = self.store.set_state(job_id, state, error)
        event: dict[str, Any] = {"type": "state", "state": state.value}
        if error is not None:
            event["error"] = error
        self._record(job_id, event)
        return job

    async def _run(self, job_id: str) -> None:
        try:
            job = self._set_state(job_id, JobState.RUNNING)
            executor = self.executors[job.executor]
            done = await executor.run(job, self._emitter(job_id))
        except asyncio.CancelledError:
            self._end(job_id, JobState.LOST, INTERRUPTED)
            raise
        except JobCancelled:
            self._end(job_id, JobState.CANCELLED)
        except JobFailed as err:
            self._end(job_id, JobState.FAILED, str(err) or "the job failed")
        except Exception as err:  # a bug in an executor must not stop the manager
            log.exception("job %s: unexpected error in its executor", job_id)
            self._end(job_id, JobState.FAILED, f"internal error: {type(err).__name__}: {err}")
        else:
            bundle = done.get("bundle")
            fields: dict[str, Any] = {"metrics": dict(done.get("metrics") or {})}
            if bundle is not None:
                fields["bundle"] = str(bundle)
            if isinstance(done.get("outputs"), list):
                fields["outputs"] = [str(path) for path in done["outputs"]]
            self._end(job_id, JobState.SUCCEEDED, None, **fields)
        finally:
            self._tasks.pop(job_id, None)
            self._pump()

    def _end(self, job_id: str, state: JobState, error: str | None = None, **fields: Any) -> None:
        """The final state of a run; a cancelled or stopped job ends cancelled or lost
        whatever its executor said."""
        if job_id in self._cancelling and state is not JobState.SUCCEEDED:
            state, error, fields = JobState.CANCELLED, None, {}
        elif self._stopping and state in (JobState.FAILED, JobState.CANCELLED):
            state, error, fields = JobState.LOST, INTERRUPTED, {}
        self._cancelling.discard(job_id)
        try:
            if self.store.get(job_id).state not in FINISHED:
                self._set_state(job_id, state, error, **fields)
        except Exception:
            log.exception("cannot store the end of job %s", job_id)
        self._finished.pop(job_id, asyncio.Event()).set()

    # -- cancelling and waiting --------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job; :class:`JobStateError` when it has finished."""
        job = self.store.get(job_id)
        if job.state in FINISHED:
            raise JobStateError(f"job {job.id} has already finished ({job.state.value})")
        if job_id in self._queue:
            self._queue.remove(job_id)
            self._end(job_id, JobState.CANCELLED)
        elif (task := self._tasks.get(job_id)) is not None:
            self._cancelling.add(job_id)
            try:
                await asyncio.wait_for(
                    self.executors[job.executor].cancel(job), self.cancel_timeout
                )
                await asyncio.wait({task}, timeout=self.cancel_timeout)
            except Exception:
                log.exception("job %s: cancel failed", job_id)
            if not task.done():
                log.warning("job %s did not stop in %.0f s; abandoned", job_id, self.cancel_timeout)
                task.cancel()
                self._end(job_id, JobState.CANCELLED)
        elif self.store.orphaned(job_id):
            self._end(job_id, JobState.CANCELLED)  # its process is gone: nothing runs it
        else:
            raise JobStateError(
                f"job {job.id} is {job.state.value} in another process; cancel it there"
            )
        return self.store.get(job_id)

    async def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.5) -> Job:
        """The job once finished; ``TimeoutError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        event = self._finished.setdefault(job_id, asyncio.Event())
        while True:
            job = self.store.get(job_id)
            if job.state in FINISHED:
                return job
            left = poll if deadline is None else min(poll, deadline - loop.time())
            if left <= 0:
                raise TimeoutError(f"job {job_id} is still {job.state.value} after {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)

    async def shutdown(self) -> None:
        """Stop: queued and running jobs become lost, executors are closed."""
        self._stopping = True
        while self._queue:
            self._end(self._queue.popleft(), JobState.LOST, INTERRUPTED_QUEUED)
        running = list(self._tasks.items())

        async def stop(job_id: str, task: asyncio.Task[None]) -> None:
            try:
                job = self.store.get(job_id)
                await asyncio.wait_for(
                    self.executors[job.executor].cancel(job), self.cancel_timeout
                )
                await asyncio.wait({task}, timeout=5.0)
            except Exception:
                log.exception("job %s: cannot stop it", job_id)
            if not task.done():
                task.cancel()
                await asyncio.wait({task})

        await asyncio.gather(*(stop(job_id, task) for job_id, task in running))
        for executor in self.executors.values():
            with contextlib.suppress(Exception):
                result = getattr(executor, "close", lambda: None)()
                if asyncio.iscoroutine(result):
                    await result
