"""Comparing finished training jobs: ``GET compare`` and ``GET compare/plot``.

A job is compared from its run folder (see :mod:`mlaas_jupyter.train.comparison`);
only a succeeded training job has a complete one, so any other is refused with a
409 naming the job and its state. The client uses :func:`check_comparable` too when
it reads one job's run through its artefacts.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

from ..errors import Conflict, SourceError
from ..jobs.manager import JobManager
from ..train.comparison import compare_runs, load_run
from ..train.comparison_plots import comparison_image

__all__ = ["check_comparable", "compare_jobs", "comparison_png"]


def check_comparable(job: Mapping[str, Any]) -> None:
    """Refuse (409) a job that is not a succeeded training job with a run folder."""
    job_id, state = job["id"], job["state"]
    if job.get("kind", "train") != "train":
        raise Conflict(f"job {job_id} is a prediction job: only training jobs can be compared")
    if state != "succeeded":
        raise Conflict(f"job {job_id} is {state}: only succeeded training jobs can be compared")
    if not job.get("run_dir"):
        raise Conflict(f"job {job_id} has no run folder")


def compare_jobs(manager: JobManager, job_ids: Sequence[str]) -> dict[str, Any]:
    """The comparison of the jobs ``job_ids`` in this order (blocking: it reads their
    run folders). NotFound for an unknown id, Conflict for a job that cannot be
    compared (not succeeded, or its run folder gone)."""
    jobs = [manager.get(job_id) for job_id in job_ids]  # every id known before any reading
    runs = []
    for job in jobs:
        record = {"id": job.id, "state": job.state.value, "kind": job.kind, "run_dir": job.run_dir}
        check_comparable(record)
        assert job.run_dir is not None
        if not os.path.isdir(job.run_dir):
            raise Conflict(f"job {job.id} has lost its run folder {job.run_dir}")
        try:
            runs.append(load_run(job.run_dir, run_id=job.id, name=job.name))
        except SourceError as err:
            raise Conflict(f"job {job.id}: {err}") from None
    return compare_runs(runs)


def comparison_png(comparison: Mapping[str, Any]) -> tuple[IO[bytes], str, str]:
    """The comparison figure as a PNG download: stream, file name, media type."""
    ids = "-".join(str(run["id"]) for run in comparison["runs"])
    name = f"compare-{ids}.png" if len(ids) <= 80 else "compare.png"
    return io.BytesIO(comparison_image(comparison, "png")), name, "image/png"
