"""A job on a dask LocalCluster, submitted and followed through the REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web_helpers import toy_spec, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def mlaas_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "job_store": str(tmp_path / "state" / "jobs.sqlite"),
        "runs_dir": str(tmp_path / "state" / "runs"),
        "default_executor": "kernel",
    }


async def test_dask_job_succeeds(api: Any, mlaas: Any) -> None:
    status, job = await api("jobs", method="POST", body={"spec": toy_spec(), "executor": "dask"})
    assert status == 201, job
    assert job["executor"] == "dask"
    done = await wait_for(api, job["id"], ("succeeded", "failed", "cancelled"), timeout=240)
    _, logs = await api("jobs", job["id"], "logs")
    assert done["state"] == "succeeded", (done, logs["text"][-3000:])
    assert done["metrics"]["auc"] > 0.6
    _, reply = await api("jobs", job["id"], "events")
    types = [e["type"] for e in reply["events"]]
    assert types.index("start") < types.index("epoch") < types.index("done")
    assert types[-1] == "state"
    _, artefacts = await api("jobs", job["id"], "artefacts")
    assert "bundle.zip" in {a["path"] for a in artefacts["artefacts"]}
    assert mlaas.core.manager.executors["dask"].scheduler == ""  # a LocalCluster
