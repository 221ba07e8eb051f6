"""Resuming a lost job in place: the same id, its events kept, from its last checkpoint.

The quick tests drive :class:`JobManager` and the core with a stand-in executor (whose
behaviour follows the job's name, as in ``test_manager``); the slow one stops a real
training mid-run by closing the in-process core and resumes it with a new one.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from example_data import example_dataset_spec
from lost_jobs import leave_running

from mlaas_jupyter.client import Client
from mlaas_jupyter.core import Mlaas
from mlaas_jupyter.errors import Conflict
from mlaas_jupyter.jobs import Job, JobManager, JobState, JobStateError, JobStore
from mlaas_jupyter.jobs.executors.base import EmitEvent, Executor, JobCancelled, JobFailed
from mlaas_jupyter.specs.training import TrainSpec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

SPEC: dict[str, Any] = {
    "dataset": {
        "tree": "Events",
        "classes": {"a": ["/data/a.root"], "b": ["/data/b.root"]},
        "branches": ["x"],
    },
    "training": {"epochs": 2},
}
PREDICT: dict[str, Any] = {
    "predict": {"bundle": "/models/toy", "files": ["/data/a.root"], "output": "/out"}
}


class StandIn(Executor):
    """``wait``: runs until cancelled; ``fail``: fails; anything else: two epochs, done."""

    name = "local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs: list[tuple[str, dict[str, Any]]] = []
        self.stop: dict[str, asyncio.Event] = {}

    async def run(self, job: Job, emit: EmitEvent) -> dict[str, Any]:
        self.runs.append((job.id, job.spec))
        emit({"type": "start", "run_dir": job.run_dir})
        if job.name == "wait":
            await self.stop.setdefault(job.id, asyncio.Event()).wait()
            raise JobCancelled("cancelled")
        if job.name == "fail":
            raise JobFailed("the data are bad")
        for epoch in (1, 2):
            emit({"type": "epoch", "epoch": epoch, "epochs": 2, "loss": 1.0 / epoch})
        done = {"type": "done", "bundle": f"{job.run_dir}/bundle", "metrics": {"auc": 0.9}}
        emit(done)
        return done

    async def cancel(self, job: Job) -> None:
        self.stop.setdefault(job.id, asyncio.Event()).set()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The toy dataset (2000 events per class) as a spec mapping with absolute paths."""
    yield from example_dataset_spec(tmp_path_factory, events_per_file=2000)


def lose(store: JobStore, job_id: str) -> None:
    """What ``recover()`` does to the job of a killed process."""
    assert [j.id for j in store.mark_interrupted()] == [job_id]


def types(manager: JobManager, job_id: str) -> list[str]:
    return [e.type if e.type != "state" else e.data["state"] for e in manager.events(job_id)]


def test_reopen_moves_only_a_lost_job_back_to_queued(tmp_path: Path) -> None:
    job_id = leave_running(tmp_path / "jobs.sqlite", SPEC, "toy", tmp_path / "runs")
    store = JobStore(tmp_path / "jobs.sqlite")
    with pytest.raises(JobStateError, match=f"job {job_id} is running; only a lost job"):
        store.reopen(job_id)
    lose(store, job_id)
    lost = store.get(job_id)
    assert (lost.state, lost.error) == (
        JobState.LOST,
        "the server stopped while the job was running",
    )
    assert lost.finished is not None
    spec = {**SPEC, "training": {"epochs": 2, "resume": True}}
    job = store.reopen(job_id, spec)
    assert (job.state, job.error, job.finished, job.spec) == (JobState.QUEUED, None, None, spec)
    assert store.get(job_id).spec == spec
    assert [e.seq for e in store.events(job_id)] == [1, 2, 3, 4]  # the old events stay
    with pytest.raises(JobStateError, match="is queued; only a lost job can be resumed"):
        store.reopen(job_id)
    store.close()


