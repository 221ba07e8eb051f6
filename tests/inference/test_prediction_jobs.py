"""Batch prediction jobs: PredictSpec, run_prediction, the job kind, the store migration,
and real jobs through `JobManager` with the local (subprocess) and dask executors."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
from toy_bundles import write_example_bundle

from mlaas_jupyter.errors import DataError, SpecError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.inference.batch import run_prediction
from mlaas_jupyter.jobs import JobManager, JobState, JobStore
from mlaas_jupyter.jobs.executors.local import LocalExecutor
from mlaas_jupyter.jobs.models import Job
from mlaas_jupyter.jobs.store import SCHEMA_VERSION
from mlaas_jupyter.specs import PredictSpec


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example dataset (2000 events per file, 1 file per class) and its bundle."""
    data = tmp_path_factory.mktemp("predict-data")
    write_example_dataset(data, events_per_file=2000, files_per_class=1)
    bundle = write_example_bundle(tmp_path_factory.mktemp("predict-bundle") / "bundle")
    return {"data": data, "bundle": bundle}


def spec(example: dict[str, Path], out: Path, **extra: Any) -> dict[str, Any]:
    files = [str(example["data"] / "*.root")]
    task = {"bundle": str(example["bundle"]), "files": files, "output": str(out), **extra}
    return {"predict": task}


def check_friend_trees(example: dict[str, Path], out: Path, prefix: str = "score") -> None:
    """Every input has its friend tree: same tree name and entries, the bundle's scores."""
    bundle = load_bundle(example["bundle"])
    for stem in ("background_0", "signal_0"):
        source = example["data"] / f"{stem}.root"
        with uproot.open(out / f"{stem}_{prefix}.root") as handle:
            tree = handle["Events"]
            assert tree.num_entries == uproot.open(source)["Events"].num_entries == 2000
            scores = tree[prefix].array(library="np")
        np.testing.assert_array_equal(scores, bundle.predict(str(source)).astype(np.float32))


def leftovers(folder: Path) -> list[str]:
    """Every file in ``folder`` (hidden ones too): what a failed job left behind."""
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# -- PredictSpec -----------------------------------------------------------------------


def test_spec_round_trip_and_checks(tmp_path: Path) -> None:
    data = {"bundle": "b", "files": "x/*.root", "output": "out", "step_size": 100}
    checked = PredictSpec.from_dict(data, base_dir=tmp_path)
    assert checked.files == (str(tmp_path / "x/*.root"),)
    assert checked.bundle == str(tmp_path / "b")
    assert PredictSpec.from_dict(checked.to_dict()["predict"]) == checked
    assert checked.job_name() == "predict-b"
    assert PredictSpec.from_dict({**data, "model": "higgs"}).job_name() == "predict-higgs"
    remote = PredictSpec.from_dict({**data, "files": ["root://eos//a.root"]}, base_dir=tmp_path)
    assert remote.files == ("root://eos//a.root",)
    for bad, field in [
        ({"files": "a", "output": "o"}, "predict.bundle"),
        ({**data, "files": []}, "predict.files"),
        ({**data, "step_size": 0}, "predict.step_size"),
        ({**data, "step_size": True}, "predict.step_size"),
        ({**data, "version": 0}, "predict.version"),
        ({**data, "colour": "red"}, "predict"),
    ]:
        with pytest.raises(SpecError) as info:
            PredictSpec.from_dict(bad)
        assert info.value.field.startswith(field), (bad, info.value)


def test_outputs_are_one_per_input_and_never_collide() -> None:
    folder = PredictSpec.from_dict({"bundle": "b", "files": ["a"], "output": "/o"})
    assert folder.outputs_for(["/d/x.root", "/e/y.root"]) == [
        Path("/o/x_score.root"),
        Path("/o/y_score.root"),
    ]
    with pytest.raises(SpecError, match="would both write"):
        folder.outputs_for(["/d/x.root", "/e/x.root"])
    single = PredictSpec.from_dict({"bundle": "b", "files": ["a"], "output": "/o/s.root"})
    assert single.outputs_for(["/d/x.root"]) == [Path("/o/s.root")]
    with pytest.raises(SpecError, match="2 files match"):
        single.outputs_for(["/d/x.root", "/d/y.root"])


# -- run_prediction (in this process) --------------------------------------------------


