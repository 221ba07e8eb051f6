"""Running work on a dask ``distributed`` cluster described by a
:class:`~mlaas_jupyter.specs.cluster.ClusterSpec`: a LocalCluster, a running scheduler,
a dask-gateway cluster or dask-jobqueue batch workers (no scheduler of our own).

One asynchronous core, :func:`open_cluster`, starts or reaches a cluster; the
synchronous :func:`cluster_client` (the statistics pass, predictions over many files)
and the asynchronous client of the ``DaskExecutor`` (where jobs themselves run) are
both built on it, so a cluster means the same thing wherever it is configured.
Every failure to reach or start one is one :class:`~mlaas_jupyter.errors.MlaasError`
naming the cluster and its address, within the spec's ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import MlaasError
from ..specs.cluster import ClusterSpec, GatewayCluster, LocalCluster
from ._cluster_kinds import (
    gateway_address,
    gateway_auth,
    jobqueue_cluster,
    jobqueue_options,
    refused,
)

__all__ = [
    "ClusterLike",
    "OpenCluster",
    "as_cluster",
    "async_client",
    "cluster_client",
    "describe",
    "gateway_address",
    "gateway_auth",
    "jobqueue_cluster",
    "jobqueue_options",
    "map_files",
    "open_cluster",
]

T = TypeVar("T")
ClusterLike = ClusterSpec | str | Mapping[str, Any] | None


def as_cluster(cluster: ClusterLike) -> ClusterSpec:
    """``cluster`` as a :class:`ClusterSpec` (``None`` and ``"local"``: a LocalCluster)."""
    if isinstance(cluster, ClusterSpec):
        return cluster
    return ClusterSpec.parse("local" if cluster is None else cluster)


def describe(spec: ClusterSpec) -> str:
    """The cluster in a message: ``the dask-gateway at https://gateway.example.org``."""
    if spec.scheduler is not None:
        return f"the dask scheduler at {spec.scheduler}"
    if spec.gateway is not None:
        return f"the dask-gateway at {gateway_address(spec.gateway) or '(no address)'}"
    if spec.jobqueue is not None:
        return f"the {spec.jobqueue.kind} batch cluster (dask-jobqueue)"
    return "a local dask cluster"


async def _started(cluster: Any) -> Any:
    return await cluster


async def _scale(cluster: Any, workers: Any) -> None:
    if isinstance(workers, int):
        done = cluster.scale(workers)
    else:
        done = cluster.adapt(minimum=workers.minimum, maximum=workers.maximum)
    if inspect.isawaitable(done):  # gateway clusters answer with a coroutine
        await done


# -- one cluster, one way --------------------------------------------------------------


@dataclass
class OpenCluster:
    """A cluster reached or started by :func:`open_cluster`: the scheduler's address
    and security for a client, and what :meth:`close` shuts down."""

    spec: ClusterSpec
    address: str
    security: Any = None
    started: Any = None  #: the cluster started here (None: a running scheduler)
    gateway: Any = None

    async def close(self) -> None:
        """Shut down a cluster started here (a gateway cluster too); a running
        scheduler is left as it is."""
        for step in (
            (self.started.shutdown if self.gateway else self.started.close)
            if self.started is not None
            else None,
            self.gateway.close if self.gateway is not None else None,
        ):
            if step is not None:
                with contextlib.suppress(Exception):
                    done = step()
                    if inspect.isawaitable(done):
                        await done
        self.started = self.gateway = None


async def open_cluster(spec: ClusterSpec) -> OpenCluster:
    """Reach or start the cluster of ``spec`` on the running event loop (workers are
    requested; batch workers may still be queued when this returns).

    Raises
    ------
    MlaasError
        Naming the cluster and its address, when it cannot be reached or started
        within ``spec.timeout`` (or refuses the credentials).
    """
    try:
        if spec.scheduler is not None:
            await _answers(spec.scheduler, spec.timeout)
            return OpenCluster(spec, spec.scheduler)
        if spec.gateway is not None:
            return await _open_gateway(spec, spec.gateway)
        if spec.jobqueue is not None:
            cls, options = jobqueue_options(spec.jobqueue)
            batch = await cls(**options, asynchronous=True)
            opened = OpenCluster(
                spec, batch.scheduler_address, getattr(batch, "security", None), batch
            )
            await _scale(batch, spec.jobqueue.workers)
            return opened
        from distributed import LocalCluster as DaskLocalCluster

        local = spec.local or LocalCluster()
        started = await DaskLocalCluster(
            n_workers=local.workers,
            threads_per_worker=local.threads,
            processes=True,
            asynchronous=True,
            dashboard_address=None,
        )
        return OpenCluster(spec, started.scheduler_address, started=started)
    except MlaasError:
        raise
    except Exception as err:
        verb = "reach" if spec.scheduler is not None else "start"
        raise MlaasError(f"cannot {verb} {describe(spec)}: {_reason(spec, err)}") from err


