"""Data-parallel training (``training.workers > 1``) for real: two ranks as local
processes (gloo) or as tasks on a dask LocalCluster, one bundle, failures and cancels.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from mlaas_jupyter.errors import TrainingError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.inference.bundle import load_bundle
from mlaas_jupyter.jobs import JobManager, JobState, JobStore
from mlaas_jupyter.jobs.executors.local import LocalExecutor
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.train.runner import TrainResult, train

TRAINING: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 128,
    "learning_rate": 3e-3,
    "device": "cpu",
    "early_stopping": None,
}
RANK = "mlaas_jupyter.train._ddp_rank"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("example")
    path = write_example_dataset(folder, events_per_file=3000, files_per_class=1)
    return folder, yaml.safe_load(path.read_text())


def example_spec(
    example: tuple[Path, dict[str, Any]], tmp_path: Path, model: Any = None, **training: Any
) -> TrainSpec:
    folder, dataset = example
    return TrainSpec.from_dict(
        {
            "dataset": dataset,
            "model": model or {"name": "mlp"},
            "training": {**TRAINING, "output": str(tmp_path / "runs"), **training},
        },
        folder,
    )


def run(spec: TrainSpec, tmp_path: Path) -> tuple[TrainResult, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    def sink(event: dict[str, Any]) -> None:
        json.dumps(event)
        events.append(event)

    return train(spec, on_event=sink, cache=tmp_path / "cache"), events


@pytest.mark.slow
def test_two_local_ranks_write_one_bundle_as_good_as_one_process(
    example: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    single, _ = run(example_spec(example, tmp_path), tmp_path)
    result, events = run(example_spec(example, tmp_path, workers=2), tmp_path)
    kinds = [e["type"] for e in events if e["type"] != "progress"
             and not e.get("message", "").startswith("overtraining:")]  # fmt: skip
    assert kinds == [
        *("start", "stats", "note", "model", "epoch", "epoch", "epoch", "test", "report", "done")
    ]
    model = next(e for e in events if e["type"] == "model")
    assert (model["workers"], model["process_group"], model["device"]) == (2, "gloo", "cpu")
    train_events = events[1]["events"]["train"]
    assert [e["events"] for e in events if e["type"] == "epoch"] == [train_events] * 3
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert set(result.metrics) == set(single.metrics)
    assert result.metrics["events"] == single.metrics["events"]  # the whole test split
    assert abs(result.metrics["auc"] - single.metrics["auc"]) < 0.02
    assert result.metrics["auc"] > 0.85
    assert result.bundle == result.run_dir / "bundle"
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert manifest["training"]["workers"] == 2
    assert manifest["metrics"]["auc"] == result.metrics["auc"]
    assert sorted(p.name for p in result.plots) == sorted(p.name for p in single.plots)
    assert all(p.is_file() for p in result.plots)
    progress = json.loads((result.run_dir / "checkpoint" / "progress.json").read_text())
    assert progress["epoch"] == 3
    assert not list(result.run_dir.rglob("*.partial"))
    bundle = load_bundle(result.bundle)
    assert bundle.manifest["backend"] == "torch"


FAILING_MODEL = """
import os, signal
import torch, torch.distributed as dist

class Net(torch.nn.Module):
    def __init__(self, idim):
        super().__init__()
        self.layer = torch.nn.Linear(idim, 1)
        self.steps = 0

    def forward(self, x):
        if self.training and dist.is_initialized() and dist.get_rank() == 1:
            self.steps += 1
            if self.steps == 3:
                {action}
        return self.layer(x)

def model(idim):
    return Net(idim)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("raise ValueError('rank one cannot go on')", "rank 1 of 2 failed: ValueError: rank one"),
        ("os.kill(os.getpid(), signal.SIGKILL)", "rank 1 of 2 stopped: its process was killed"),
    ],
)
def test_a_failing_rank_fails_the_job_with_its_message(
    example: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    action: str,
    message: str,
) -> None:
    (tmp_path / "failing.py").write_text(FAILING_MODEL.replace("{action}", action))
    failing = {"file": str(tmp_path / "failing.py")}
    spec = example_spec(example, tmp_path, failing, workers=2, ddp_timeout=30)
    started = time.monotonic()
    with pytest.raises(TrainingError, match=message):
        run(spec, tmp_path)
    assert time.monotonic() - started < 60
    assert not rank_processes()


