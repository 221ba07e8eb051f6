"""Helpers of the server tests: a fake executor, a toy TrainSpec, polling."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from mlaas_jupyter.jobs.executors.base import EmitEvent, Executor, JobCancelled, JobFailed
from mlaas_jupyter.jobs.models import Job

API = ("mlaas", "api")


class FakeExecutor(Executor):
    """A quick stand-in for real training, driven by the job's name.

    ``block`` (and the trials ``block #n`` of a sweep named block): runs until
    cancelled; ``fail``: fails with "boom"; anything else writes plots, curves, a
    checkpoint and a bundle into the run folder and succeeds.
    """

    name = "local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cancelled: dict[str, asyncio.Event] = {}

    async def run(self, job: Job, emit: EmitEvent) -> dict[str, Any]:
        run_dir = Path(str(job.run_dir))
        emit({"type": "start", "run_dir": str(run_dir), "name": job.name})
        stop = self.cancelled.setdefault(job.id, asyncio.Event())
        if job.name == "block" or job.name.startswith("block #"):  # a sweep's trials too
            emit({"type": "log", "text": "waiting to be cancelled\n"})
            await stop.wait()
            raise JobCancelled("cancelled")
        if job.name == "fail":
            raise JobFailed("boom")
        for epoch in (1, 2):
            emit({"type": "epoch", "epoch": epoch, "epochs": 2, "loss": 1.0 / epoch})
        (run_dir / "plots").mkdir(parents=True, exist_ok=True)
        (run_dir / "plots" / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
        (run_dir / "plots" / "curves.json").write_text(json.dumps({"history": []}))
        (run_dir / "checkpoint").mkdir(exist_ok=True)
        (run_dir / "checkpoint" / "last").write_text("weights")
        (run_dir / "bundle").mkdir(exist_ok=True)
        (run_dir / "bundle" / "manifest.json").write_text(json.dumps({"name": job.name}))
        (run_dir / "bundle" / "model.onnx").write_bytes(b"onnx" * 100)
        emit({"type": "log", "text": "trained\n"})
        done = {"type": "done", "bundle": str(run_dir / "bundle"), "metrics": {"auc": 0.9}}
        emit(done)
        return done

    async def cancel(self, job: Job) -> None:
        self.cancelled.setdefault(job.id, asyncio.Event()).set()


def toy_spec(model: str = "bdt", epochs: int = 1, name: str | None = None) -> dict[str, Any]:
    """A TrainSpec mapping on ``toy/`` (paths relative to the data root)."""
    training: dict[str, Any] = {"epochs": epochs, "batch_size": 256, "early_stopping": None}
    if name is not None:
        training["name"] = name
    return {
        "dataset": {
            "tree": "Events",
            "classes": {"background": ["toy/background_*.root"], "signal": ["toy/signal_*.root"]},
            "branches": ["MET_*", "nJet"],
            "cuts": ["nJet >= 2"],
            "split": {"train": 0.6, "validation": 0.2, "test": 0.2},
            "seed": 1,
        },
        "model": {"name": model},
        "training": training,
    }


async def wait_for(
    api: Any, job_id: str, states: tuple[str, ...], timeout: float = 120.0
) -> dict[str, Any]:
    """Poll ``GET jobs/{id}`` until the job is in one of ``states``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status, job = await api("jobs", job_id)
        assert status == 200, job
        if job["state"] in states:
            return dict(job)
        if loop.time() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s: {job}")
        await asyncio.sleep(0.1)
