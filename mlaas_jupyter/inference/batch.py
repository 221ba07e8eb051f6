"""Batch prediction as a job: score ROOT files with a bundle into friend trees.

A prediction job's spec is ``{"predict": {...}}`` (a
:class:`~mlaas_jupyter.specs.prediction.PredictSpec`); the job
system runs it like a training job (local subprocess, kernel or dask: they all call
:func:`~mlaas_jupyter.jobs.worker.run_job`, which hands it to :func:`run_prediction`)
and records it with kind ``predict``.

:func:`run_prediction`

1. resolves the files (paths, folders, globs), loads the bundle and works out every
   output path (refusing two inputs that would write the same friend tree);
2. opens each file once to check it has the model's inputs and to count its entries,
   before anything is written (a missing branch fails the job at once);
3. writes each friend tree (in its input's format: an RNTuple for an RNTuple, else a
   TTree) under a hidden temporary name beside its final one, with a
   ``progress`` event (entries done and total, events/s) at most twice a second, which
   is also where a cancellation stops the job;
4. renames all of them into place only when every one is complete, then emits
   ``done`` with the output paths (they become the job's ``outputs``).

So a failed or cancelled job leaves no friend tree under a final name (a job killed
outright may leave a hidden ``.<name>.*.partial`` file, never a complete-looking one).

With ``cluster:`` the files are scored there instead, one task per file
(:mod:`mlaas_jupyter.inference._batch_cluster`): each friend tree is renamed into place
as soon as it is complete, a ``progress`` event follows each file, and a failed file
is recorded (path and message) while the others go on. The job then fails with
:class:`FilesFailed`, naming the failed files; the friend trees of the others stay.

Either way the ``done`` event lists every file's ``input``, ``output`` and
``entries`` under ``results``; with a cluster the job's last ``progress`` event lists
them too (``error`` for a failed file), so a failed job's record keeps them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..specs.prediction import PredictSpec
from ._batch_cluster import FilesFailed, run_on_cluster

__all__ = ["FilesFailed", "run_prediction"]

#: seconds between two progress events of a prediction job
PROGRESS_EVERY = 0.5


class _Progress:
    """``progress`` events: entries done of the total, at most every PROGRESS_EVERY s."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], total: int, files: int) -> None:
        self.emit, self.total, self.files = emit, total, files
        self.started = self.last = time.perf_counter()
        self.done = self.files_done = 0
        self.file = ""

    def chunk(self, entries: int) -> None:
        self.done += entries
        if time.perf_counter() - self.last >= PROGRESS_EVERY:
            self.report()

    def report(self) -> None:
        now = time.perf_counter()
        self.last = now
        seconds = now - self.started
        self.emit(
            {
                "type": "progress",
                "file": self.file,
                "files_done": self.files_done,
                "files": self.files,
                "events": self.done,
                "events_total": self.total,
                "fraction": round(self.done / self.total, 4) if self.total else 1.0,
                "events_per_s": round(self.done / seconds, 1) if seconds > 0 else 0.0,
            }
        )


def run_prediction(
    spec: Mapping[str, Any], emit: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Score every file of ``spec`` (a ``{"predict": ...}`` mapping) into friend trees;
    returns the ``done`` event (``outputs`` and ``metrics``). See the module docstring."""
    from ..stream._friends import dataset_files
    from .bundle import load_bundle
    from .friend import check_output, score_branches, write_partial_friend_tree

    task = PredictSpec.from_dict(spec["predict"])
    # friend trees of earlier scores that a glob matches are not scored again
    files, notes = dataset_files(list(task.files), "the prediction")
    bundle = load_bundle(task.bundle)  # a broken bundle fails the job once, not per file
    outputs = task.outputs_for(files)
    if task.cluster is not None:
        for source_path, out in zip(files, outputs, strict=True):
            check_output(out, source_path)
        # no opening of every file here: on a cluster each task checks its own file
        emit(_start(task, bundle.name, len(files), None, score_branches(bundle, task.prefix)))
        _notes(notes, emit)
        return run_on_cluster(task, files, outputs, emit)
    counts = []
    for source_path, out in zip(files, outputs, strict=True):
        check_output(out, source_path)
        source = bundle.open_source(source_path, task.tree)  # DataError: missing inputs
        try:
            counts.append(source.entries)
        finally:
            source.close()
    total = sum(counts)
    emit(_start(task, bundle.name, len(files), total, score_branches(bundle, task.prefix)))
    _notes(notes, emit)
    progress = _Progress(emit, total, len(files))
    partials: list[Path] = []
    renamed: list[Path] = []
    try:
        for source_path, out in zip(files, outputs, strict=True):
            progress.file = source_path
            partial, _ = write_partial_friend_tree(
                bundle, source_path, out, task.tree, task.prefix, task.step_size, progress.chunk
            )
            partials.append(partial)
            progress.files_done += 1
            progress.report()  # the last place a cancellation stops the job
        for partial, out in zip(partials, outputs, strict=True):
            os.replace(partial, out)
            renamed.append(out)
    except BaseException:
        for path in partials + renamed:  # interrupted while renaming: all or nothing
            path.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - progress.started
    metrics = {
        "entries": progress.done,
        "files": len(files),
        "seconds": round(seconds, 3),
        "events_per_s": round(progress.done / seconds, 1) if seconds > 0 else 0.0,
    }
    results = [
        {"input": source_path, "output": str(out), "entries": entries}
        for source_path, out, entries in zip(files, outputs, counts, strict=True)
    ]
    outs = [str(out) for out in outputs]
    event = {"type": "done", "outputs": outs, "metrics": metrics, "results": results}
    emit(event)
    return event


def _start(
    task: PredictSpec, name: str, files: int, total: int | None, branches: list[str]
) -> dict[str, Any]:
    """The ``start`` event (``events_total`` is None on a cluster: not counted ahead)."""
    return {
        "type": "start",
        "bundle": task.bundle,
        "model": task.model or name,
        "version": task.version,
        "files": files,
        "events_total": total,
        "branches": branches,
        "cluster": None if task.cluster is None else task.cluster.kind,
    }


def _notes(notes: list[str], emit: Callable[[dict[str, Any]], None]) -> None:
    for note in notes:
        emit({"type": "note", "message": note})
