"""Jobs in real ``python3`` kernels started by the server's kernel manager.

These start kernels and train small models: they are marked slow (CI still runs them).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from web_helpers import toy_spec, wait_for

from mlaas_jupyter.jobs.models import Job, JobState
from mlaas_jupyter.jobs.store import JobStore
from mlaas_jupyter.web.extension import JOB_EVENT_SCHEMA_ID

pytestmark = pytest.mark.slow

LONG = toy_spec("mlp", epochs=10_000)  # runs until cancelled or killed


@pytest.fixture
def mlaas_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "job_store": str(tmp_path / "state" / "jobs.sqlite"),
        "runs_dir": str(tmp_path / "state" / "runs"),
        "default_executor": "kernel",
        "max_concurrent_jobs": 1,
    }


async def _event(api: Any, job_id: str, kind: str, timeout: float = 120.0) -> dict[str, Any]:
    """Wait for the first event of type ``kind`` of a job."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        _, reply = await api("jobs", job_id, "events")
        for event in reply["events"]:
            if event["type"] == kind:
                return dict(event)
        if reply["state"] not in ("queued", "running"):
            raise AssertionError(f"job ended {reply['state']} without a {kind} event: {reply}")
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {kind} event after {timeout} s")


async def test_kernel_job_succeeds_and_its_events_reach_the_bus(
    api: Any, jp_serverapp: Any, jp_ws_fetch: Any
) -> None:
    socket = await jp_ws_fetch("api", "events", "subscribe")
    status, job = await api("jobs", method="POST", body={"spec": toy_spec("bdt")})
    assert status == 201, job
    assert job["executor"] == "kernel"
    done = await wait_for(api, job["id"], ("succeeded", "failed"), timeout=240)
    _, logs = await api("jobs", job["id"], "logs")
    assert done["state"] == "succeeded", (done, logs["text"][-3000:])
    assert done["metrics"]["auc"] > 0.6
    assert done["bundle"].endswith("bundle")

    _, reply = await api("jobs", job["id"], "events", params={"since": 0})
    types = [e["type"] for e in reply["events"]]
    assert types[:3] == ["state", "state", "kernel"]
    assert types.index("start") < types.index("stats") < types.index("epoch")
    assert types.index("epoch") < types.index("test") < types.index("done")
    assert types[-2:] == ["done", "state"]
    assert reply["events"][-1]["state"] == "succeeded"
    assert [e["seq"] for e in reply["events"]] == list(range(1, len(types) + 1))
    kernel_id = reply["events"][2]["kernel_id"]
    assert kernel_id not in jp_serverapp.kernel_manager.list_kernel_ids()  # shut down

    _, artefacts = await api("jobs", job["id"], "artefacts")
    paths = {a["path"] for a in artefacts["artefacts"]}
    assert {"plots/curves.json", "plots/roc.png", "bundle.zip"} <= paths

    # the event bus carried the same events, in order
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != "state" or seen[-1]["state"] != "succeeded":
        message = json.loads(await asyncio.wait_for(socket.read_message(), 10))
        if message["schema_id"] == JOB_EVENT_SCHEMA_ID and message["job_id"] == job["id"]:
            seen.append(message)
    socket.close()
    assert [m["seq"] for m in seen] == [e["seq"] for e in reply["events"]]
    assert [m["type"] for m in seen] == types
    assert seen[-1]["data"] == {"state": "succeeded"}
    assert seen[0]["name"] == job["name"]
    assert seen[0]["executor"] == "kernel"


async def test_cancel_a_running_kernel_job(api: Any, jp_serverapp: Any) -> None:
    status, job = await api("jobs", method="POST", body={"spec": LONG, "name": "long"})
    kernel = await _event(api, job["id"], "kernel")
    await _event(api, job["id"], "epoch")  # training: not inside an import that eats SIGINT
    status, cancelled = await api("jobs", job["id"], "cancel", method="POST", body={})
    assert status == 200, cancelled
    assert cancelled["state"] == "cancelled"
    assert kernel["kernel_id"] not in jp_serverapp.kernel_manager.list_kernel_ids()
    _, reply = await api("jobs", job["id"], "events")
    types = [e["type"] for e in reply["events"]]
    assert types[-2:] == ["cancelled", "state"]  # the interrupt let the job say so
    _, logs = await api("jobs", job["id"], "logs")
    assert "KeyboardInterrupt" in logs["text"]


async def test_killed_kernel_fails_the_job(api: Any, jp_serverapp: Any) -> None:
    _, job = await api("jobs", method="POST", body={"spec": LONG})
    kernel = await _event(api, job["id"], "kernel")
    await _event(api, job["id"], "start")
    manager = jp_serverapp.kernel_manager.get_kernel(kernel["kernel_id"])
    os.kill(manager.provisioner.process.pid, signal.SIGKILL)
    failed = await wait_for(api, job["id"], ("failed", "succeeded", "cancelled"), timeout=60)
    assert failed["state"] == "failed"
    assert "kernel died" in failed["error"]
    assert kernel["kernel_id"] not in jp_serverapp.kernel_manager.list_kernel_ids()


async def test_queue_limit(api: Any) -> None:
    _, first = await api("jobs", method="POST", body={"spec": LONG, "name": "first"})
    _, second = await api("jobs", method="POST", body={"spec": LONG, "name": "second"})
    await wait_for(api, first["id"], ("running",))
    await _event(api, first["id"], "kernel")
    _, waiting = await api("jobs", second["id"])
    assert waiting["state"] == "queued"
    _, listing = await api("jobs", params={"state": "running"})
    assert [j["id"] for j in listing["jobs"]] == [first["id"]]
    await api("jobs", first["id"], "cancel", method="POST", body={})
    await wait_for(api, second["id"], ("running",))
    status, reply = await api("jobs", second["id"], "cancel", method="POST", body={})
    assert (status, reply["state"]) == (200, "cancelled")


@pytest.fixture
def interrupted_store(mlaas_config: dict[str, Any]) -> list[str]:
    """A store with a running and a queued job left by a 'previous server'."""
    store = JobStore(mlaas_config["job_store"])
    ids = []
    for job_id, state in (("old1", JobState.RUNNING), ("old2", JobState.QUEUED)):
        store.create(Job(job_id, "old", JobState.QUEUED, toy_spec(), "kernel"))
        if state is JobState.RUNNING:
            store.set_state(job_id, JobState.RUNNING)
        ids.append(job_id)
    store.close()
    return ids


async def test_restart_recovery_marks_running_jobs_lost(
    interrupted_store: list[str], api: Any
) -> None:
    for job_id in interrupted_store:
        status, job = await api("jobs", job_id)
        assert status == 200
        assert job["state"] == "lost"
        assert "server stopped" in job["error"]
    _, events = await api("jobs", "old1", "events")
    assert events["events"][-1] == {**events["events"][-1], "type": "state", "state": "lost"}
