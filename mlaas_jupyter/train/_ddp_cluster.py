"""Data-parallel ranks on a dask cluster: one long task per rank, each on its own worker.

The job's process asks the cluster (:func:`~mlaas_jupyter.stream.distributed.cluster_client`)
for ``training.workers`` workers (``wait_for_workers``, with a timeout and a clear
error), then submits one :func:`rank_task` pinned to each. A task starts its rank as a
process on its worker (:class:`._ddp_process.RankProcess`: a rank has a process, and
so a torch process group, of its own) and relays it:

* rank 0's rendezvous address goes, once for each other rank, to the
  ``distributed.Queue`` ``mlaas-ddp-store-<run>``, where the other tasks take it;
* rank 0's events go to the ``distributed.Queue`` ``mlaas-ddp-events-<run>``, which
  the job's process drains into its event callback;
* the task returns the rank's result or error as a plain dict.

Stopping: the job's process sets the ``distributed.Event`` ``mlaas-ddp-stop-<run>``
(a failed rank, a cancelled job) and cancels the futures; each task checks the event,
and whether its own future is still wanted, twice a second and then kills its rank.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..errors import TrainingError
from ..specs.cluster import ClusterSpec
from ..stream.distributed import cluster_client
from ._ddp_process import Outcome, RankProcess, rank_environment
from ._epochs import EventSink

__all__ = ["rank_task", "run_on_cluster"]


def _names(run: str) -> tuple[str, str, str]:
    return f"mlaas-ddp-store-{run}", f"mlaas-ddp-events-{run}", f"mlaas-ddp-stop-{run}"


def _host(address: str) -> str:
    return urlsplit(address).hostname or "127.0.0.1"


def _abandoned() -> bool:
    """Whether this task's future was released (the job's client went away)."""
    with contextlib.suppress(Exception):
        from distributed import get_worker
        from distributed.worker import thread_state

        task = get_worker().state.tasks.get(thread_state.key)
        return task is None or task.state in ("cancelled", "released", "forgotten")
    return False


def rank_task(run: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run one rank on this dask worker; returns ``{"type": "result" | "error" | "died" |
    "cancelled", ...}`` (no exception crosses the cluster)."""
    from distributed import Event, Queue, get_worker

    store_name, queue_name, stop_name = _names(run)
    store, events, stop = Queue(store_name), Queue(queue_name), Event(stop_name)
    host = _host(get_worker().address)
    local = host in ("127.0.0.1", "localhost", "::1")
    env = rank_environment(arguments["threads"], local=local)
    rank = RankProcess({**arguments, "store_host": host}, env)
    told = arguments["rank"] == 0
    try:
        while True:
            if stop.is_set() or _abandoned():
                return {"type": "cancelled"}
            if not told and store.qsize():  # no get with a timeout: the scheduler logs those
                rank.send(("store", *store.get()))
                told = True
            if not rank.conn.poll(0.3):
                continue
            message = rank.receive()
            if message is None:
                return {"type": "died", "message": rank.death()}
            if message[0] == "store":
                for _ in range(arguments["world"] - 1):
                    store.put([host, message[1]])
            elif message[0] == "event":
                events.put(message[1])
            else:
                return {"type": message[0], "message": message}
    finally:
        rank.close()


def _workers(client: Any, world: int, timeout: float) -> list[str]:
    """The addresses of ``world`` workers, once the cluster has them."""
    try:
        client.wait_for_workers(world, timeout=timeout)
    except TimeoutError:
        have = len(client.scheduler_info(n_workers=-1)["workers"])
        raise TrainingError(
            f"training.workers is {world}, but the cluster has {have} worker(s) after "
            f"{timeout:g} s (training.ddp_timeout): give it more workers, or fewer "
            "training.workers"
        ) from None
    return sorted(client.scheduler_info(n_workers=-1)["workers"])[:world]


def run_on_cluster(
    cluster: ClusterSpec,
    base: dict[str, Any],
    emit: EventSink,
    loader: Callable[[int], str],
) -> dict[str, Any]:
    """Run the ranks on ``cluster``, one per worker; rank 0's result.

    ``loader(n)`` is the loader of a rank that shares its machine with ``n`` ranks.
    """
    from distributed import Event, Queue

    world, timeout = base["world"], base["timeout"]
    with cluster_client(cluster) as client:
        addresses = _workers(client, world, timeout)
        hosts = [_host(a) for a in addresses]
        run = uuid.uuid4().hex
        store_name, queue_name, stop_name = _names(run)
        events, stop = Queue(queue_name, client=client), Event(stop_name, client=client)
        futures = [
            client.submit(
                rank_task,
                run,
                {
                    **base,
                    "rank": rank,
                    "local_rank": hosts[:rank].count(hosts[rank]),
                    "loader": loader(hosts.count(hosts[rank])),
                },
                workers=[addresses[rank]],
                allow_other_workers=False,
                pure=False,
                retries=0,
                key=f"mlaas-ddp-rank-{rank}-{run}",
            )
            for rank in range(world)
        ]
        outcome = Outcome(world)
        try:
            while not outcome.settled():
                time.sleep(0.25)
                for event in events.get(batch=True):
                    emit(event)
                for rank, future in enumerate(futures):
                    if future.done() and rank not in outcome.ended:
                        _record(outcome, rank, future)
            for event in events.get(batch=True):  # what rank 0 sent before its result
                emit(event)
            return outcome.result()
        finally:
            stop.set()
            client.cancel(futures)
            for queue in (events, Queue(store_name, client=client)):
                with contextlib.suppress(Exception):
                    queue.close()


def _record(outcome: Outcome, rank: int, future: Any) -> None:
    if future.status == "cancelled":
        outcome.died(rank, "its task was cancelled")
        return
    if future.status != "finished":
        outcome.died(rank, f"its task failed: {future.exception()!r}")
        return
    reply = future.result()
    if reply["type"] in ("result", "error"):
        outcome.end(rank, reply["message"])
    elif reply["type"] == "died":
        outcome.died(rank, reply["message"])
    else:
        outcome.died(rank, "it was stopped")
