"""A finished training job's report: ``GET jobs/{id}/report`` and ``report.html``.

The report is the ``report.json`` that training writes into the run folder (see
:mod:`mlaas_jupyter.train.report`); it is checked against the ``Report`` model and
handed back as written. Only a succeeded training job has one (409 otherwise); a run
trained before reports existed has none (404 saying so).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import IO, Any

from ..errors import Conflict, NotFound, SourceError
from ..jobs.models import Job
from ..train.report import load_report
from ..train.report_html import report_html

__all__ = ["REPORT_FILE", "job_report", "job_report_page", "read_report"]

#: the report's file in a run folder
REPORT_FILE = "report.json"


def read_report(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The report of a run folder as ``report.json`` holds it (checked by
    ``load_report``: SourceError naming the file when it is missing or broken)."""
    path = Path(run_dir) / REPORT_FILE
    load_report(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # pragma: no cover - load_report read it just now
        raise SourceError(str(path), f"cannot read the report: {err}") from None
    return dict(data)


def _run_dir(job: Job) -> Path:
    """The run folder of a succeeded training job that holds a report."""
    if job.kind != "train":
        raise Conflict(f"job {job.id} is a {job.kind} job: only training jobs have a report")
    if job.state.value != "succeeded":
        raise Conflict(f"job {job.id} is {job.state.value}: only succeeded jobs have a report")
    if not job.run_dir or not os.path.isdir(job.run_dir):
        raise NotFound(f"job {job.id} has lost its run folder {job.run_dir}")
    folder = Path(job.run_dir)
    if not (folder / REPORT_FILE).is_file():
        raise NotFound(
            f"the run of job {job.id} has no {REPORT_FILE} (trained before reports existed)"
        )
    return folder


def job_report(job: Job) -> dict[str, Any]:
    """The report of ``job`` (blocking: it reads the run folder); Conflict unless the
    job is a succeeded training job, NotFound when its run has no report."""
    folder = _run_dir(job)
    try:
        return read_report(folder)
    except SourceError as err:
        raise Conflict(f"job {job.id}: {err}") from None


def job_report_page(job: Job) -> tuple[IO[bytes], str, str]:
    """The report of ``job`` as a self-contained HTML page: stream, name, media type."""
    data = job_report(job)
    page = report_html(data, _run_dir(job))
    return io.BytesIO(page.encode("utf-8")), f"report-{job.id}.html", "text/html; charset=utf-8"
