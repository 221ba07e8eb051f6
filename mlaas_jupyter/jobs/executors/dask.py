"""`DaskExecutor`: each job as a task on a dask ``distributed`` cluster.

With a scheduler address the jobs go to that cluster (its workers need
``mlaas_jupyter`` installed and the data files reachable); without one a
LocalCluster of one single-threaded worker process is started on first use and
closed by :meth:`DaskExecutor.close`.

Events come back through a ``distributed.Queue`` named after the job. Cancelling
sets the ``distributed.Event`` ``mlaas-cancel-<job id>``: the task checks it at each
training event (about once a second) and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from typing import Any

from traitlets import Float, Unicode

from ...errors import MlaasError
from ..models import Job
from .base import EmitEvent, Executor, JobCancelled, JobFailed

__all__ = ["DaskExecutor", "run_task"]

_END = "_end"  # the last item a task puts in its queue


class _Cancelled(Exception):
    """Raised inside train() by the event callback of a cancelled job."""


def _names(job_id: str) -> tuple[str, str]:
    return f"mlaas-events-{job_id}", f"mlaas-cancel-{job_id}"


def run_task(job_id: str, spec: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """The task run on a dask worker: train, sending each event to the job's queue.

    Returns the ``done`` event, ``{"type": "cancelled"}`` or ``{"type": "error",
    "message": ...}`` (exceptions do not cross the cluster: their classes may not
    unpickle on the client).
    """
    from distributed import Event, Queue

    from ..worker import error_message, run_job

    queue_name, cancel_name = _names(job_id)
    events, cancel = Queue(queue_name), Event(cancel_name)
    checked = 0.0

    def emit(event: dict[str, Any]) -> None:
        nonlocal checked
        events.put(event)
        now = time.monotonic()
        if now - checked > 0.5 and event.get("type") != "done":
            checked = now
            if cancel.is_set():
                raise _Cancelled

    result: dict[str, Any]
    try:
        if cancel.is_set():
            raise _Cancelled
        result = run_job(spec, run_dir, emit)
    except _Cancelled:
        result = {"type": "cancelled", "message": "the job was cancelled"}
    except Exception as err:
        if not isinstance(err, MlaasError):
            events.put({"type": "log", "text": traceback.format_exc()})
        result = {"type": "error", "message": error_message(err)}
    if result["type"] != "done":
        events.put(result)
    events.put({"type": _END})
    return result


class DaskExecutor(Executor):
    """Runs jobs on a dask cluster.

    Configurable traits: ``scheduler`` (address of a dask scheduler,
    ``tcp://host:8786``; empty: a LocalCluster on first use), ``grace`` (seconds a
    cancelled task gets to stop at its next event before it is cancelled on the
    cluster; its thread then runs on until that event) and ``drain_timeout`` (seconds
    to wait for a finished task's last events).
    """

    name = "dask"

    scheduler = Unicode(
        "", config=True, help="Address of a dask scheduler; empty: a LocalCluster on first use."
    )
    grace = Float(
        10.0,
        config=True,
        help="Seconds a cancelled task gets to stop before it is cancelled on the cluster.",
    )
    drain_timeout = Float(
        10.0, config=True, help="Seconds to wait for a finished task's last events."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: Any = None
        self._cluster: Any = None
        self._lock: asyncio.Lock | None = None
        self._futures: dict[str, Any] = {}
        self._cancelled: set[str] = set()

    async def client(self) -> Any:
        """The asynchronous ``distributed.Client`` (the cluster starts on first use)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                from distributed import Client, LocalCluster

                if not self.scheduler:
                    try:
                        self._cluster = await LocalCluster(
                            n_workers=1,
                            threads_per_worker=1,
                            processes=True,
                            asynchronous=True,
                            dashboard_address=None,
                        )
                    except Exception as err:
                        raise JobFailed(f"cannot start a dask LocalCluster: {err}") from err
                    self._client = await Client(self._cluster, asynchronous=True)
                else:
                    try:
                        self._client = await Client(self.scheduler, asynchronous=True, timeout=30)
                    except (OSError, TimeoutError) as err:
                        raise JobFailed(
                            f"cannot reach the dask scheduler {self.scheduler}: {err}"
                        ) from err
        return self._client

    async def run(self, job: Job, emit: EmitEvent) -> dict[str, Any]:
        from distributed import Event, Queue
        from distributed.client import FutureCancelledError

        if not job.run_dir:
            raise JobFailed("the job has no run folder")
        client = await self.client()
        if job.id in self._cancelled:  # cancelled while the cluster was starting
            self._cancelled.discard(job.id)
            raise JobCancelled("the job was cancelled")
        queue_name, cancel_name = _names(job.id)
        events = await Queue(queue_name, client=client)
        cancel = Event(cancel_name, client=client)
        future = client.submit(
            run_task, job.id, job.spec, job.run_dir, key=f"mlaas-job-{job.id}", pure=False
        )
        self._futures[job.id] = future

        async def pump() -> None:
            while True:
                event = await events.get()
                if isinstance(event, dict):
                    if event.get("type") == _END:
                        return
                    emit(event)

        pumping = asyncio.create_task(pump())
        try:
            result: dict[str, Any] = await future
        except FutureCancelledError:
            result = {"type": "error", "message": "the dask task was cancelled on the cluster"}
        except asyncio.CancelledError:  # the manager stops: stop the task too
            with contextlib.suppress(Exception):
                await cancel.set()
                await client.cancel([future], force=True)
            raise
        except Exception as err:
            result = {"type": "error", "message": f"the dask task failed: {err!r}"}
        finally:
            self._futures.pop(job.id, None)
            with contextlib.suppress(Exception):
                drain = self.drain_timeout if future.status == "finished" else 0.5
                await asyncio.wait_for(asyncio.shield(pumping), drain)
            pumping.cancel()
            with contextlib.suppress(Exception):
                events.close()  # a task that still runs fails at its next event
                if future.status in ("finished", "error"):
                    await cancel.clear()  # frees it on the scheduler
        cancelled = job.id in self._cancelled
        self._cancelled.discard(job.id)
        if result.get("type") == "done":
            return result
        if cancelled or result.get("type") == "cancelled":
            raise JobCancelled("the job was cancelled")
        raise JobFailed(str(result.get("message", "the dask task failed")))

    async def cancel(self, job: Job) -> None:
        from distributed import Event

        self._cancelled.add(job.id)  # run() sees it if the cluster is still starting
        future = self._futures.get(job.id)
        if future is None:
            return
        await Event(_names(job.id)[1], client=self._client).set()
        deadline = time.monotonic() + self.grace
        while not future.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if not future.done():  # stuck between two events: drop the task
            await self._client.cancel([future], force=True)

    async def close(self) -> None:
        """Close the client, and the LocalCluster when this executor started it."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                await self._cluster.close()
        self._client = self._cluster = None
