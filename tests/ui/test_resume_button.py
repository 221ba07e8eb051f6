"""The jobs panel's Resume button: a lost job runs again, as the same row and job."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from labserver import Lab, screenshot
from test_lab import job_row, open_jobs_panel, toy_spec

from mlaas_jupyter.jobs import Job, JobState, JobStore
from mlaas_jupyter.specs.training import TrainSpec

pytestmark = pytest.mark.slow


def test_resume_a_lost_job_from_the_panel(page: Any, lab: Lab) -> None:
    info = lab.api("GET", "mlaas/api/info")
    spec = TrainSpec.from_dict(toy_spec(lab, {"name": "bdt"}, {"epochs": 1})).to_dict()
    job_id = uuid.uuid4().hex[:12]
    # the server's store, as a server killed mid-run leaves a job after its restart
    store = JobStore(info["job_store"])
    try:
        run_dir = str(Path(info["runs_dir"]) / job_id)
        store.create(Job(job_id, "ui-lost", JobState.LOST, spec, "local", run_dir=run_dir))
    finally:
        store.close()

    open_jobs_panel(page)
    row = f'.mlaas-Job[data-job-id="{job_id}"]'
    job_row(page, job_id, "lost", timeout=60_000)
    assert page.is_disabled(f'{row} button[data-action="cancel"]')
    screenshot(page, "jobs-lost")
    page.click(f'{row} button[data-action="resume"]')
    job_row(page, job_id, "succeeded")
    assert page.query_selector(f'{row} button[data-action="resume"]') is None
    events = lab.api("GET", f"mlaas/api/jobs/{job_id}/events")["events"]
    assert events[0]["type"] == "resumed"
    assert lab.api("GET", f"mlaas/api/jobs/{job_id}")["state"] == "succeeded"