def test_resume_runs_the_same_job_again(tmp_path: Path) -> None:
    job_id = leave_running(tmp_path / "jobs.sqlite", SPEC, "toy", tmp_path / "runs")
    checkpoint = tmp_path / "runs" / job_id / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "progress.json").write_text(json.dumps({"epoch": 1, "history": []}))
    store = JobStore(tmp_path / "jobs.sqlite")
    lose(store, job_id)
    executor = StandIn()
    seen: list[tuple[int, str]] = []

    async def main() -> None:
        manager = JobManager(store, {"local": executor}, runs_dir=tmp_path / "runs")
        manager.on_event = lambda event, job: seen.append((event.seq, event.type))
        job = await manager.resume(job_id)
        assert (job.id, job.state) == (job_id, JobState.QUEUED)
        job = await manager.wait(job_id, timeout=30)
        assert job.state is JobState.SUCCEEDED
        assert job.metrics == {"auc": 0.9}
        with pytest.raises(JobStateError, match=f"job {job_id} is succeeded; only a lost job"):
            await manager.resume(job_id)
        await manager.shutdown()

    asyncio.run(main())
    ((ran, spec),) = executor.runs
    assert ran == job_id
    assert spec == TrainSpec.from_dict(SPEC).with_training(resume=True).to_dict()
    events = store.events(job_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type if e.type != "state" else e.data["state"] for e in events] == [
        "queued", "running", "start", "lost",  # the first run, up to the kill
        "resumed", "queued", "running", "start", "epoch", "epoch", "done", "succeeded",
    ]  # fmt: skip
    resumed = events[4]
    assert resumed.data == {
        "message": "resumed from the checkpoint of epoch 1",
        "checkpoint_epoch": 1,
        "reason": "the server stopped while the job was running",
    }
    assert seen[0] == (5, "resumed")  # forwarded (the event bus, the widgets) as stored
    store.close()


