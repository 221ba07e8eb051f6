"""Running per-file work on a dask ``distributed`` cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["map_files"]

T = TypeVar("T")


def map_files(
    func: Callable[[Any, Any], T], spec: Any, files: Sequence[Any], scheduler: str
) -> list[T]:
    """``[func(spec, f) for f in files]`` on the cluster at ``scheduler``.

    ``scheduler`` is a scheduler address (``tcp://host:8786``) or ``"local"`` for a
    temporary LocalCluster on this machine. Results come back in file order.
    """
    from distributed import Client, LocalCluster

    if scheduler == "local":
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            return list(client.gather(client.map(func, [spec] * len(files), files, pure=False)))
    with Client(scheduler) as client:
        return list(client.gather(client.map(func, [spec] * len(files), files, pure=False)))
