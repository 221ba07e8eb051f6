"""The running half of `JobManager`: its queue, its runs, cancelling, waiting and stopping.

:class:`JobScheduler` takes the ids of jobs already in the store and runs them on
their executors, at most ``max_concurrent`` at a time, in submission order; it stores
every event an executor reports (a ``log`` event's text goes to the job's logs),
moves the job through its states, and ends it cancelled or lost when it was cancelled
or the manager stopped, whatever its executor said. :class:`~.manager.JobManager`
builds on it with the checking and the creation of the jobs; all of this runs on one
asyncio event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .executors.base import Executor, JobCancelled, JobFailed
from .models import FINISHED, Job, JobEvent, JobState
from .store import INTERRUPTED, INTERRUPTED_QUEUED, JobStateError, JobStore

__all__ = ["JobScheduler", "OnEvent"]

log = logging.getLogger("mlaas_jupyter.jobs")

OnEvent = Callable[[JobEvent, Job], None]


class JobScheduler:
    """Runs the queued jobs of ``store`` on ``executors``, at most ``max_concurrent``
    at a time; the base of :class:`~mlaas_jupyter.jobs.manager.JobManager`, whose
    docstring describes the parameters."""

    def __init__(
        self,
        store: JobStore,
        executors: Mapping[str, Executor],
        *,
        max_concurrent: int,
        on_event: OnEvent | None,
        cancel_timeout: float,
    ) -> None:
        self.store = store
        self.executors = dict(executors)
        self.max_concurrent = max(1, max_concurrent)
        self.on_event = on_event
        self.cancel_timeout = cancel_timeout
        self._queue: collections.deque[str] = collections.deque()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._cancelling: set[str] = set()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

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