def rank_processes(parent: psutil.Process | None = None) -> list[psutil.Process]:
    parent = parent or psutil.Process()
    found = []
    for child in parent.children(recursive=True):
        try:
            if RANK in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.slow
def test_cancel_stops_every_rank(example: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, dataset = example
    classes = {k: [str(folder / g) for g in v] for k, v in dataset["classes"].items()}
    training = {**TRAINING, "workers": 2, "epochs": 200, "batch_size": 32}
    job_spec = {"dataset": {**dataset, "classes": classes}, "training": training}
    executor = LocalExecutor(grace=10.0)

    async def main() -> None:
        manager = JobManager(
            JobStore(tmp_path / "jobs.sqlite"), {"local": executor}, runs_dir=tmp_path / "jobs"
        )
        try:
            job = await manager.submit(job_spec)
            for _ in range(1200):  # until the ranks train (an epoch is done)
                await asyncio.sleep(0.1)
                if any(e.type == "epoch" for e in manager.events(job.id)):
                    break
            pid = executor.pid(job.id)
            assert pid is not None
            ranks = rank_processes(psutil.Process(pid))
            assert len(ranks) == 2
            started = time.monotonic()
            cancelled = await manager.cancel(job.id)
            assert cancelled.state is JobState.CANCELLED, manager.logs(job.id)
            _, alive = psutil.wait_procs(ranks, timeout=15)
            assert alive == []
            assert not psutil.pid_exists(pid)
            # the job stopped its ranks itself (no SIGKILL of its group after the grace)
            assert time.monotonic() - started < 8
            kinds = [e.type for e in manager.events(job.id) if e.type not in ("progress", "state")]
            assert kinds[-1] == "cancelled"
        finally:
            await manager.shutdown()

    asyncio.run(main())


@pytest.mark.slow
def test_two_ranks_on_a_local_dask_cluster(
    example: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    local, _ = run(example_spec(example, tmp_path, workers=2), tmp_path)
    spec = example_spec(example, tmp_path, workers=2)
    spec = TrainSpec.from_dict({**spec.to_dict(), "cluster": {"local": {"workers": 2}}})
    result, events = run(spec, tmp_path)
    notes = [e["message"] for e in events if e["type"] == "note"]
    assert "data-parallel training on 2 workers of a local dask cluster" in notes
    kinds = [e["type"] for e in events if e["type"] not in ("progress", "note")]
    assert kinds[-3:] == ["test", "report", "done"]
    assert (result.bundle / "manifest.json").is_file()
    # the same shards, seeds and steps: the same model as with local processes
    assert result.metrics["auc"] == pytest.approx(local.metrics["auc"], abs=1e-4)
    assert not rank_processes()


@pytest.mark.slow
def test_a_failing_rank_on_a_cluster_fails_the_job_with_its_message(
    example: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    action = "raise ValueError('rank one cannot go on')"
    (tmp_path / "failing.py").write_text(FAILING_MODEL.replace("{action}", action))
    failing = {"file": str(tmp_path / "failing.py")}
    spec = example_spec(example, tmp_path, failing, workers=2, ddp_timeout=30)
    spec = TrainSpec.from_dict({**spec.to_dict(), "cluster": {"local": {"workers": 2}}})
    started = time.monotonic()
    with pytest.raises(TrainingError, match="rank 1 of 2 failed: ValueError: rank one cannot"):
        run(spec, tmp_path)
    assert time.monotonic() - started < 90
    assert not rank_processes()


@pytest.mark.slow
def test_two_ranks_resume_from_the_checkpoint_of_two_ranks(
    example: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    first, _ = run(example_spec(example, tmp_path, workers=2, epochs=2), tmp_path)
    spec = example_spec(example, tmp_path, workers=2, epochs=3, resume=True)
    events: list[dict[str, Any]] = []
    again = train(spec, on_event=events.append, run_dir=first.run_dir, cache=tmp_path / "cache")
    notes = [e["message"] for e in events if e["type"] == "note"]
    assert "resumed from the checkpoint of epoch 2" in notes
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [3]
    assert [h["epoch"] for h in again.history] == [1, 2, 3]
    assert again.history[:2] == first.history
