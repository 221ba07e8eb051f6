"""Sweeps through a real Jupyter server: submit, follow, list, cancel, delete, errors.

The trials run on the fake ``local`` executor of these tests (two epochs reporting
``loss`` 1.0 then 0.5, a fake bundle), so the sweep optimises ``loss``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from standalone_helpers import serve
from web_helpers import toy_spec

from mlaas_jupyter.client import Client
from mlaas_jupyter.errors import Conflict, NotFound
from mlaas_jupyter.examples import write_example_dataset


async def wait_sweep(api: Any, sweep_id: str, timeout: float = 60.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status, record = await api("sweeps", sweep_id)
        assert status == 200, record
        if record["state"] != "running":
            return dict(record)
        assert loop.time() < deadline, record
        await asyncio.sleep(0.1)


async def test_sweep_lifecycle(api: Any) -> None:
    body = {
        "spec": toy_spec(),
        "params": {"training.learning_rate": "0.1,0.01", "training.batch_size": [128, 256]},
        "trials": 3,
        "parallel": 2,
        "sampler": "grid",
        "metric": "loss",
        "name": "toy sweep",
        "register": False,
        "seed": 3,
    }
    status, record = await api("sweeps", method="POST", body=body)
    assert status == 201, record
    assert (record["state"], record["metric"], record["direction"]) == (
        "running",
        "loss",
        "minimize",
    )
    assert (record["trials_total"], record["parallel"], record["sampler"]) == (3, 2, "grid")
    assert record["request"]["register"] is False
    done = await wait_sweep(api, record["id"])
    assert done["state"] == "succeeded", done
    assert done["counts"] == {
        "done": 3,
        "running": 0,
        "queued": 0,
        "pruned": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert [t["number"] for t in done["trials"]] == [1, 2, 3]
    assert all(t["value"] == 0.5 and t["epoch"] == 2 for t in done["trials"])
    points = {
        (t["params"]["training.learning_rate"], t["params"]["training.batch_size"])
        for t in done["trials"]
    }
    assert len(points) == 3
    assert points <= {(0.1, 128), (0.1, 256), (0.01, 128), (0.01, 256)}
    best = done["best"]
    assert best["value"] == 0.5
    assert best["model"] is None
    assert best["version"] is None
    assert best["job_id"] in {t["job_id"] for t in done["trials"]}

    status, job = await api("jobs", done["trials"][0]["job_id"])
    assert (job["sweep"], job["name"]) == (record["id"], "toy sweep #1")
    status, jobs = await api("jobs")
    assert {j["sweep"] for j in jobs["jobs"]} == {record["id"]}
    status, listing = await api("sweeps")
    assert status == 200
    assert [s["id"] for s in listing["sweeps"]] == [record["id"]]

    status, reply = await api("sweeps", record["id"], "cancel", method="POST", body="")
    assert status == 409
    assert "has already ended (succeeded)" in reply["detail"]
    status, reply = await api("sweeps", record["id"], method="DELETE")
    assert (status, reply) == (200, {"id": record["id"], "deleted": True})
    status, reply = await api("sweeps", record["id"])
    assert status == 404
    assert reply["detail"] == f"no sweep with id {record['id']!r}"
    status, jobs = await api("jobs")
    assert len(jobs["jobs"]) == 3  # the trials stay as jobs


async def test_sweep_errors(api: Any) -> None:
    cases = [
        (
            {"params": {"model.hiden": "64,128"}},
            "params.model.params.hiden: the bdt model has no parameter 'hiden'; allowed: ",
        ),
        ({"params": {"training.epoch": "1,2"}}, "params.training.epoch: unknown field"),
        ({"params": {"training.epochs": "int:0:4"}}, "params.training.epochs: must be >= 1"),
        ({"params": {"training.epochs": "uniform:1"}}, "params.training.epochs: expected"),
        ({"params": {"training.epochs": "1,2"}, "metric": "val_r2"}, "metric: got 'val_r2'"),
        ({"params": {"training.epochs": "1,2"}, "executor": "nope"}, "executor: unknown"),
    ]
    for fields, message in cases:
        status, reply = await api("sweeps", method="POST", body={"spec": toy_spec(), **fields})
        assert status == 400, reply
        assert reply["detail"].startswith(message), reply
    spec = toy_spec()
    spec["dataset"]["classes"]["signal"] = ["toy/nothing_*.root"]
    status, reply = await api(
        "sweeps", method="POST", body={"spec": spec, "params": {"training.epochs": "1,2"}}
    )
    assert status == 400, reply
    assert reply["detail"].startswith("dataset.classes.signal"), reply
    status, reply = await api("sweeps")
    assert (status, reply) == (200, {"sweeps": []})
    for method in ("GET", "DELETE"):
        status, reply = await api("sweeps", "nope", method=method)
        assert status == 404, reply


@pytest.mark.slow
def test_the_client_runs_a_sweep_over_http(tmp_path: Path) -> None:
    """``Client.submit_sweep`` ... through ``mlaas serve``: real BDT trials, local executor."""
    with serve(tmp_path / "serve") as server:
        write_example_dataset(server.root / "data", events_per_file=1000, files_per_class=1)
        client = Client(server.url, server.token)
        spec = toy_spec("bdt")
        spec["dataset"]["classes"] = {
            "background": ["data/background_*.root"],
            "signal": ["data/signal_*.root"],
        }
        record = client.submit_sweep(
            spec,
            {"model.params.max_depth": [2, 3]},
            parallel=2,
            sampler="grid",  # TPE and random may draw a choice twice
            executor="local",
            name="http",
        )
        assert (record["state"], record["trials_total"], record["sampler"]) == (
            "running",
            2,
            "grid",
        )
        done = client.wait_sweep(record["id"], timeout=300)
        assert done["state"] == "succeeded", done
        assert sorted(t["params"]["model.params.max_depth"] for t in done["trials"]) == [2, 3]
        assert (done["best"]["model"], done["best"]["version"]) == ("http", 1)
        assert [m["name"] for m in client.models()["models"]] == ["http"]
        assert [s["id"] for s in client.sweeps()] == [record["id"]]
        with pytest.raises(Conflict, match="has already ended"):
            client.cancel_sweep(record["id"])
        with pytest.raises(Conflict, match="only a lost sweep can be resumed"):
            client.resume_sweep(record["id"])
        assert client.delete_sweep(record["id"])["deleted"] is True
        with pytest.raises(NotFound, match="no sweep with id"):
            client.sweep(record["id"])