def test_run_prediction_writes_friend_trees_with_progress(
    example: dict[str, Path], tmp_path: Path
) -> None:
    events: list[dict[str, Any]] = []
    done = run_prediction(spec(example, tmp_path / "out", step_size=300), events.append)
    check_friend_trees(example, tmp_path / "out")
    assert done["outputs"] == [
        str(tmp_path / "out" / "background_0_score.root"),
        str(tmp_path / "out" / "signal_0_score.root"),
    ]
    assert done["metrics"]["entries"] == 4000
    assert leftovers(tmp_path / "out") == ["background_0_score.root", "signal_0_score.root"]
    start = events[0]
    assert (start["type"], start["events_total"], start["files"]) == ("start", 4000, 2)
    progress = [e for e in events if e["type"] == "progress"]
    done_counts = [e["events"] for e in progress]
    assert done_counts == sorted(done_counts)
    assert done_counts[-1] == 4000
    assert progress[-1]["fraction"] == 1.0
    assert all(e["events_total"] == 4000 for e in progress)
    assert events[-1] is done


def test_single_output_file_and_prefix(example: dict[str, Path], tmp_path: Path) -> None:
    data = spec(example, tmp_path / "one.root", prefix="nn")
    data["predict"]["files"] = [str(example["data"] / "signal_0.root")]
    done = run_prediction(data, lambda event: None)
    assert done["outputs"] == [str(tmp_path / "one.root")]
    bundle = load_bundle(example["bundle"])
    with uproot.open(tmp_path / "one.root") as handle:
        scores = handle["Events"]["nn"].array(library="np")
    np.testing.assert_array_equal(scores, bundle.predict(str(example["data"] / "signal_0.root")))


def test_missing_inputs_fail_before_anything_is_written(
    example: dict[str, Path], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(example["data"], data)
    with uproot.recreate(data / "zz_other.root") as handle:
        handle.mktree("Events", {"x": np.float32}).extend({"x": np.zeros(5, np.float32)})
    task = spec(example, tmp_path / "out")
    task["predict"]["files"] = [str(data / "*.root")]
    events: list[dict[str, Any]] = []
    with pytest.raises(DataError, match="lacks input branches of the model: MET_pt"):
        run_prediction(task, events.append)
    assert events == []
    assert leftovers(tmp_path / "out") == []


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_a_stopped_prediction_leaves_no_output(
    example: dict[str, Path], tmp_path: Path, stop: type[BaseException]
) -> None:
    """A cancellation (KeyboardInterrupt from the worker's emit) or a failure in the
    second file: the complete first friend tree is not left under its name either."""

    def emit(event: dict[str, Any]) -> None:
        if event["type"] == "progress" and event["files_done"] == 1:
            raise stop("stop here")

    with pytest.raises(stop):
        run_prediction(spec(example, tmp_path / "out", step_size=500), emit)
    assert leftovers(tmp_path / "out") == []


def test_an_existing_output_is_replaced_only_on_success(
    example: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "signal_0_score.root").write_text("an older friend tree")

    def emit(event: dict[str, Any]) -> None:
        if event["type"] == "progress":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        run_prediction(spec(example, out), emit)
    assert (out / "signal_0_score.root").read_text() == "an older friend tree"
    run_prediction(spec(example, out), lambda event: None)
    check_friend_trees(example, out)


# -- the job record and the store --------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,
    created REAL NOT NULL, owner TEXT NOT NULL DEFAULT '', data TEXT NOT NULL);
CREATE INDEX jobs_created ON jobs (created);
CREATE TABLE events (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL,
    type TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (job_id, seq)) WITHOUT ROWID;
