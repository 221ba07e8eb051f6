"""Data-parallel training: ``training: {workers: N}`` trains a torch model on N ranks.

The job's process (where :func:`~.runner.train` runs) computes the statistics once,
then starts N ranks: N local processes, or, when the spec has a ``cluster:``, one
process on each of N dask workers (see :mod:`._ddp_cluster`). The ranks train with
``torch.distributed`` ``DistributedDataParallel`` (gloo on the CPU, NCCL when every
rank has a GPU of its own), each on its shard of the files; rank 0 sends the job's
events and writes the checkpoints, plots and the bundle, once, into the run folder:
the job gets the same :class:`~.runner.TrainResult` as from one process. How the
ranks share the work is in :mod:`._ddp_fit`.

Failures: a rank that raises sends its error; one that dies closes its socket; either
way the job fails with that rank's message, after the others have had
:attr:`Outcome.GRACE` seconds to report (the cause is told apart from its
consequences), and the other ranks are stopped. A rank waits at most
``training.ddp_timeout`` seconds (default 300) for the others in a collective and at the
rendezvous: no job hangs. Cancelling the job (SIGINT, or an exception in the event
callback) stops every rank; ranks also exit when the job's process goes away.

Ranks on a cluster need the run folder on a filesystem the job's process shares
(as the dask executor does).
"""

from __future__ import annotations

import multiprocessing.connection
import os
from pathlib import Path
from typing import Any

from ..errors import SpecError, TrainingError
from ..specs.training import TrainSpec
from ..stream.stats import DatasetStats
from ._ddp_process import Outcome, RankProcess, rank_environment
from ._epochs import EventSink

__all__ = ["check_data_parallel", "train_data_parallel"]


def check_data_parallel(spec: TrainSpec) -> None:
    """Raise a :class:`SpecError` that says what to do instead when ``spec`` asks for
    data-parallel training (``training.workers > 1``) of a model that cannot have it."""
    workers = spec.training.workers
    backend = spec.model.resolved_backend
    if backend == "keras":
        raise SpecError(
            "training.workers",
            f"data-parallel training (workers: {workers}) is for PyTorch models; this is a "
            "Keras model: train it with workers: 1, or write the model with torch.nn",
        )
    if backend == "sklearn":
        raise SpecError(
            "training.workers",
            f"the BDT (scikit-learn) trains in one process: set workers: 1, or train a "
            f"PyTorch model (model: {{name: mlp}} or a torch model file) on {workers} workers",
        )
    if backend != "torch":
        raise SpecError(
            "training.workers",
            f"data-parallel training is for PyTorch models, not the {backend} backend: "
            "set workers: 1",
        )
    cluster = spec.cluster
    if cluster is not None and cluster.local is not None and cluster.local.workers < workers:
        raise SpecError(
            "cluster.local.workers",
            f"training.workers is {workers}: the local cluster needs at least as many "
            f"workers, it has {cluster.local.workers}",
        )
    if spec.model.instance is not None:
        _pickled(spec)  # a model object that cannot reach the ranks fails here, early


def _pickled(spec: TrainSpec) -> bytes:
    """``spec`` for the ranks; a model object from a notebook travels by value."""
    from distributed.protocol import pickle as by_value  # cloudpickle where pickle fails

    try:
        return bytes(by_value.dumps(spec))
    except Exception as err:
        raise TrainingError(
            f"the model object cannot be sent to the training processes ({err}); with "
            "training.workers > 1 use a model file (model.file) or a built-in model"
        ) from err


def _loader(spec: TrainSpec, ranks_here: int) -> str:
    """A rank reads in a process of its own only when its machine has a core to spare
    for it: with as many ranks as cores, a loader each would oversubscribe it."""
    if spec.training.loader != "auto":
        return spec.training.loader
    return "process" if (os.cpu_count() or 1) >= 2 * ranks_here else "thread"


def rank_arguments(
    spec: TrainSpec, stats: DatasetStats, folder: Path, name: str, timeout: float
) -> dict[str, Any]:
    """What every rank gets (each adds its ``rank``, ``local_rank``, ``loader``...)."""
    return {
        "spec": _pickled(spec),
        "stats": stats,
        "world": spec.training.workers,
        "run_dir": str(folder),
        "name": name,
        "timeout": timeout,
        "threads": spec.training.threads or 1,
        "spec_device": spec.training.device,
    }


def train_data_parallel(
    spec: TrainSpec, stats: DatasetStats, folder: Path, name: str, emit: EventSink
) -> dict[str, Any]:
    """Train ``spec`` on ``training.workers`` ranks, once :func:`~.runner.train` has
    computed the statistics and sent the ``start`` and ``stats`` events; returns what
    its :class:`~.runner.TrainResult` holds (``bundle``, ``metrics``, ``history``,
    ``plots``)."""
    check_data_parallel(spec)
    base = rank_arguments(spec, stats, folder, name, spec.training.ddp_timeout)
    world = base["world"]
    if spec.cluster is None:
        where = "local processes"
    else:
        from ..stream.distributed import describe

        where = f"workers of {describe(spec.cluster)}"
    emit({"type": "note", "message": f"data-parallel training on {world} {where}"})
    if spec.cluster is None:
        base["loader"] = _loader(spec, world)
        result = _run_local(base, emit)
    else:
        from ._ddp_cluster import run_on_cluster

        result = run_on_cluster(spec.cluster, base, emit, lambda n: _loader(spec, n))
    return result


def _run_local(base: dict[str, Any], emit: EventSink) -> dict[str, Any]:
    """Run the ranks as child processes of this one; rank 0's result."""
    world = base["world"]
    env = rank_environment(base["threads"], local=True)
    ranks: list[RankProcess] = []
    try:
        for rank in range(world):
            arguments = {**base, "rank": rank, "local_rank": rank, "store_host": "127.0.0.1"}
            ranks.append(RankProcess(arguments, env))
        outcome = Outcome(world)
        while not outcome.settled():
            waiting = {r.conn: r for r in ranks if r.open and r.rank not in outcome.ended}
            for conn in multiprocessing.connection.wait(list(waiting), timeout=1.0):
                rank_process = waiting[conn]  # type: ignore[index]
                message = rank_process.receive()
                if message is None:
                    if rank_process.rank not in outcome.ended:
                        outcome.died(rank_process.rank, rank_process.death())
                elif message[0] == "store":  # rank 0's rendezvous: tell the others
                    for other in ranks[1:]:
                        other.send(("store", "127.0.0.1", message[1]))
                elif message[0] == "event":
                    emit(message[1])
                else:
                    outcome.end(rank_process.rank, message)
        return outcome.result()
    finally:
        for rank_process in ranks:  # stop all at once, then wait for each
            rank_process.send(("stop",))
        for rank_process in ranks:
            rank_process.close()
