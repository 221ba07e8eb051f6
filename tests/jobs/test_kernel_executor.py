"""Real training jobs in Jupyter kernels with no Jupyter server: `KernelExecutor` on a
plain `jupyter_client` `AsyncMultiKernelManager` (what the in-process core uses)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from example_data import example_dataset_spec
from jupyter_client.multikernelmanager import AsyncMultiKernelManager

from mlaas_jupyter.jobs import JobManager, JobState, JobStore
from mlaas_jupyter.jobs.executors.kernel import KernelExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

pytestmark = pytest.mark.slow  # each job starts a kernel


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A tiny toy dataset (500 events per class) as a spec mapping with absolute paths."""
    yield from example_dataset_spec(tmp_path_factory, events_per_file=500)


def _spec(dataset: dict[str, Any]) -> dict[str, Any]:
    training = {"epochs": 1, "batch_size": 256, "device": "cpu", "early_stopping": None}
    return {"dataset": dataset, "model": {"name": "mlp"}, "training": training}


async def _run_one(
    tmp_path: Path, executor: KernelExecutor, spec: dict[str, Any]
) -> tuple[JobManager, Any]:
    store = JobStore(tmp_path / "jobs.sqlite")
    manager = JobManager(
        store, {"kernel": executor}, default_executor="kernel", runs_dir=tmp_path / "runs"
    )
    try:
        job = await manager.submit(spec, name="toy")
        return manager, await manager.wait(job.id, timeout=300)
    finally:
        await manager.shutdown()


def test_a_job_trains_in_a_kernel_of_a_plain_multikernel_manager(
    tmp_path: Path, dataset: dict[str, Any]
) -> None:
    async def main() -> None:
        kernels = AsyncMultiKernelManager()
        executor = KernelExecutor(kernel_manager=kernels)
        manager, job = await _run_one(tmp_path, executor, _spec(dataset))
        assert job.state is JobState.SUCCEEDED, (job.error, manager.logs(job.id))
        events = manager.events(job.id)
        kinds = [e.type for e in events if e.type not in ("progress", "state", "log", "note")]
        assert kinds == ["kernel", "start", "stats", "model", "epoch", "test", "report", "done"]
        kernel = next(e.data for e in events if e.type == "kernel")
        assert kernel["kernel_name"] == "python3"
        assert kernel["kernel_id"] not in kernels.list_kernel_ids()  # shut down at the end
        assert kernels.list_kernel_ids() == []
        assert (Path(job.bundle) / "manifest.json").is_file()
        assert job.metrics["auc"] > 0.6

    asyncio.run(main())


def test_without_a_manager_the_executor_starts_its_own_and_closes_it(
    tmp_path: Path, dataset: dict[str, Any]
) -> None:
    bad = _spec({**dataset, "classes": {"background": ["/no/such/b.root"], "signal": ["/no/s"]}})

    async def main() -> None:
        executor = KernelExecutor()
        manager, job = await _run_one(tmp_path, executor, bad)
        assert job.state is JobState.FAILED
        assert "/no/such/b.root" in str(job.error), manager.logs(job.id)
        assert "Traceback" not in str(job.error)
        assert [e.type for e in manager.events(job.id)].count("kernel") == 1  # it ran in one
        # the manager's shutdown closed the executor: the kernel manager it made is gone
        assert executor.kernel_manager is None

    asyncio.run(main())
