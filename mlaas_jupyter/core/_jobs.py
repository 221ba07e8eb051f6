"""`JobsService`: ``mlaas.jobs``, the jobs of the core service.

Every method returns JSON-ready data (what the REST API replies and the in-process
client hands back) and raises :class:`~mlaas_jupyter.errors.MlaasError` subclasses
that carry their HTTP status. Blocking work (resolving globs, reading run folders)
runs in a worker thread so that a server's event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import IO, Any

from ..errors import SourceError, SpecError
from ..jobs.manager import JobManager
from ..jobs.models import Job
from ..jobs.store import JobStore
from ..specs.prediction import PredictSpec, is_prediction
from ..specs.requests import CompareQuery, EventsQuery, JobRequest, ListJobsQuery
from ..specs.training import TrainSpec
from ..stream._folds import fold_dataset
from ..stream._friends import dataset_files
from ..stream.sources import check_whole_files, resolve_files
from ..stream.stats import plan_for
from ..train.distributed import check_data_parallel
from . import browse
from ._compare import compare_jobs, comparison_png
from ._report import job_report, job_report_page
from .paths import DataRoots

__all__ = ["JobsService", "admit", "job_json"]


def job_json(job: Job) -> dict[str, Any]:
    """A job as JSON-ready data (``GET jobs`` is hot: no deep copy)."""
    data = dict(vars(job))
    data["state"] = job.state.value
    return data


class JobsService:
    """Submit, list, follow, cancel, resume, resubmit and delete jobs."""

    def __init__(
        self,
        roots: DataRoots,
        manager: JobManager,
        store: JobStore,
        runs_dir: str,
        plot_style: str | None = None,
        cluster: dict[str, Any] | None = None,
    ) -> None:
        self.roots, self._manager, self.store, self.runs_dir = roots, manager, store, runs_dir
        self.plot_style, self.cluster = plot_style, cluster

    async def submit(self, request: JobRequest) -> dict[str, Any]:
        """Check the request's spec (paths inside the data roots, files that exist)
        and queue a training job; returns the job."""
        spec = await asyncio.to_thread(self._spec_of, request)
        await asyncio.to_thread(admit, self.roots, spec)
        job = await self._manager.submit(
            spec, executor=request.executor, kernel_name=request.kernel_name, name=request.name
        )
        return job_json(job)

    def _spec_of(self, request: JobRequest) -> TrainSpec:
        if request.spec_path is None:
            spec = TrainSpec.from_dict(request.spec or {}, base_dir=self.roots.primary)
        else:
            path = self.roots.resolve(request.spec_path)
            if not os.path.isfile(path):
                raise SpecError("spec_path", f"no such file: {request.spec_path!r}")
            spec = TrainSpec.from_file(path)
        if spec.training.style is None and self.plot_style is not None:
            # the server's setting fills in what the spec leaves open
            training = spec.training.model_copy(update={"style": self.plot_style})
            spec = spec.model_copy(update={"training": training})
        if spec.cluster is None and self.cluster is not None:  # the server's, likewise
            spec = spec.model_copy(update={"cluster": self.cluster})
        return spec

    async def list(self, query: ListJobsQuery) -> dict[str, Any]:
        """The jobs, newest first, filtered by state, name and kind."""
        jobs = self._manager.list(
            state=query.states, limit=query.limit, name=query.name, kind=query.kind
        )
        return {"jobs": [job_json(job) for job in jobs]}

    async def get(self, job_id: str) -> dict[str, Any]:
        """One job: its state, progress, metrics, bundle, error."""
        return job_json(self._manager.get(job_id))

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (409 when it has finished); returns it."""
        return job_json(await self._manager.cancel(job_id))

    async def resubmit(self, job_id: str) -> dict[str, Any]:
        """A new job continuing a lost, failed or cancelled one from its checkpoint
        (its spec is checked again: the roots or the files may have changed)."""
        await asyncio.to_thread(admit, self.roots, self._recorded_spec(job_id))
        return job_json(await self._manager.resubmit(job_id))

    async def resume(self, job_id: str) -> dict[str, Any]:
        """Run a lost job again, the same job (its id, events and history kept): a
        training continues from its last checkpoint in its run folder, a prediction
        scores its files again. 409 naming the state for a job that is not lost."""
        self._manager.resumable(job_id)  # 409 first: the state says more than the files
        await asyncio.to_thread(admit, self.roots, self._recorded_spec(job_id))
        return job_json(await self._manager.resume(job_id))

    def _recorded_spec(self, job_id: str) -> TrainSpec | PredictSpec:
        record = self._manager.get(job_id).spec
        if is_prediction(record):
            return PredictSpec.from_dict(record["predict"])
        return TrainSpec.from_dict(record)

    async def delete(self, job_id: str) -> dict[str, Any]:
        """Remove a finished job, its events, its logs and its run folder (unless
        another job continues in that folder); 409 while it is queued or running."""
        job = self.store.delete(job_id)
        removed = False
        if job.run_dir and not any(j.run_dir == job.run_dir for j in self._manager.list()):
            removed = await asyncio.to_thread(_remove_run_dir, job.run_dir, self.runs_dir)
        return {"id": job.id, "deleted": True, "run_dir_removed": removed}

    async def events(self, job_id: str, query: EventsQuery) -> dict[str, Any]:
        """The events after number ``since`` (at most ``limit``), in order."""
        events = self._manager.events(job_id, query.since, query.limit)
        state = self._manager.get(job_id).state.value
        return {
            "job_id": job_id,
            "state": state,
            "next": events[-1].seq if events else query.since,
            "events": [event.to_dict() for event in events],
        }

    async def logs(self, job_id: str) -> dict[str, Any]:
        """What the job printed (stdout and stderr, the newest part when long)."""
        text = self._manager.logs(job_id)
        return {"job_id": job_id, "state": self._manager.get(job_id).state.value, "text": text}

    async def artefacts(self, job_id: str) -> dict[str, Any]:
        """The files of the job's run folder (plots, curves, ``bundle.zip``)."""
        job = self._manager.get(job_id)
        found = await asyncio.to_thread(browse.list_artefacts, job.run_dir)
        return {"job_id": job_id, "artefacts": found}

    async def artefact(self, job_id: str, path: str) -> tuple[IO[bytes], str, str]:
        """An artefact opened for reading, its download name and its media type (the
        caller closes it); ``bundle.zip`` is the bundle folder zipped on the fly."""
        job = self._manager.get(job_id)
        return await asyncio.to_thread(browse.open_artefact, job, path)

    async def report(self, job_id: str) -> dict[str, Any]:
        """The training report of a succeeded job (its run folder's ``report.json``):
        404 for an unknown job or a run without a report, 409 for a job that has not
        succeeded."""
        return await asyncio.to_thread(job_report, self._manager.get(job_id))

    async def report_page(self, job_id: str) -> tuple[IO[bytes], str, str]:
        """The report of :meth:`report` as a self-contained HTML page (plots inlined)."""
        return await asyncio.to_thread(job_report_page, self._manager.get(job_id))

    async def compare(self, query: CompareQuery) -> dict[str, Any]:
        """Succeeded training jobs side by side: their test metrics, curves and what
        differs between their specs (409 for a job that has not succeeded)."""
        return await asyncio.to_thread(compare_jobs, self._manager, query.ids)

    async def compare_plot(self, query: CompareQuery) -> tuple[IO[bytes], str, str]:
        """The figure of :meth:`compare` as a PNG download (stream, name, media type)."""
        comparison = await self.compare(query)
        return await asyncio.to_thread(comparison_png, comparison)


