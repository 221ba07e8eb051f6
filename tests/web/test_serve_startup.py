"""What ``mlaas serve`` does once its loop runs: freeze its start-up objects out of the
garbage collector, and resume the jobs a killed server left (``resume_lost_jobs``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from lost_jobs import leave_running
from standalone_helpers import serve

from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.specs.training import TrainSpec


@pytest.mark.slow
def test_a_restarted_server_resumes_the_jobs_it_lost(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    dataset = write_example_dataset(data, events_per_file=2000, files_per_class=1)
    spec = {
        "dataset": yaml.safe_load(dataset.read_text()),
        "model": {"name": "bdt"},
        "training": {"epochs": 1},
    }
    checked = TrainSpec.from_dict(spec, base_dir=data).to_dict()
    job_id = leave_running(home / "jobs.sqlite", checked, "killed", home / "runs")
    config = {"Mlaas": {"resume_lost_jobs": True, "data_roots": [str(data)]}}
    with serve(home, config=config) as server:
        deadline = time.monotonic() + 300
        while True:
            status, _, job = server.call("GET", f"jobs/{job_id}")
            assert status == 200, job
            # "lost" first: start-up marks the job lost, then resumes it
            if job["state"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["state"] == "succeeded", job["error"]
        _, _, reply = server.call("GET", f"jobs/{job_id}/events")
        kinds = [e["type"] if e["type"] != "state" else e["state"] for e in reply["events"]]
        assert kinds[:6] == ["queued", "running", "start", "lost", "resumed", "queued"]
        log = server.log.read_text()
        assert "1 lost job(s) resumed" in log
        assert "start-up objects moved out of the garbage collector" in log
