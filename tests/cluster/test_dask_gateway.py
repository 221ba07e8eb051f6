"""The statistics pass, a training job and the dask executor through a real
dask-gateway (the session's ``gateway_server``), with basic-auth credentials taken
from the environment the way dask-gateway's own client takes them."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config

from mlaas_jupyter import cli
from mlaas_jupyter.core import Mlaas
from mlaas_jupyter.errors import MlaasError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.jobs import JobState
from mlaas_jupyter.specs.requests import JobRequest
from mlaas_jupyter.stream import DatasetSpec, compute_stats
from mlaas_jupyter.stream.distributed import cluster_client

pytestmark = pytest.mark.slow

USER = "DASK_GATEWAY__AUTH__KWARGS__USERNAME"
PASSWORD = "DASK_GATEWAY__AUTH__KWARGS__PASSWORD"


def _dataset(folder: Path) -> dict[str, Any]:
    path = write_example_dataset(folder, events_per_file=400, files_per_class=1)
    dataset: dict[str, Any] = yaml.safe_load(path.read_text())
    dataset["classes"] = {
        k: [str(path.parent / g) for g in v] for k, v in dataset["classes"].items()
    }
    return dataset


def test_stats_pass_on_the_gateway_equals_the_local_pass(
    gateway_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_example_dataset(tmp_path / "data", events_per_file=500, files_per_class=2)
    spec = DatasetSpec.from_file(path)
    monkeypatch.setenv(PASSWORD, gateway_server.password)
    before = gateway_server.clusters("alice")

    on_gateway = compute_stats(
        spec, cache=False, scheduler=gateway_server.spec(username="alice", workers=2)
    )

    assert on_gateway.to_dict() == compute_stats(spec, cache=False).to_dict()
    assert on_gateway.entries_total == 2000
    # one cluster of alice's was started for the pass, and shut down after it
    assert len(set(gateway_server.clusters("alice")) - set(before)) == 1
    assert gateway_server.clusters("alice", ("pending", "running")) == []


def test_mlaas_stats_runs_on_the_training_spec_cluster(
    gateway_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(USER, "erin")
    monkeypatch.setenv(PASSWORD, gateway_server.password)
    dataset = yaml.safe_load(write_example_dataset(tmp_path, 300, 1).read_text())
    training = tmp_path / "train.yaml"
    training.write_text(yaml.safe_dump({"dataset": dataset, "cluster": gateway_server.spec()}))

    assert cli.main(["stats", str(training), "--json"]) == 0
    on_gateway = json.loads(capsys.readouterr().out)
    assert len(gateway_server.clusters("erin")) == 1
    # --cluster overrides the spec's: a LocalCluster, and no second gateway cluster
    assert cli.main(["stats", str(training), "--json", "--no-cache", "--cluster", "local"]) == 0
    assert json.loads(capsys.readouterr().out) == on_gateway
    assert len(gateway_server.clusters("erin")) == 1


def test_basic_auth_takes_its_credentials_from_the_environment(
    gateway_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(USER, "bob")
    monkeypatch.setenv(PASSWORD, "not-" + gateway_server.password)
    with pytest.raises(MlaasError) as info, cluster_client(gateway_server.spec()):
        pass
    assert str(info.value) == (
        f"cannot use the dask-gateway at {gateway_server.address}: authentication refused "
        "as user 'bob' (its password: DASK_GATEWAY__AUTH__KWARGS__PASSWORD)"
    )
    assert gateway_server.password not in str(info.value)

    monkeypatch.setenv(PASSWORD, gateway_server.password)
    with cluster_client(gateway_server.spec()) as client:
        assert len(gateway_server.clusters("bob", "running")) == 1
        # the scheduler runs in the gateway's cluster folder, the task on its worker
        where = client.run_on_scheduler(os.getcwd)
        assert Path(where).parent == gateway_server.log.parent / "clusters"
        assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
    assert gateway_server.clusters("bob", ("pending", "running")) == []
    assert len(gateway_server.clusters("bob")) == 1


def test_training_job_runs_its_stats_pass_on_the_gateway(
    gateway_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))  # the job's process too
    monkeypatch.setenv(USER, "carol")
    monkeypatch.setenv(PASSWORD, gateway_server.password)
    spec = {
        "dataset": _dataset(tmp_path / "data"),
        "model": {"name": "bdt"},
        "training": {"epochs": 1},
        "cluster": gateway_server.spec(),
    }

    async def main() -> tuple[Any, list[str]]:
        core = Mlaas(
            data_roots=[str(tmp_path)],
            job_store=str(tmp_path / "state" / "jobs.sqlite"),
            runs_dir=str(tmp_path / "state" / "runs"),
        ).start()
        try:
            submitted = await core.jobs.submit(JobRequest(spec=spec))
            kept = submitted["spec"]["cluster"]  # stored with the job, for the job's process
            assert (kept["gateway"]["address"], kept["timeout"]) == (gateway_server.address, 60)
            job = await core.manager.wait(submitted["id"], timeout=300)
            return job, [e.type for e in core.manager.events(job.id)]
        finally:
            await core.stop()

    job, events = asyncio.run(main())
    assert job.state is JobState.SUCCEEDED, job.error
    assert events.index("stats") < events.index("done")
    assert len(gateway_server.clusters("carol")) == 1  # the pass's cluster, shut down


def test_dask_executor_runs_jobs_on_a_gateway_cluster(
    gateway_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD, gateway_server.password)
    config = Config()
    config.DaskExecutor.cluster = gateway_server.spec(username="dave")
    spec = {"dataset": _dataset(tmp_path / "data"), "model": {"name": "bdt"}}
    spec["training"] = {"epochs": 1}

    async def main() -> Any:
        core = Mlaas(
            config=config,
            data_roots=[str(tmp_path)],
            job_store=str(tmp_path / "state" / "jobs.sqlite"),
            runs_dir=str(tmp_path / "state" / "runs"),
            default_executor="dask",
        ).start()
        try:
            submitted = await core.jobs.submit(JobRequest(spec=spec))
            job = await core.manager.wait(submitted["id"], timeout=300)
            running = await asyncio.to_thread(gateway_server.clusters, "dave", "running")
            assert len(running) == 1  # the executor holds it until the service stops
            return job
        finally:
            await core.stop()

    job = asyncio.run(main())
    assert (job.state, job.executor) == (JobState.SUCCEEDED, "dask"), job.error
    assert (Path(job.bundle) / "manifest.json").is_file()
    # the executor's cluster is shut down with the service
    assert gateway_server.clusters("dave", ("pending", "running")) == []
    assert len(gateway_server.clusters("dave")) == 1
