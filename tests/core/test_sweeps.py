"""Sweeps of real training jobs (local executor, tiny dataset): the record, the best
trial's model, pruning, cancelling, and the record after the core restarts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlaas_jupyter.client import Client
from mlaas_jupyter.core.service import Mlaas
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.jobs import JobStore
from mlaas_jupyter.jobs._sweep_store import SweepStateError

ENDED = ("succeeded", "failed", "cancelled", "pruned", "lost")


def toy_spec(folder: Path, epochs: int = 2) -> dict[str, Any]:
    path = write_example_dataset(folder / "data", events_per_file=1000, files_per_class=1)
    dataset = yaml.safe_load(path.read_text())
    dataset["classes"] = {
        k: [str(path.parent / g) for g in v] for k, v in dataset["classes"].items()
    }
    training = {"epochs": epochs, "batch_size": 256, "device": "cpu", "early_stopping": None}
    return {"dataset": dataset, "model": {"name": "mlp"}, "training": training}


def wait_until(client: Client, sweep_id: str, ready: Any, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record = client.sweep(sweep_id)
        if ready(record):
            return record
        assert time.monotonic() < deadline, record
        time.sleep(0.2)


@pytest.mark.slow
def test_a_grid_sweep_prunes_poor_trials_and_registers_the_best(isolated: Path) -> None:
    client = Client(transport="in-process")
    try:
        record = client.submit_sweep(
            toy_spec(isolated),
            {"training.learning_rate": "1e-2,1e-3", "model.params.dropout": [0, 0.2]},
            parallel=2,
            sampler="grid",
            seed=1,
            name="toy-sweep",
        )
        assert (record["trials_total"], record["metric"], record["direction"]) == (
            4,
            "val_auc",
            "maximize",
        )
        done = client.wait_sweep(record["id"], timeout=600)
        assert done["state"] == "succeeded", done
        trials = done["trials"]
        grid = {
            (t["params"]["training.learning_rate"], t["params"]["model.params.dropout"])
            for t in trials
        }
        assert grid == {(0.01, 0), (0.01, 0.2), (0.001, 0), (0.001, 0.2)}  # covered once each
        # the first trial (lr 1e-3) finishes as the pruner's reference; the second trial
        # with lr 1e-3 is far below the median of the finished ones after its first epoch
        pruned = [t for t in trials if t["state"] == "pruned"]
        assert len(pruned) == 1
        assert pruned[0]["params"]["training.learning_rate"] == 0.001
        assert (pruned[0]["epoch"], list(pruned[0]["intermediate"])) == (1, ["1"])
        assert client.job(pruned[0]["job_id"])["state"] == "cancelled"
        assert done["counts"] == {
            "done": 3,
            "running": 0,
            "queued": 0,
            "pruned": 1,
            "failed": 0,
            "cancelled": 0,
        }
        succeeded = [t for t in trials if t["state"] == "succeeded"]
        for trial in succeeded:  # a trial's value: its best epoch's val_auc
            assert trial["value"] == max(trial["intermediate"].values())
            assert trial["epoch"] == 2
        best = done["best"]
        assert best["value"] == max(t["value"] for t in succeeded)
        assert best["params"]["training.learning_rate"] == 0.01
        assert (best["model"], best["version"]) == ("toy-sweep", 1)
        models = client.models()["models"]
        assert [(m["name"], m["version"]) for m in models] == [("toy-sweep", 1)]  # no trial's
        jobs = client.jobs()
        assert {j["sweep"] for j in jobs} == {record["id"]}
        assert sorted(j["name"] for j in jobs) == [f"toy-sweep #{n}" for n in (1, 2, 3, 4)]
        assert client.model("toy-sweep", 1)["metrics"]["auc"] > 0.5
    finally:
        client.close()


@pytest.mark.slow
def test_cancelling_a_sweep_cancels_its_trials(isolated: Path) -> None:
    client = Client(transport="in-process")
    try:
        record = client.submit_sweep(
            toy_spec(isolated, epochs=500),  # runs until cancelled
            {"training.learning_rate": "1e-3,2e-3,3e-3"},
            parallel=2,
            sampler="grid",
        )
        running = wait_until(
            client, record["id"], lambda r: sum(bool(t["intermediate"]) for t in r["trials"]) == 2
        )
        assert [t["state"] for t in running["trials"]] == ["running", "running"]
        cancelled = client.cancel_sweep(record["id"])
        assert cancelled["state"] == "cancelled"
        assert [t["state"] for t in cancelled["trials"]] == ["cancelled", "cancelled"]
        assert cancelled["counts"]["cancelled"] == 2
        assert cancelled["best"] is None
        assert cancelled["finished"] is not None
        for trial in cancelled["trials"]:
            assert client.job(trial["job_id"])["state"] == "cancelled"
        with pytest.raises(SweepStateError, match="has already ended"):
            client.cancel_sweep(record["id"])
        assert client.delete_sweep(record["id"]) == {"id": record["id"], "deleted": True}
    finally:
        client.close()


@pytest.mark.slow
def test_a_restart_keeps_the_record_and_the_finished_trials(isolated: Path) -> None:
    client = Client(transport="in-process")
    try:
        record = client.submit_sweep(
            toy_spec(isolated),
            {"training.learning_rate": "1e-2,2e-2,3e-2"},
            sampler="grid",
            prune=False,
            name="resumed",
        )
        wait_until(client, record["id"], lambda r: r["counts"]["done"] == 1)
        with pytest.raises(SweepStateError, match="cancel it before deleting it"):
            client.delete_sweep(record["id"])
    finally:
        client.close()  # the core stops: the running trial and the sweep become lost
    again = Client(transport="in-process")
    try:
        lost = again.sweep(record["id"])
        assert (lost["state"], lost["error"]) == (
            "lost",
            "the server stopped while the sweep was running",
        )
        by_state = {t["state"]: t for t in lost["trials"]}
        assert sorted(by_state) == ["lost", "succeeded"]
        finished = by_state["succeeded"]
        assert finished["value"] > 0.5
        assert again.job(finished["job_id"])["state"] == "succeeded"
        assert again.job(by_state["lost"]["job_id"])["state"] == "lost"
        assert lost["counts"]["done"] == 1
        assert lost["counts"]["failed"] == 1
        assert [s["id"] for s in again.sweeps()] == [record["id"]]

        # resumed: the finished trial is kept, the lost one's grid point runs again
        assert again.resume_sweep(record["id"])["state"] == "running"
        with pytest.raises(SweepStateError, match="only a lost sweep can be resumed"):
            again.resume_sweep(record["id"])
        done = again.wait_sweep(record["id"], timeout=600)
        assert done["state"] == "succeeded", done
        assert done["error"] is None
        states = [t["state"] for t in done["trials"]]
        assert states == ["succeeded", "lost", "succeeded", "succeeded"]
        assert [t["number"] for t in done["trials"]] == [1, 2, 3, 4]
        rates = {
            t["params"]["training.learning_rate"]
            for t in done["trials"]
            if t["state"] == "succeeded"
        }
        assert rates == {0.01, 0.02, 0.03}  # the grid, each point once
        assert done["trials"][0] == finished
        assert (done["best"]["model"], done["best"]["version"]) == ("resumed", 1)
    finally:
        again.close()


def test_a_sweep_left_running_by_a_stopped_process_is_lost(isolated: Path) -> None:
    path = isolated / "jobs.sqlite"
    store = JobStore(path)
    trials = [
        {"number": 1, "job_id": "a", "params": {"x": 1}, "state": "succeeded", "value": 0.9},
        {"number": 2, "job_id": "b", "params": {"x": 2}, "state": "running", "value": None},
    ]
    record = {"id": "s1", "name": "old", "state": "running", "created": 1.0, "trials": trials}
    store.create_sweep(record)  # its owner: this process, which counts as stopped below
    with pytest.raises(SweepStateError, match="sweep s1 is running; cancel it"):
        store.delete_sweep("s1")
    store.close()
    core = Mlaas(job_store=str(path), runs_dir=str(isolated / "runs")).start()
    try:
        lost = core.store.get_sweep("s1")
        assert lost["state"] == "lost"
        assert lost["finished"] is not None
        assert [t["state"] for t in lost["trials"]] == ["succeeded", "lost"]
        assert lost["counts"]["done"] == 1
        assert lost["counts"]["failed"] == 1
        assert asyncio.run(core.sweeps.delete("s1")) == {"id": "s1", "deleted": True}
    finally:
        asyncio.run(core.stop())


@pytest.mark.slow
def test_a_sweep_whose_every_trial_fails_fails(isolated: Path) -> None:
    client = Client(transport="in-process")
    try:
        record = client.submit_sweep(
            toy_spec(isolated),
            {"model.params.activation": "wobbly,jumpy"},  # refused when the model is built
            parallel=2,
        )
        done = client.wait_sweep(record["id"], timeout=300)
        assert done["state"] == "failed"
        assert [t["state"] for t in done["trials"]] == ["failed", "failed"]
        assert "model.params.activation" in done["error"]
        assert done["best"] is None
        assert client.models()["models"] == []
    finally:
        client.close()
