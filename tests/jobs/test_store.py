"""`JobStore`: jobs, events and logs in SQLite, across restarts and threads."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlaas_jupyter.errors import MlaasError, NotFound, SpecError
from mlaas_jupyter.jobs import Job, JobNotFound, JobState, JobStateError, JobStore
from mlaas_jupyter.jobs.store import INTERRUPTED, default_runs_dir, default_store_path


def make_job(job_id: str, state: JobState = JobState.QUEUED, name: str = "mlp") -> Job:
    return Job(id=job_id, name=name, state=state, spec={"dataset": {}}, executor="local")


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite")


def test_create_get_list_newest_first(store: JobStore) -> None:
    for k in range(3):
        store.create(make_job(f"j{k}", name="a" if k < 2 else "b"))
    job = store.get("j1")
    assert job.state is JobState.QUEUED
    assert job.spec == {"dataset": {}}
    assert job.created > 0
    assert [j.id for j in store.list()] == ["j2", "j1", "j0"]
    assert [j.id for j in store.list(limit=2)] == ["j2", "j1"]
    assert [j.id for j in store.list(name="a")] == ["j1", "j0"]
    store.set_state("j0", JobState.RUNNING)
    assert [j.id for j in store.list(state="running")] == ["j0"]
    assert [j.id for j in store.list(state=[JobState.RUNNING, "queued"])] == ["j2", "j1", "j0"]
    with pytest.raises(SpecError, match="allowed values: queued, running"):
        store.list(state="bogus")
    with pytest.raises(JobNotFound, match="no job with id 'nope'") as info:
        store.get("nope")
    assert isinstance(info.value, NotFound)  # the web layer replies 404
    assert isinstance(info.value, MlaasError)
    assert info.value.status == 404
    with pytest.raises(JobStateError, match="exists already"):
        store.create(make_job("j0"))


def test_transitions_are_enforced(store: JobStore) -> None:
    store.create(make_job("a"))
    running = store.set_state("a", JobState.RUNNING)
    assert running.started is not None
    assert running.finished is None
    failed = store.set_state("a", "failed", error="boom")
    assert failed.state is JobState.FAILED
    assert failed.error == "boom"
    assert failed.finished
    with pytest.raises(JobStateError, match="job a is failed and cannot become running"):
        store.set_state("a", JobState.RUNNING)
    assert store.update("a", bundle="/x/bundle", metrics={"auc": 0.9}).metrics == {"auc": 0.9}
    with pytest.raises(ValueError, match="cannot update job field"):
        store.update("a", state="queued")


def test_events_are_numbered_and_keep_progress(store: JobStore) -> None:
    store.create(make_job("a"))
    store.create(make_job("b"))
    first = store.append_event("a", {"type": "start", "run_dir": "/r"})
    store.append_event("b", {"type": "start"})
    store.append_event("a", {"type": "epoch", "epoch": 1, "loss": 0.5, "seq": 99})
    store.append_event("a", {"type": "note", "message": "hi"})
    assert first.seq == 1
    assert first.to_dict()["run_dir"] == "/r"
    events = store.events("a")
    assert [(e.seq, e.type) for e in events] == [(1, "start"), (2, "epoch"), (3, "note")]
    assert events[1].data == {"epoch": 1, "loss": 0.5}  # reserved keys are not payload
    assert [e.seq for e in store.events("a", since=1)] == [2, 3]
    assert [e.seq for e in store.events("a", since=1, limit=1)] == [2]
    job = store.get("a")
    assert job.events == 3
    assert job.progress == {"type": "epoch", "epoch": 1, "loss": 0.5}
    with pytest.raises(JobNotFound):
        store.events("nope")


def test_logs_are_bounded(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite", log_limit=10)
    store.create(make_job("a"))
    assert store.logs("a") == ""
    store.append_log("a", "hello\n")
    store.append_log("a", "world\n")
    assert store.logs("a") == "llo\nworld\n"
    store.append_log("a", "x" * 50)
    assert store.logs("a") == "x" * 10
    with pytest.raises(JobNotFound):
        store.append_log("nope", "text")


def test_history_survives_a_restart_and_interrupted_jobs_become_lost(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store = JobStore(path)
    for job_id, state in (("r", JobState.RUNNING), ("q", JobState.QUEUED), ("d", None)):
        store.create(make_job(job_id))
        if state is JobState.RUNNING:
            store.set_state(job_id, state)
    store.set_state("d", JobState.CANCELLED)
    store.append_event("r", {"type": "epoch", "epoch": 2})
    store.append_log("r", "some output\n")
    store.close()

    again = JobStore(path)
    lost = again.mark_interrupted()
    assert sorted(j.id for j in lost) == ["q", "r"]
    running = again.get("r")
    assert running.state is JobState.LOST
    assert running.error == INTERRUPTED
    assert again.get("q").error == "the server stopped before the job started"
    assert again.get("d").state is JobState.CANCELLED
    assert [e.type for e in again.events("r")] == ["epoch", "state"]
    assert again.events("r")[-1].data == {"state": "lost", "error": INTERRUPTED}
    assert again.logs("r") == "some output\n"
    assert again.mark_interrupted() == []


def test_jobs_of_a_live_process_are_not_marked_lost(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    code = (
        "import sys, time; from mlaas_jupyter.jobs import Job, JobState, JobStore; "
        "s = JobStore(sys.argv[1]); "
        "s.create(Job(id='other', name='x', state=JobState.QUEUED, spec={}, executor='local')); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        store = JobStore(path)
        assert store.mark_interrupted() == []
        assert not store.orphaned("other")
    finally:
        proc.kill()
        proc.wait()
    assert store.orphaned("other")
    assert [j.id for j in store.mark_interrupted()] == ["other"]


def test_threads_share_one_store(store: JobStore) -> None:
    store.create(make_job("a"))

    def work() -> None:
        for _ in range(50):
            store.append_event("a", {"type": "progress"})
            store.append_log("a", "x")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e.seq for e in store.events("a")] == list(range(1, 201))
    assert store.get("a").events == 200
    assert store.logs("a") == "x" * 200


def test_default_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLAAS_JOB_STORE", raising=False)
    monkeypatch.delenv("MLAAS_RUNS_DIR", raising=False)
    assert default_store_path() == tmp_path / "data" / "mlaas" / "jobs.sqlite"
    assert default_runs_dir() == tmp_path / "data" / "mlaas" / "runs"
    monkeypatch.setenv("MLAAS_JOB_STORE", str(tmp_path / "s.sqlite"))
    monkeypatch.setenv("MLAAS_RUNS_DIR", str(tmp_path / "runs"))
    assert default_store_path() == tmp_path / "s.sqlite"
    assert default_runs_dir() == tmp_path / "runs"


def test_the_write_ahead_log_is_checkpointed_by_a_thread_not_by_commits(tmp_path: Path) -> None:
    """A commit on the server's event loop never pays for a checkpoint (a disk sync):
    the store's connection makes none, its own thread does them."""
    import time

    path = tmp_path / "jobs.sqlite"
    store = JobStore(path)
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    checkpointer = store._checkpointer
    assert checkpointer is not None
    checkpointer.close()  # commits alone now: the database file must not change
    assert not checkpointer._thread.is_alive()
    before = path.stat().st_size
    store.create(make_job("j1"))
    for k in range(1200):  # some 3000 pages: SQLite's default checkpoints at 1000
        store.append_event("j1", {"type": "progress", "batch": k})
    assert path.stat().st_size == before
    store.close()

    store = JobStore(path)  # (the last close checkpointed); its thread copies the log
    before = path.stat().st_size
    for k in range(1200, 2400):
        store.append_event("j1", {"type": "progress", "batch": k})
    deadline = time.monotonic() + 60
    while path.stat().st_size == before:
        assert time.monotonic() < deadline, "no checkpoint in 60 s"
        time.sleep(0.05)
    assert [e.data["batch"] for e in store.events("j1")] == list(range(2400))
    store.close()
