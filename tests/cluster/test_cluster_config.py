"""Clusters as configuration: the forms of ``cluster:``, the job spec keeping it, the
server's ``c.Mlaas.cluster`` filling specs without one, ``c.DaskExecutor.cluster``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from toy_bundles import write_example_bundle
from traitlets.config import Config

from mlaas_jupyter.core import Mlaas
from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.jobs.executors.dask import DaskExecutor
from mlaas_jupyter.specs.cluster import ClusterSpec
from mlaas_jupyter.specs.requests import JobRequest, PredictFileRequest
from mlaas_jupyter.specs.training import TrainSpec

GATEWAY = {"gateway": {"address": "https://gateway.example.org", "auth": "JupyterHub"}}


@pytest.mark.parametrize(
    ("given", "kind", "dumped"),
    [
        ("local", "local", {"local": {"workers": 2, "threads": 1}, "timeout": 60.0}),
        ({"local": None}, "local", {"local": {"workers": 2, "threads": 1}, "timeout": 60.0}),
        ("tcp://10.0.0.1:8786", "scheduler", {"scheduler": "tcp://10.0.0.1:8786", "timeout": 60.0}),
        (
            {**GATEWAY, "timeout": 5},
            "gateway",
            {
                "gateway": {
                    "address": "https://gateway.example.org",
                    "auth": "jupyterhub",
                    "cluster_options": {},
                    "workers": 2,
                },
                "timeout": 5.0,
            },
        ),
    ],
)
def test_the_forms_of_a_cluster(given: Any, kind: str, dumped: dict[str, Any]) -> None:
    spec = ClusterSpec.parse(given)
    assert spec.kind == kind
    assert spec.to_dict() == dumped
    # both dumps come back as the same spec (a None field is not a second kind)
    assert ClusterSpec.parse(spec.to_dict()) == spec
    assert ClusterSpec.parse(spec.model_dump()) == spec


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"local": {}, "scheduler": "tcp://h:8786"},
            "cluster: give exactly one of local, scheduler, gateway, jobqueue "
            "(got local, scheduler)",
        ),
        ({"timeout": 3}, "cluster: give exactly one of local, scheduler, gateway, jobqueue"),
        ({"scheduler": "tcp://h:8786", "timeout": 0}, "cluster.timeout: must be > 0, got 0"),
        (
            {"gateway": {"address": "http://g", "workers": {"minimum": 5, "maximum": 2}}},
            "cluster.gateway.workers: minimum (5) > maximum (2)",
        ),
        (
            {"gateway": {"address": "http://g", "auth": "token"}},
            "cluster.gateway.auth: got 'token'; allowed values are basic, jupyterhub, "
            "kerberos, none",
        ),
        (
            {"jobqueue": {"kind": "condor", "queue": "long"}},
            "cluster.jobqueue.queue: HTCondor has no queues",
        ),
        (
            {"jobqueue": {"kind": "slurm", "disk": "10GB"}},
            "cluster.jobqueue.disk: only HTCondor jobs request a disk, not slurm",
        ),
    ],
)
def test_a_wrong_cluster_names_its_field(given: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        ClusterSpec.parse(given)
    assert str(info.value).startswith(message)


def test_a_job_spec_keeps_its_cluster(tmp_path: Path) -> None:
    data = {
        "dataset": {"classes": {"b": "b.root", "s": "s.root"}},
        "cluster": {"jobqueue": {"kind": "slurm", "cores": 4, "walltime": "01:00:00"}},
    }
    spec = TrainSpec.from_dict(data, base_dir=tmp_path)
    stored = spec.to_dict()  # what the job store keeps and the job's process reads back
    assert stored["cluster"]["jobqueue"]["walltime"] == "01:00:00"
    assert TrainSpec.from_dict(stored).cluster == spec.cluster
    assert "cluster" not in TrainSpec.from_dict({"dataset": data["dataset"]}).to_dict()


def test_the_server_cluster_fills_specs_without_one(tmp_path: Path) -> None:
    write_example_dataset(tmp_path, events_per_file=200, files_per_class=1)
    dataset = {"classes": {"b": "background_0.root", "s": "signal_0.root"}}
    own = {"scheduler": "tcp://10.1.2.3:8786"}

    bundle = write_example_bundle(tmp_path / "bundle")

    async def clusters() -> list[Any]:
        core = Mlaas(
            data_roots=[str(tmp_path)],
            job_store=str(tmp_path / "state" / "jobs.sqlite"),
            runs_dir=str(tmp_path / "state" / "runs"),
            models_dir=str(tmp_path / "state" / "models"),
            cluster=GATEWAY,
        ).start()
        core.registry.register(bundle, "higgs")
        try:
            found = []
            for cluster in (None, own):
                spec = {"dataset": dataset, **({"cluster": cluster} if cluster else {})}
                job = await core.jobs.submit(JobRequest(spec=spec))
                found.append(job["spec"]["cluster"])
                await core.jobs.cancel(job["id"])
            for cluster in (None, own):
                fields = {"path": "signal_0.root", "out": "scores", "async": True}
                request = PredictFileRequest.parse({**fields, "cluster": cluster})
                job = await core.models.predict_file("higgs", request)
                found.append(job["spec"]["predict"]["cluster"])
                await core.jobs.cancel(job["id"])
            return found
        finally:
            await core.stop()

    server, spec_own, predict_server, predict_own = asyncio.run(clusters())
    assert server["gateway"]["address"] == "https://gateway.example.org"
    assert server["gateway"]["auth"] == "jupyterhub"
    assert spec_own["scheduler"] == "tcp://10.1.2.3:8786"  # the spec's own wins
    assert predict_server == server  # prediction jobs take the server's cluster too
    assert predict_own["scheduler"] == "tcp://10.1.2.3:8786"


def test_the_server_cluster_is_checked() -> None:
    assert Mlaas().cluster is None
    assert Mlaas(cluster="local").cluster == {
        "local": {"workers": 2, "threads": 1},
        "timeout": 60.0,
    }
    with pytest.raises(SpecError, match=r"^Mlaas\.cluster\.gateway\.workers: must be >= 1"):
        Mlaas(cluster={"gateway": {"workers": 0}})


def test_dask_executor_cluster_and_its_short_form() -> None:
    config = Config()
    config.DaskExecutor.cluster = {"jobqueue": {"kind": "pbs", "queue": "short"}}
    executor = DaskExecutor(config=config)
    assert executor.cluster_spec().jobqueue is not None
    assert executor.cluster_spec().jobqueue.queue == "short"  # type: ignore[union-attr]
    # the scheduler trait still works, as the short form of cluster
    assert DaskExecutor(scheduler="tcp://h:8786").cluster_spec().scheduler == "tcp://h:8786"
    both = DaskExecutor(scheduler="tcp://h:8786", cluster="local").cluster_spec()
    assert both.kind == "local"  # cluster wins
    default = DaskExecutor().cluster_spec()
    assert default.local is not None
    assert (default.local.workers, default.local.threads) == (1, 1)
    with pytest.raises(SpecError, match=r"^DaskExecutor\.cluster\.jobqueue\.kind: got 'sge'"):
        DaskExecutor(cluster={"jobqueue": {"kind": "sge"}})