def admit(roots: DataRoots, spec: TrainSpec | PredictSpec) -> None:
    """Refuse a job's spec unless every path is inside the data roots (checked first:
    PathRefused, before any file is looked at) and its inputs exist (SpecError naming
    the class, the model file or the prediction's path). Blocking: call it in a thread."""
    roots.check_spec(spec)
    if isinstance(spec, PredictSpec):
        try:
            files = resolve_files(list(spec.files))
            check_whole_files(files)  # truncated or not ROOT: refused now, not in the job
        except SourceError as err:
            raise SpecError("path", str(err)) from None
        for out in spec.outputs_for(files):  # SpecError: several inputs for one output file
            roots.resolve(str(out))  # scores/ beside an input reached through a link
        return
    for group in spec.dataset.classes:
        try:  # a friend tree of scores named in a class is refused now (SourceError)
            files, _ = dataset_files(list(group.files))
            if spec.dataset.on_error == "stop":  # a truncated file too, unless skipped
                check_whole_files(files)
        except SourceError as err:
            raise SpecError(f"dataset.classes.{group.name}", str(err)) from None
    if spec.model.file is not None and not os.path.isfile(spec.model.file):
        raise SpecError("model.file", f"no such file: {spec.model.file!r}")
    if spec.training.workers > 1:  # a Keras or BDT model is refused now, not in its job
        check_data_parallel(spec)
    if spec.training.folds > 1 and spec.training.fold_by is not None:
        # SpecError naming the branch and the tree, when fold_by is none of its integers
        training = spec.training
        plan_for(fold_dataset(spec.dataset, 0, training.folds, training.fold_by))


def _remove_run_dir(run_dir: str, runs_dir: str) -> bool:
    """Remove a run folder, but only one inside the runs folder (a job's run folder
    may have been given by the user; that one is theirs)."""
    folder, parent = Path(run_dir).resolve(), Path(runs_dir).resolve()
    if not folder.is_relative_to(parent) or folder == parent or not folder.is_dir():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return not folder.exists()