def test_resume_refuses_jobs_that_are_not_lost(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    executor = StandIn()

    async def main() -> None:
        manager = JobManager(store, {"local": executor}, runs_dir=tmp_path / "runs")
        running = await manager.submit(SPEC, name="wait")
        ok = await manager.submit(SPEC, name="ok")
        failed = await manager.submit(SPEC, name="fail")
        await manager.wait(ok.id, timeout=30)
        await manager.wait(failed.id, timeout=30)
        with pytest.raises(JobStateError, match=f"job {running.id} is running; only a lost"):
            await manager.resume(running.id)
        await manager.cancel(running.id)
        for job, state in ((ok, "succeeded"), (failed, "failed"), (running, "cancelled")):
            with pytest.raises(Conflict, match=f"is {state}; only a lost job can be resumed"):
                await manager.resume(job.id)
        trial = await manager.submit(SPEC, name="wait", sweep="s1")
        await manager.shutdown()  # the trial becomes lost with the manager
        assert store.get(trial.id).state is JobState.LOST
        with pytest.raises(JobStateError, match="is a trial of sweep s1; resume the sweep"):
            JobManager(store, {"local": executor}).resumable(trial.id)

    asyncio.run(main())
    store.close()


def test_a_prediction_job_resumes_by_scoring_its_files_again(tmp_path: Path) -> None:
    job_id = leave_running(tmp_path / "jobs.sqlite", PREDICT, "scores", tmp_path / "runs")
    store = JobStore(tmp_path / "jobs.sqlite")
    lose(store, job_id)
    executor = StandIn()

    async def main() -> None:
        manager = JobManager(store, {"local": executor}, runs_dir=tmp_path / "runs")
        await manager.resume(job_id)
        assert (await manager.wait(job_id, timeout=30)).state is JobState.SUCCEEDED
        await manager.shutdown()

    asyncio.run(main())
    ((ran, spec),) = executor.runs
    assert ran == job_id
    assert spec["predict"]["files"] == ["/data/a.root"]  # as it was: no checkpoint to use
    resumed = next(e for e in store.events(job_id) if e.type == "resumed")
    assert resumed.data["message"] == "resumed: its files are scored again"
    store.close()


@pytest.mark.parametrize("enabled", [True, False])
def test_resume_lost_jobs_at_start_up(
    tmp_path: Path, dataset: dict[str, Any], enabled: bool
) -> None:
    """``c.Mlaas.resume_lost_jobs``: the jobs that start-up marks lost run again."""
    store = tmp_path / "jobs.sqlite"
    spec = {"dataset": dataset, "model": {"name": "mlp"}, "training": {"epochs": 2}}
    job_id = leave_running(store, spec, "toy", tmp_path / "runs")
    settings = {
        "job_store": str(store),
        "runs_dir": str(tmp_path / "runs"),
        "models_dir": str(tmp_path / "models"),
        "local_executor_class": StandIn,
        "enabled_executors": ["local"],
        "auto_register_models": False,
        "data_roots": ["/"],
        "resume_lost_jobs": enabled,
    }

    async def main() -> Job:
        core = Mlaas(**settings).start()  # in a running loop: it resumes them itself
        try:
            if enabled:
                assert core._resuming is not None
                assert [job["id"] for job in await core._resuming] == [job_id]
            assert await core.resume_lost() == []  # once only
            return (
                await core.manager.wait(job_id, timeout=30) if enabled else core.manager.get(job_id)
            )
        finally:
            await core.stop()

    job = asyncio.run(main())
    if enabled:
        assert job.state is JobState.SUCCEEDED
        kinds = [e.type for e in JobStore(store).events(job_id)]
        assert kinds.count("resumed") == 1
    else:
        assert job.state is JobState.LOST


@pytest.mark.slow
def test_a_training_stopped_mid_run_resumes_from_its_checkpoint(
    isolated: Path, dataset: dict[str, Any]
) -> None:
    training = {"epochs": 10, "batch_size": 32, "device": "cpu", "early_stopping": None}
    spec = {"dataset": dataset, "model": {"name": "mlp"}, "training": training}
    client = Client(transport="in-process")
    try:
        job_id = client.submit(spec, name="resumable")["id"]
        for _ in range(3000):  # the first checkpointed epoch
            time.sleep(0.1)
            if any(e["type"] == "epoch" for e in client.events(job_id)):
                break
    finally:
        client.close()  # the core stops as a server would: the job becomes lost
    client = Client(transport="in-process")
    try:
        lost = client.job(job_id)
        assert lost["state"] == "lost", lost
        before = client.events(job_id)
        done_before = [e["epoch"] for e in before if e["type"] == "epoch"]
        assert done_before
        assert done_before[-1] < 10

        resumed = client.resume(job_id)
        assert (resumed["id"], resumed["state"]) == (job_id, "queued")
        assert resumed["spec"]["training"]["resume"] is True
        with pytest.raises(Conflict, match=f"job {job_id} is (queued|running); only a lost"):
            client.resume(job_id)
        job = client.wait(job_id, timeout=600)
        assert job["state"] == "succeeded", (job["error"], client.logs(job_id))
        assert job["id"] == job_id
        assert (Path(job["bundle"]) / "manifest.json").is_file()

        events = client.events(job_id)
        assert events[: len(before)] == before  # the old events stay, as they were
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        mark = next(e for e in events if e["type"] == "resumed")
        assert mark["seq"] == len(before) + 1
        checkpoint = mark["checkpoint_epoch"]
        assert checkpoint >= done_before[-1]
        assert mark["message"] == f"resumed from the checkpoint of epoch {checkpoint}"
        epochs = [e["epoch"] for e in events if e["type"] == "epoch"]
        assert epochs == done_before + list(range(checkpoint + 1, 11))  # none trained twice
        curves = json.loads((Path(job["run_dir"]) / "plots" / "curves.json").read_text())
        assert [h["epoch"] for h in curves["history"]] == list(range(1, 11))
    finally:
        client.close()
