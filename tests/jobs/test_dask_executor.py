"""Real training jobs through `JobManager` and `DaskExecutor` on a LocalCluster."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.jobs import JobManager, JobState, JobStore
from mlaas_jupyter.jobs.executors.dask import DaskExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

TRAINING = {"epochs": 2, "batch_size": 256, "device": "cpu", "early_stopping": None}


@pytest.mark.slow
def test_jobs_on_a_local_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))  # the workers inherit it
    path = write_example_dataset(tmp_path / "data", events_per_file=2000, files_per_class=1)
    dataset = yaml.safe_load(path.read_text())
    dataset["classes"] = {
        k: [str(path.parent / g) for g in v] for k, v in dataset["classes"].items()
    }
    spec: dict[str, Any] = {"dataset": dataset, "model": {"name": "mlp"}, "training": TRAINING}
    executor = DaskExecutor()

    async def main() -> None:
        store = JobStore(tmp_path / "jobs.sqlite")
        manager = JobManager(
            store, {"dask": executor}, default_executor="dask", runs_dir=tmp_path / "runs"
        )
        try:
            job = await manager.wait((await manager.submit(spec)).id, timeout=300)
            assert job.state is JobState.SUCCEEDED, (job.error, manager.logs(job.id))
            kinds = [e.type for e in manager.events(job.id) if e.type not in ("progress", "note")]
            assert kinds == [
                *("state", "state", "start", "stats", "model", "epoch", "epoch"),
                *("test", "report", "done", "state"),
            ]
            assert job.bundle
            assert (Path(job.bundle) / "manifest.json").is_file()
            assert job.metrics["auc"] > 0.7

            broken = {**dataset, "classes": {"a": ["/no/such/a.root"], "b": ["/no/b.root"]}}
            failed = await manager.submit({**spec, "dataset": broken})
            failed = await manager.wait(failed.id, timeout=300)
            assert failed.state is JobState.FAILED
            assert failed.error == "/no/such/a.root: no such file"

            long = {**spec, "training": {**TRAINING, "epochs": 200, "batch_size": 32}}
            running = await manager.submit(long)
            for _ in range(600):
                await asyncio.sleep(0.1)
                if any(e.type == "epoch" for e in manager.events(running.id)):
                    break
            cancelled = await manager.cancel(running.id)
            assert cancelled.state is JobState.CANCELLED
            assert [e.type for e in manager.events(running.id)][-2:] == ["cancelled", "state"]
        finally:
            await manager.shutdown()  # closes the cluster

    asyncio.run(main())
    assert executor._cluster is None
