"""`DaskExecutor`: each job as a task on a dask ``distributed`` cluster.

Where the jobs run is ``c.DaskExecutor.cluster``, a
:class:`~mlaas_jupyter.specs.cluster.ClusterSpec` (a running scheduler, a dask-gateway
cluster, dask-jobqueue batch workers or a LocalCluster; ``c.DaskExecutor.scheduler``
is the short form of an address). Its workers need ``mlaas_jupyter`` installed, the
data files and the run folders reachable (a shared filesystem). Without either, a
LocalCluster of one single-threaded worker process is started on first use. A
cluster started here is shut down by :meth:`DaskExecutor.close`.

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

from traitlets import Dict, Float, Unicode, Union, validate

from ...errors import MlaasError
from ...specs.cluster import ClusterSpec
from ...stream.distributed import OpenCluster, as_cluster, async_client, open_cluster
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

    Configurable traits: ``cluster`` (where jobs run: a cluster spec, see the module
    docstring), ``scheduler`` (short form: the address of a dask scheduler,
    ``tcp://host:8786``; used when ``cluster`` is not set), ``grace`` (seconds a
    cancelled task gets to stop at its next event before it is cancelled on the
    cluster; its thread then runs on until that event) and ``drain_timeout`` (seconds
    to wait for a finished task's last events).
    """

    name = "dask"

    cluster = Union(
        [Unicode(), Dict()],
        default_value=None,
        allow_none=True,
        config=True,
        help="Where jobs run: 'local', a scheduler address, or {local|scheduler|gateway|"
        "jobqueue: ...} (see docs/clusters.md); default: the scheduler trait.",
    )
    scheduler = Unicode(
        "",
        config=True,
        help="Short form of cluster: the address of a dask scheduler; empty (and no "
        "cluster): a LocalCluster of one worker on first use.",
    )
    grace = Float(
        10.0,
        config=True,
        help="Seconds a cancelled task gets to stop before it is cancelled on the cluster.",
    )
    drain_timeout = Float(
        10.0, config=True, help="Seconds to wait for a finished task's last events."
    )

    @validate("cluster")
    def _check_cluster(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None:
            ClusterSpec.parse(value, "DaskExecutor.cluster")  # a SpecError naming the field
        return value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: Any = None
        self._cluster: OpenCluster | None = None
        self._lock: asyncio.Lock | None = None
        self._futures: dict[str, Any] = {}
        self._cancelled: set[str] = set()

    def cluster_spec(self) -> ClusterSpec:
        """The cluster jobs run on: ``cluster``, else ``scheduler``, else a LocalCluster
        of one single-threaded worker process."""
        if self.cluster is not None:
            return as_cluster(self.cluster)
        if self.scheduler:
            return as_cluster(self.scheduler)
        return ClusterSpec.parse({"local": {"workers": 1, "threads": 1}})

    async def client(self) -> Any:
        """The asynchronous ``distributed.Client`` (the cluster starts on first use)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                try:
                    opened = await open_cluster(self.cluster_spec())
                    try:
                        self._client = await async_client(opened)
                    except BaseException:
                        await opened.close()
                        raise
                except MlaasError as err:
                    raise JobFailed(str(err)) from err
                self._cluster = opened
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
        """Close the client, and the cluster when this executor started it."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
        if self._cluster is not None:
            await self._cluster.close()  # it suppresses what fails
        self._client = self._cluster = None
