"""`JobManager` logic with a fake executor: queue, states, events, cancel, resume.

The fake executor's behaviour follows the job name: ``ok`` finishes at once, ``wait``
waits until released (or cancelled), ``fail`` raises JobFailed, ``boom`` raises an
unexpected exception, ``thread`` emits its events from a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.jobs import (
    Job,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobManager,
    JobState,
    JobStateError,
    JobStore,
)
from mlaas_jupyter.jobs.executors.base import EmitEvent
from mlaas_jupyter.specs.training import TrainSpec

SPEC: dict[str, Any] = {
    "dataset": {
        "tree": "Events",
        "classes": {"a": ["/data/a.root"], "b": ["/data/b.root"]},
        "branches": ["x"],
    },
    "training": {"epochs": 2},
}


class FakeExecutor:
    name = "fake"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, job_id: str) -> asyncio.Event:
        return self.gates.setdefault(job_id, asyncio.Event())

    async def run(self, job: Job, emit: EmitEvent) -> dict[str, Any]:
        self.started.append(job.id)
        events = [
            {"type": "start", "run_dir": job.run_dir},
            {"type": "log", "text": "hello\n"},
            {"type": "epoch", "epoch": 1, "loss": 0.5},
        ]
        if job.name == "thread":
            await asyncio.to_thread(lambda: [emit(e) for e in events])
            await asyncio.sleep(0.05)  # the loop stores them (call_soon_threadsafe)
        else:
            for event in events:
                emit(event)
        if job.name == "wait":
            await self.gate(job.id).wait()
        if job.id in self.cancelled:
            raise JobCancelled("cancelled")
        if job.name == "fail":
            raise JobFailed("the data are bad")
        if job.name == "boom":
            raise RuntimeError("kaput")
        done = {"type": "done", "bundle": f"{job.run_dir}/bundle", "metrics": {"auc": 0.9}}
        emit(done)
        return done

    async def cancel(self, job: Job) -> None:
        self.cancelled.append(job.id)
        self.gate(job.id).set()


Body = Callable[[JobManager, FakeExecutor], Coroutine[Any, Any, None]]


def run(tmp_path: Path, body: Body, **options: Any) -> JobStore:
    store = JobStore(tmp_path / "jobs.sqlite")
    executor = FakeExecutor()

    async def main() -> None:
        manager = JobManager(
            store,
            {"fake": executor},
            default_executor="fake",
            runs_dir=tmp_path / "runs",
            **options,
        )
        await body(manager, executor)
        await manager.shutdown()

    asyncio.run(main())
    return store


def test_queue_limit_and_submission_order(tmp_path: Path) -> None:
    async def body(manager: JobManager, executor: FakeExecutor) -> None:
        jobs = [await manager.submit(SPEC, name="wait") for _ in range(3)]
        await asyncio.sleep(0.01)
        ids = [j.id for j in jobs]
        assert [manager.get(i).state for i in ids] == [
            JobState.RUNNING,
            JobState.QUEUED,
            JobState.QUEUED,
        ]
        assert jobs[0].run_dir == str(tmp_path / "runs" / ids[0])
        for job_id in ids:
            executor.gate(job_id).set()
            assert (await manager.wait(job_id, timeout=5)).state is JobState.SUCCEEDED
        assert executor.started == ids
        done = manager.get(ids[0])
        assert done.bundle == f"{done.run_dir}/bundle"
        assert done.metrics == {"auc": 0.9}
        assert done.started
        assert done.finished
        assert done.finished >= done.started

    run(tmp_path, body, max_concurrent=1)


def test_cancel_queued_running_and_finished(tmp_path: Path) -> None:
    async def body(manager: JobManager, executor: FakeExecutor) -> None:
        running = await manager.submit(SPEC, name="wait")
        queued = await manager.submit(SPEC, name="wait")
        await asyncio.sleep(0.01)
        assert (await manager.cancel(queued.id)).state is JobState.CANCELLED
        assert (await manager.cancel(running.id)).state is JobState.CANCELLED
        assert executor.started == [running.id]
        assert executor.cancelled == [running.id]
        with pytest.raises(JobStateError, match="has already finished"):
            await manager.cancel(running.id)
        states = [e.data["state"] for e in manager.events(queued.id) if e.type == "state"]
        assert states == ["queued", "cancelled"]

    run(tmp_path, body, max_concurrent=1)


def test_failures_are_stored_and_the_manager_goes_on(tmp_path: Path) -> None:
    async def body(manager: JobManager, executor: FakeExecutor) -> None:
        failed = await manager.submit(SPEC, name="fail")
        broken = await manager.submit(SPEC, name="boom")
        fine = await manager.submit(SPEC, name="ok")
        assert (await manager.wait(failed.id, timeout=5)).error == "the data are bad"
        job = await manager.wait(broken.id, timeout=5)
        assert job.state is JobState.FAILED
        assert job.error == "internal error: RuntimeError: kaput"
        assert (await manager.wait(fine.id, timeout=5)).state is JobState.SUCCEEDED
        last = manager.events(failed.id)[-1]
        assert last.type == "state"
        assert last.data == {
            "state": "failed",
            "error": "the data are bad",
        }

    run(tmp_path, body)


@pytest.mark.parametrize("name", ["ok", "thread"])
def test_events_are_stored_in_order_and_forwarded(tmp_path: Path, name: str) -> None:
    seen: list[tuple[JobEvent, Job]] = []

    async def body(manager: JobManager, executor: FakeExecutor) -> None:
        job = await manager.submit(SPEC, name=name)
        await manager.wait(job.id, timeout=5)
        events = manager.events(job.id)
        assert [(e.seq, e.type) for e in events] == [
            (1, "state"),
            (2, "state"),
            (3, "start"),
            (4, "epoch"),
            (5, "done"),
            (6, "state"),
        ]
        assert [e.data["state"] for e in events if e.type == "state"] == [
            "queued",
            "running",
            "succeeded",
        ]
        assert [e.seq for e in manager.events(job.id, since=4)] == [5, 6]
        assert [(e.seq, e.type) for e, _ in seen] == [(e.seq, e.type) for e in events]
        assert seen[-1][1].state is JobState.SUCCEEDED
        assert seen[3][1].events == 4
        assert manager.logs(job.id) == "hello\n"
        assert manager.get(job.id).progress == {"type": "epoch", "epoch": 1, "loss": 0.5}

    run(tmp_path, body, on_event=lambda event, job: seen.append((event, job)))


def test_a_failing_event_listener_does_not_break_the_job(tmp_path: Path) -> None:
    def listener(event: JobEvent, job: Job) -> None:
        raise RuntimeError("listener bug")

    async def body(manager: JobManager, executor: FakeExecutor) -> None:
        job = await manager.submit(SPEC, name="ok")
        assert (await manager.wait(job.id, timeout=5)).state is JobState.SUCCEEDED

    run(tmp_path, body, on_event=listener)


def test_resubmit_resumes_in_the_same_run_dir(tmp_path: Path) -> None:
    async def body(manager: JobManager, executor: FakeExecutor) -> None:
        old = await manager.wait((await manager.submit(SPEC, name="fail")).id, timeout=5)
        new = await manager.resubmit(old.id)
        assert new.id != old.id
        assert new.resumed_from == old.id
        assert new.run_dir == old.run_dir
        assert new.spec["training"]["resume"] is True
        assert new.spec["training"]["epochs"] == 2
        assert old.spec["training"]["resume"] is False
        assert new.name == old.name
        assert new.executor == "fake"
        with pytest.raises(JobStateError, match="only lost, failed or cancelled"):
            await manager.resubmit(new.id)  # queued or running
        await manager.wait(new.id, timeout=5)
        ok = await manager.wait((await manager.submit(SPEC, name="ok")).id, timeout=5)
        with pytest.raises(JobStateError, match="is succeeded"):
            await manager.resubmit(ok.id)

    run(tmp_path, body)


def test_submit_validates(tmp_path: Path) -> None:
    def refuse(spec: TrainSpec) -> None:
        if any("forbidden" in f for c in spec.dataset.classes for f in c.files):
            raise SpecError("dataset.classes", "outside the data folders")

    async def body(manager: JobManager, executor: FakeExecutor) -> None:
        with pytest.raises(
            SpecError, match="executor: unknown executor 'gpu'; allowed values: fake"
        ):
            await manager.submit(SPEC, executor="gpu")
        with pytest.raises(SpecError, match="dataset"):
            await manager.submit({"model": {"name": "mlp"}})
        bad = {
            **SPEC,
            "dataset": {
                **SPEC["dataset"],
                "classes": {"a": ["/forbidden/a.root"], "b": ["/data/b.root"]},
            },
        }
        with pytest.raises(SpecError, match="outside the data folders"):
            await manager.submit(bad)
        assert manager.list() == []
        job = await manager.submit(TrainSpec.from_dict(SPEC), kernel_name="python3")
        assert job.kernel_name == "python3"
        assert job.name == "mlp"

    run(tmp_path, body, check_spec=refuse)


def test_wait_times_out(tmp_path: Path) -> None:
    async def body(manager: JobManager, executor: FakeExecutor) -> None:
        job = await manager.submit(SPEC, name="wait")
        with pytest.raises(TimeoutError, match="still running"):
            await manager.wait(job.id, timeout=0.2)

    run(tmp_path, body)


def test_shutdown_and_recovery_make_jobs_lost(tmp_path: Path) -> None:
    async def first(manager: JobManager, executor: FakeExecutor) -> None:
        await manager.submit(SPEC, name="wait")
        await manager.submit(SPEC, name="wait")
        await asyncio.sleep(0.01)

    store = run(tmp_path, first, max_concurrent=1)
    states = [(j.state, j.error) for j in store.list()]
    assert states == [
        (JobState.LOST, "the server stopped before the job started"),
        (JobState.LOST, "the server stopped while the job was running"),
    ]
    # a crash: the job stays "running" in the store until the next start
    crashed = Job(id="crash", name="ok", state=JobState.QUEUED, spec=SPEC, executor="fake")
    store.create(crashed)
    store.set_state("crash", JobState.RUNNING)

    async def second(manager: JobManager, executor: FakeExecutor) -> None:
        assert [j.id for j in manager.recover()] == ["crash"]
        assert manager.get("crash").state is JobState.LOST
        again = await manager.resubmit("crash")
        assert (await manager.wait(again.id, timeout=5)).state is JobState.SUCCEEDED

    run(tmp_path, second)