CREATE TABLE logs (job_id TEXT PRIMARY KEY, text TEXT NOT NULL);
"""


def _old_row(job_id: str, spec: dict[str, Any], created: float) -> tuple[Any, ...]:
    """A job row as the first schema stored it (no kind, no outputs in its data)."""
    data = {
        "id": job_id,
        "name": job_id,
        "state": "succeeded",
        "spec": spec,
        "executor": "local",
        "created": created,
        "metrics": {"auc": 0.8},
        "events": 1,
    }
    return (job_id, job_id, "succeeded", created, "gone-host:1", json.dumps(data))


def test_an_old_store_is_migrated_and_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    rows = [
        _old_row("train1", {"dataset": {}, "model": {"name": "mlp"}}, 1.0),
        _old_row("pred1", {"predict": {"bundle": "b", "files": ["f"], "output": "o"}}, 2.0),
    ]
    conn.executemany("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.execute("INSERT INTO events VALUES ('train1', 1, 1.0, 'state', '{}')")
    conn.execute("INSERT INTO logs VALUES ('train1', 'hello')")
    conn.commit()
    conn.close()

    store = JobStore(path)
    try:
        assert [j.id for j in store.list()] == ["pred1", "train1"]
        assert (store.get("train1").kind, store.get("pred1").kind) == ("train", "predict")
        assert store.get("train1").metrics == {"auc": 0.8}
        assert store.get("pred1").outputs == []
        assert [j.id for j in store.list(kind="predict")] == ["pred1"]
        assert [j.id for j in store.list(kind="train")] == ["train1"]
        assert [e.type for e in store.events("train1")] == ["state"]
        assert store.logs("train1") == "hello"
        store.create(Job("new1", "new1", JobState.QUEUED, {"predict": {}}, "local", kind="predict"))
        assert [j.id for j in store.list(kind="predict")] == ["new1", "pred1"]
        with pytest.raises(SpecError, match="unknown job kind"):
            store.list(kind="sweep")
    finally:
        store.close()
    again = JobStore(path)  # a second opening migrates nothing more
    try:
        assert [j.id for j in again.list(kind="predict")] == ["new1", "pred1"]
    finally:
        again.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_new_store_has_the_kind_column(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "new.sqlite")
    try:
        store.create(Job("t", "t", JobState.QUEUED, {"dataset": {}}, "local"))
        assert store.get("t").kind == "train"
        assert store.get("t").to_dict()["kind"] == "train"
    finally:
        store.close()


# -- real jobs ---------------------------------------------------------------------------

Body = Callable[[JobManager], Any]


def run_manager(tmp_path: Path, executors: dict[str, Any], body: Body) -> None:
    async def main() -> None:
        store = JobStore(tmp_path / "jobs.sqlite")
        default = next(iter(executors))
        manager = JobManager(store, executors, default_executor=default, runs_dir=tmp_path / "r")
        try:
            await body(manager)
        finally:
            await manager.shutdown()
            store.close()

    asyncio.run(main())


@pytest.mark.slow
def test_a_prediction_job_in_a_subprocess(example: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def body(manager: JobManager) -> None:
        job = await manager.submit(spec(example, out, step_size=250))
        assert (job.kind, job.name, job.state) == ("predict", "predict-bundle", JobState.QUEUED)
        done = await manager.wait(job.id, timeout=180)
        assert done.state is JobState.SUCCEEDED, (done.error, manager.logs(job.id))
        names = ["background_0_score.root", "signal_0_score.root"]
        assert done.outputs == [str(out / name) for name in names]
        assert (done.metrics["entries"], done.metrics["files"]) == (4000, 2)
        assert done.progress["events"] == done.progress["events_total"] == 4000
        assert [j.id for j in manager.list(kind="predict")] == [job.id]
        assert manager.list(kind="train") == []
        types = [e.type for e in manager.events(job.id)]
        assert types[:3] == ["state", "state", "start"]
        assert types[-2:] == ["done", "state"]
        check_friend_trees(example, out)
        # the same spec fails in a new job when a file lacks the inputs, writing nothing
        bad = tmp_path / "bad"
        bad.mkdir()
        with uproot.recreate(bad / "b.root") as handle:
            handle.mktree("Events", {"x": np.float32}).extend({"x": np.zeros(5, np.float32)})
        broken = spec(example, tmp_path / "out2")
        broken["predict"]["files"] = [str(bad / "b.root")]
        failed = await manager.wait((await manager.submit(broken)).id, timeout=180)
        assert failed.state is JobState.FAILED
        assert "lacks input branches of the model: MET_pt" in str(failed.error)
        assert leftovers(tmp_path / "out2") == []

    run_manager(tmp_path, {"local": LocalExecutor(grace=20.0)}, body)


@pytest.mark.slow
def test_a_cancelled_prediction_job_leaves_no_output(
    example: dict[str, Path], tmp_path: Path
) -> None:
    """Entry by entry (step_size 1), so that the job is still writing when it is cancelled."""
    out = tmp_path / "out"

    async def body(manager: JobManager) -> None:
        job = await manager.submit(spec(example, out, step_size=1))
        for _ in range(600):
            if any(e.type == "progress" for e in manager.events(job.id)):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"no progress: {manager.logs(job.id)}")
        cancelled = await manager.cancel(job.id)
        assert cancelled.state is JobState.CANCELLED
        assert cancelled.outputs == []
        assert leftovers(out) == []

    run_manager(tmp_path, {"local": LocalExecutor(grace=20.0)}, body)


@pytest.mark.slow
def test_a_prediction_job_on_a_dask_cluster(example: dict[str, Path], tmp_path: Path) -> None:
    from mlaas_jupyter.jobs.executors.dask import DaskExecutor

    out = tmp_path / "out"

    async def body(manager: JobManager) -> None:
        job = await manager.wait((await manager.submit(spec(example, out))).id, timeout=300)
        assert job.state is JobState.SUCCEEDED, (job.error, manager.logs(job.id))
        assert len(job.outputs) == 2
        check_friend_trees(example, out)

    run_manager(tmp_path, {"dask": DaskExecutor()}, body)
