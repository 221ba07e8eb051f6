"""The core's model service: succeeded jobs become served models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mlaas_jupyter.core._models import JobRegistrar
from mlaas_jupyter.inference.registry import ModelRegistry
from mlaas_jupyter.jobs.models import Job, JobEvent, JobState


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def test_job_registrar_registers_succeeded_jobs(
    registry: ModelRegistry, toy_bundles: dict[str, Path]
) -> None:
    hook = JobRegistrar(registry)
    job = Job(
        "j1", "higgs mlp (v2)", JobState.SUCCEEDED, {}, "local", bundle=str(toy_bundles["flat"])
    )
    hook(JobEvent("j1", 3, 0.0, "epoch", {"epoch": 1}), job)
    hook(JobEvent("j1", 4, 0.0, "state", {"state": "running"}), job)
    assert registry.names() == []
    hook(JobEvent("j1", 5, 0.0, "state", {"state": "succeeded"}), job)  # no loop: at once
    assert [(i.name, i.version) for i in registry.list()] == [("higgs-mlp-v2", 1)]

    async def on_loop() -> list[int]:
        hook(JobEvent("j1", 5, 0.0, "state", {"state": "succeeded"}), job)  # in a thread
        await hook.settled()  # what the model routes wait for before they answer
        return registry.versions("higgs-mlp-v2")

    assert asyncio.run(on_loop()) == [1, 2]
    broken = Job("j2", "x", JobState.SUCCEEDED, {}, "local", bundle=str(registry.directory / "no"))
    hook(JobEvent("j2", 5, 0.0, "state", {"state": "succeeded"}), broken)  # logged, not raised
    assert registry.names() == ["higgs-mlp-v2"]
