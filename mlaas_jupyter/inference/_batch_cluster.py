"""A prediction job's files scored on a dask cluster, one task per input file.

:func:`run_on_cluster` is the ``cluster:`` branch of
:func:`~mlaas_jupyter.inference.batch.run_prediction`. Each task (:func:`score_file`,
run on a worker) loads the bundle once per worker process and writes one friend tree
under a hidden temporary name, renamed into place only when complete
(:func:`~mlaas_jupyter.inference.friend.write_friend_tree`). Results come back as the
tasks finish: one ``progress`` event per file, and a file that fails is recorded with
its path and message while the others go on. Unlike the in-process path (all or
nothing), the friend trees of the files that succeeded stay when others fail: a job
over thousands of files should not redo them all for one bad file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MlaasError

if TYPE_CHECKING:
    from ..specs.prediction import PredictSpec
    from .bundle import ModelBundle

__all__ = ["FilesFailed", "run_on_cluster", "score_file"]

#: failed files named one by one in the job's error message (the rest are counted)
NAMED_FAILURES = 5


class FilesFailed(MlaasError):
    """Some files of a prediction job could not be scored; ``results`` lists every file
    (``input``, ``output``, and ``entries`` or ``error``)."""

    def __init__(self, message: str, results: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.results = results


@functools.lru_cache(maxsize=4)
def _cached_bundle(path: str, stamp: int) -> ModelBundle:
    from .bundle import load_bundle

    # one ONNX Runtime thread per task: the worker runs one task per core it was given,
    # so more threads per task would only oversubscribe the cores
    return load_bundle(path, threads=1)


def _bundle(path: str) -> ModelBundle:
    """The bundle of ``path``, loaded once per worker process (reloaded only when its
    manifest changes: a bundle folder rewritten in place between two jobs)."""
    try:
        stamp = os.stat(Path(path) / "manifest.json").st_mtime_ns
    except OSError:
        stamp = 0  # load_bundle names what is missing
    return _cached_bundle(path, stamp)


def score_file(
    bundle: str, source: str, out: str, tree: str | None, prefix: str, step_size: int | str
) -> int:
    """Score ``source`` into the friend tree ``out`` (on a worker); the entries written."""
    from .friend import write_friend_tree

    return write_friend_tree(_bundle(bundle), source, out, tree, prefix, step_size)


def run_on_cluster(
    task: PredictSpec,
    files: Sequence[str],
    outputs: Sequence[Path],
    emit: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Score ``files`` into ``outputs`` on ``task.cluster``; the ``done`` event.

    Raises
    ------
    FilesFailed
        When some files failed, after every other file is scored; the message names
        the failed files and counts those scored.
    """
    from distributed import as_completed

    from ..stream.distributed import cluster_client

    if task.cluster is not None and task.cluster.local is not None:
        _check_can_start_processes()
    started = time.perf_counter()
    results: list[dict[str, Any]] = [
        {"input": source, "output": str(out)} for source, out in zip(files, outputs, strict=True)
    ]
    entries = failed = finished = 0
    with cluster_client(task.cluster) as client:
        # a readable task name per file for the dashboard (unique: outputs never collide)
        keys = [f"mlaas-predict-{out.name}-{uuid.uuid4().hex[:8]}" for out in outputs]
        futures = client.map(
            score_file,
            [task.bundle] * len(files),
            list(files),
            [str(out) for out in outputs],
            tree=task.tree,
            prefix=task.prefix,
            step_size=task.step_size,
            key=keys,
            pure=False,
        )
        index = {future.key: number for number, future in enumerate(futures)}
        try:
            for future in as_completed(futures, loop=client.loop):  # not a default client
                result = results[index[future.key]]
                error = _error_of(future)
                if error is None:
                    result["entries"] = int(future.result())
                    entries += result["entries"]
                else:
                    result["error"] = error
                    failed += 1
                finished += 1
                emit(_progress(result, finished, failed, len(files), entries, started))
        except BaseException:  # a cancellation stops the tasks not yet finished
            with contextlib.suppress(Exception):
                client.cancel(futures)
            raise
    seconds = time.perf_counter() - started
    summary = _progress(None, finished, failed, len(files), entries, started)
    emit({**summary, "results": results})  # the job's last progress: every file's result
    if failed:
        raise FilesFailed(_failure_message(results, failed), results)
    metrics = {
        "entries": entries,
        "files": len(files),
        "seconds": round(seconds, 3),
        "events_per_s": round(entries / seconds, 1) if seconds > 0 else 0.0,
    }
    outs = [result["output"] for result in results]
    event = {"type": "done", "outputs": outs, "metrics": metrics, "results": results}
    emit(event)
    return event


def _check_can_start_processes() -> None:
    """A LocalCluster's workers are processes, which a daemonic process (a job running
    as a task of a dask worker: the dask executor) may not start; say so, by name."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        raise MlaasError(
            "predict.cluster: local: this job runs inside a dask worker (the dask "
            "executor), which cannot start a LocalCluster's worker processes; give the "
            "address of a scheduler (cluster: tcp://host:8786) or use the local executor"
        )


def _error_of(future: Any) -> str | None:
    """The message of a failed task (None when it succeeded): an MlaasError's own
    message, else the exception's type and message (a worker's crash, KilledWorker)."""
    if future.status == "finished":
        return None
    if future.status == "cancelled":
        return "the task was cancelled on the cluster"
    err = future.exception()
    if isinstance(err, MlaasError):
        return str(err)
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _progress(
    result: dict[str, Any] | None,
    done: int,
    failed: int,
    files: int,
    entries: int,
    started: float,
) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    event: dict[str, Any] = {
        "type": "progress",
        "files_done": done,
        "files_failed": failed,
        "files": files,
        "fraction": round(done / files, 4) if files else 1.0,
        "events": entries,
        "events_per_s": round(entries / seconds, 1) if seconds > 0 else 0.0,
    }
    if result is not None:
        event["file"] = result["input"]
        event["result"] = dict(result)
    return event


def _failure_message(results: list[dict[str, Any]], failed: int) -> str:
    errors = [f"{r['input']} ({_without(r['error'], r['input'])})" for r in results if "error" in r]
    named = "; ".join(errors[:NAMED_FAILURES])
    more = f"; and {failed - NAMED_FAILURES} more" if failed > NAMED_FAILURES else ""
    scored = len(results) - failed
    return (
        f"{failed} of {len(results)} files failed: {named}{more}. "
        f"{scored} scored; their friend trees are in place"
    )


def _without(message: str, path: str) -> str:
    """``message`` without a leading ``<path>: `` (the message names the file once)."""
    return message.removeprefix(f"{path}: ")
