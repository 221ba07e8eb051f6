"""``POST jobs/{id}/resume`` through a real Jupyter server, and ``resume_lost_jobs``.

Jobs run on the stand-in executor of ``web_helpers`` (its behaviour follows the job's
name); the lost jobs are rows a killed process left ``running`` (``lost_jobs``), which
the server marks lost when it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lost_jobs import leave_running
from web_helpers import FakeExecutor, toy_spec, wait_for

from mlaas_jupyter.specs.training import TrainSpec


@pytest.fixture
def killed(tmp_path: Path, jp_root_dir: Path, toy_dir: Path) -> str:
    """A job left running by a killed server, in the store of the server to come."""
    spec = TrainSpec.from_dict(toy_spec(), base_dir=jp_root_dir).to_dict()
    state = tmp_path / "state"
    return leave_running(state / "jobs.sqlite", spec, "ok", state / "runs")


@pytest.fixture
def mlaas_config(tmp_path: Path, killed: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    return {
        "job_store": str(tmp_path / "state" / "jobs.sqlite"),
        "runs_dir": str(tmp_path / "state" / "runs"),
        "local_executor_class": FakeExecutor,
        "default_executor": "local",
        "resume_lost_jobs": getattr(request, "param", False),
    }


async def test_resume_a_lost_job_in_place(api: Any, killed: str) -> None:
    status, lost = await api("jobs", killed)
    assert (status, lost["state"]) == (200, "lost")
    assert lost["error"] == "the server stopped while the job was running"
    _, before = await api("jobs", killed, "events")

    status, job = await api("jobs", killed, "resume", method="POST", body={})
    assert status == 200, job
    assert (job["id"], job["state"], job["error"]) == (killed, "queued", None)
    assert job["spec"]["training"]["resume"] is True
    done = await wait_for(api, killed, ("succeeded",))
    assert done["bundle"].endswith(f"{killed}/bundle")

    status, after = await api("jobs", killed, "events")
    events = after["events"]
    assert events[: len(before["events"])] == before["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    resumed = events[len(before["events"])]
    assert resumed["type"] == "resumed"
    assert resumed["message"] == "resumed from the start (no epoch was checkpointed)"
    kinds = [e["type"] for e in events[len(before["events"]) + 1 :]]
    assert kinds == ["state", "state", "start", "epoch", "epoch", "done", "state"]

    status, reply = await api("jobs", killed, "resume", method="POST", body={})
    assert (status, reply["error"]) == (409, "Conflict")
    assert reply["detail"].startswith(f"job {killed} is succeeded; only a lost job can be resumed")


async def test_resume_refuses_live_and_unknown_jobs(api: Any) -> None:
    status, blocked = await api("jobs", method="POST", body={"spec": toy_spec(), "name": "block"})
    await wait_for(api, blocked["id"], ("running",))
    status, reply = await api("jobs", blocked["id"], "resume", method="POST", body={})
    assert status == 409
    assert f"job {blocked['id']} is running; only a lost job can be resumed" in reply["detail"]
    await api("jobs", blocked["id"], "cancel", method="POST", body={})
    status, reply = await api("jobs", blocked["id"], "resume", method="POST", body={})
    assert status == 409
    assert "is cancelled; only a lost job" in reply["detail"]
    assert "resubmit makes a new job" in reply["detail"]
    status, reply = await api("jobs", "abc123", "resume", method="POST", body={})
    assert (status, reply["detail"]) == (404, "no job with id 'abc123'")
    status, reply = await api("jobs", "abc123", "resume")
    assert status == 405


@pytest.mark.parametrize("mlaas_config", [True], indirect=True)
async def test_resume_lost_jobs_at_start_up(api: Any, killed: str) -> None:
    job = await wait_for(api, killed, ("succeeded",))
    assert job["id"] == killed
    _, reply = await api("jobs", killed, "events")
    assert [e["type"] for e in reply["events"]].count("resumed") == 1
