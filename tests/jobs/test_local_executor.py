"""Real training jobs through `JobManager` and `LocalExecutor` (a subprocess each)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from example_data import example_dataset_spec

from mlaas_jupyter.jobs import JobManager, JobState, JobStore
from mlaas_jupyter.jobs.executors.local import LocalExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

TRAINING = {"epochs": 2, "batch_size": 256, "device": "cpu", "early_stopping": None}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The toy dataset (2000 events per class) as a spec mapping with absolute paths."""
    yield from example_dataset_spec(tmp_path_factory, events_per_file=2000)


Body = Callable[[JobManager, LocalExecutor], Coroutine[Any, Any, None]]


def run(tmp_path: Path, body: Body) -> None:
    executor = LocalExecutor(grace=20.0)

    async def main() -> None:
        store = JobStore(tmp_path / "jobs.sqlite")
        manager = JobManager(store, {"local": executor}, runs_dir=tmp_path / "runs")
        try:
            await body(manager, executor)
        finally:
            await manager.shutdown()

    asyncio.run(main())


def types(manager: JobManager, job_id: str) -> list[str]:
    """The event types, without progress, states and notes (the training report's
    overtraining check may add one)."""
    return [e.type for e in manager.events(job_id) if e.type not in ("progress", "state", "note")]


@pytest.mark.slow
def test_a_job_runs_to_its_bundle(tmp_path: Path, dataset: dict[str, Any]) -> None:
    spec = {"dataset": dataset, "model": {"name": "mlp"}, "training": TRAINING}

    async def body(manager: JobManager, executor: LocalExecutor) -> None:
        job = await manager.submit(spec, name="toy")
        job = await manager.wait(job.id, timeout=300)
        assert job.state is JobState.SUCCEEDED, (job.error, manager.logs(job.id))
        assert types(manager, job.id) == [
            "start",
            "stats",
            "model",
            "epoch",
            "epoch",
            "test",
            "report",
            "done",
        ]
        assert job.bundle == str(Path(job.run_dir or "") / "bundle")
        assert (Path(job.bundle) / "manifest.json").is_file()
        assert job.metrics["auc"] > 0.7
        assert job.progress["epoch"] == 2
        states = [e.data["state"] for e in manager.events(job.id) if e.type == "state"]
        assert states == ["queued", "running", "succeeded"]
        assert (Path(job.run_dir or "") / f"job-{job.id}.spec.json").is_file()

    run(tmp_path, body)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"classes": {"background": ["/no/such/bg.root"], "signal": ["/no/such/s.root"]}},
            "/no/such/",
        ),
        ({"model": {"file": "/no/such/model.py"}}, "model.py"),
    ],
)
def test_a_bad_file_fails_with_its_message(
    tmp_path: Path, dataset: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    model = change.pop("model", {"name": "mlp"})
    spec = {"dataset": {**dataset, **change}, "model": model, "training": TRAINING}

    async def body(manager: JobManager, executor: LocalExecutor) -> None:
        job = await manager.wait((await manager.submit(spec)).id, timeout=300)
        assert job.state is JobState.FAILED
        assert job.error is not None
        assert message in job.error
        assert "Traceback" not in job.error
        assert job.error.count("\n") < 3
        assert manager.events(job.id)[-2].type == "error"

    run(tmp_path, body)


@pytest.mark.slow
def test_cancel_then_resubmit_continues_from_the_checkpoint(
    tmp_path: Path, dataset: dict[str, Any]
) -> None:
    training = {**TRAINING, "epochs": 15, "batch_size": 32}
    spec = {"dataset": dataset, "model": {"name": "mlp"}, "training": training}

    async def body(manager: JobManager, executor: LocalExecutor) -> None:
        job = await manager.submit(spec)
        for _ in range(1200):  # the first finished (checkpointed) epoch
            await asyncio.sleep(0.1)
            if "epoch" in types(manager, job.id) or manager.get(job.id).state.value != "running":
                break
        pid = executor.pid(job.id)
        assert pid is not None
        assert psutil.pid_exists(pid)
        cancelled = await manager.cancel(job.id)
        assert cancelled.state is JobState.CANCELLED, manager.logs(job.id)
        assert not psutil.pid_exists(pid)
        assert executor.pid(job.id) is None
        epochs = [e.data["epoch"] for e in manager.events(job.id) if e.type == "epoch"]
        assert 1 <= epochs[-1] < 15
        assert types(manager, job.id)[-1] == "cancelled"

        again = await manager.resubmit(job.id)
        assert again.run_dir == job.run_dir
        assert again.resumed_from == job.id
        again = await manager.wait(again.id, timeout=300)
        assert again.state is JobState.SUCCEEDED, (again.error, manager.logs(again.id))
        events = manager.events(again.id)
        note = next(e.data["message"] for e in events if e.type == "note")
        resumed = int(note.rsplit(" ", 1)[-1])
        assert note.startswith("resumed from the checkpoint of epoch")
        assert resumed >= epochs[-1]
        resumed_epochs = [e.data["epoch"] for e in events if e.type == "epoch"]
        assert resumed_epochs == list(range(resumed + 1, 16))
        curves = json.loads((Path(again.run_dir or "") / "plots" / "curves.json").read_text())
        assert [h["epoch"] for h in curves["history"]] == list(range(1, 16))

    run(tmp_path, body)


def test_run_in_kernel_publishes_events_and_raises_short_errors(tmp_path: Path) -> None:
    from mlaas_jupyter.jobs.worker import EVENT_MIME, JobError, run_in_kernel

    published: list[dict[str, Any]] = []
    spec = {"dataset": {"tree": "t", "classes": {"a": ["/no/a.root"], "b": ["/no/b.root"]}}}
    with pytest.raises(JobError, match=r"^/no/a.root: no such file$"):
        run_in_kernel(json.dumps(spec), str(tmp_path / "run"), published.append)
    events = [data[EVENT_MIME] for data in published]
    assert events[0]["type"] == "start"
    assert events[-1] == {"type": "error", "message": "/no/a.root: no such file"}
    assert published[-1]["text/plain"] == "mlaas error"
    nope = json.dumps({**spec, "model": {"name": "nope"}})
    with pytest.raises(JobError, match=r"model\.name"):
        run_in_kernel(nope, str(tmp_path / "run"), published.append)