async def _answers(address: str, timeout: float) -> None:
    """Raise unless the scheduler at ``address`` answers within ``timeout`` seconds: a
    ``distributed.Client`` bounds the connection, not the handshake after it, and
    would wait forever on an address that accepts and never answers."""
    from distributed.comm import connect

    async def identity() -> None:
        comm = await connect(address, timeout=timeout)  # retries a refused address
        try:
            await comm.write({"op": "identity", "reply": True})
            await comm.read()
        finally:
            await comm.close()

    # a second more than connect's own bound, so that a refused address gets its
    # message; an address that accepts and never answers gets the timeout's
    await asyncio.wait_for(identity(), timeout + 1)


async def _open_gateway(spec: ClusterSpec, gateway_spec: GatewayCluster) -> OpenCluster:
    from aiohttp import ClientResponseError
    from dask_gateway import Gateway

    address = gateway_address(gateway_spec)
    if address is None:
        raise MlaasError(
            "cluster.gateway.address: none given, and dask's gateway.address is not set "
            "(DASK_GATEWAY__ADDRESS)"
        )
    auth = gateway_auth(gateway_spec)
    gateway = Gateway(
        address,
        proxy_address=gateway_spec.proxy_address,
        auth=auth,
        asynchronous=True,
    )
    opened = OpenCluster(spec, "", gateway=gateway)
    try:
        try:  # reach it and log in first: a wrong address fails fast, by name
            await asyncio.wait_for(gateway.list_clusters(), spec.timeout)
        except ClientResponseError as err:
            if err.status in (401, 403):
                raise MlaasError(
                    f"cannot use {describe(spec)}: {refused(gateway_spec, auth)}"
                ) from err
            raise
        except (OSError, TimeoutError) as err:
            raise MlaasError(f"cannot reach {describe(spec)}: {_reason(spec, err)}") from err
        opened.started = gateway.new_cluster(**gateway_spec.cluster_options)
        cluster = await asyncio.wait_for(_started(opened.started), spec.timeout)
        opened.address, opened.security = cluster.scheduler_address, cluster.security
        await _scale(cluster, gateway_spec.workers)
    except BaseException:
        await opened.close()
        raise
    return opened


def _reason(spec: ClusterSpec, err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return f"no answer within {spec.timeout:g} s"
    return str(err) or repr(err)


def _unreachable(spec: ClusterSpec, err: BaseException) -> MlaasError:
    return MlaasError(f"cannot reach {describe(spec)}: {_reason(spec, err)}")


async def async_client(opened: OpenCluster) -> Any:
    """An asynchronous ``distributed.Client`` of an opened cluster (the executor's)."""
    from distributed import Client

    try:
        return await Client(
            opened.address,
            security=opened.security,
            timeout=opened.spec.timeout,
            asynchronous=True,
            set_as_default=False,
        )
    except (OSError, TimeoutError) as err:
        raise _unreachable(opened.spec, err) from err


@contextlib.contextmanager
def cluster_client(cluster: ClusterLike) -> Iterator[Any]:
    """A synchronous ``distributed.Client`` of ``cluster`` (a :class:`ClusterSpec`, its
    YAML/JSON form, a scheduler address or ``"local"``); a cluster started here
    (local, gateway, jobqueue) is shut down on exit, a running scheduler only
    disconnected from. The hook of anything that fans work out over files.

    Raises
    ------
    MlaasError
        When the cluster cannot be reached or started, naming it and its address.
    """
    from distributed import Client
    from distributed.utils import LoopRunner, sync

    spec = as_cluster(cluster)
    # the cluster objects live on an event loop of their own: the same asynchronous
    # code as the executor's, and no synchronous gateway client to leak at exit
    runner = LoopRunner(asynchronous=False)
    runner.start()
    try:
        opened: OpenCluster = sync(runner.loop, open_cluster, spec)
        try:
            try:
                client = Client(
                    opened.address,
                    security=opened.security,
                    timeout=spec.timeout,
                    loop=runner.loop,
                    set_as_default=False,
                )
            except (OSError, TimeoutError) as err:
                raise _unreachable(spec, err) from err
            with client:
                yield client
        finally:
            sync(runner.loop, opened.close)
    finally:
        runner.stop()


def map_files(
    func: Callable[[Any, Any], T],
    spec: Any,
    files: Sequence[Any],
    cluster: ClusterLike,
) -> list[T]:
    """``[func(spec, f) for f in files]`` on ``cluster`` (a :class:`ClusterSpec`, a
    scheduler address or ``"local"``). Results come back in file order."""
    with cluster_client(cluster) as client:
        return list(client.gather(client.map(func, [spec] * len(files), files, pure=False)))
