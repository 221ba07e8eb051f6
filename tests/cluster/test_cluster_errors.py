"""A scheduler or gateway that cannot be reached: one clear error naming the cluster
and its address, within the spec's timeout (no hang), from every door."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlaas_jupyter import cli
from mlaas_jupyter.errors import MlaasError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.jobs import JobManager, JobState, JobStore
from mlaas_jupyter.jobs.executors.dask import DaskExecutor
from mlaas_jupyter.stream import DatasetSpec, compute_stats
from mlaas_jupyter.stream.distributed import cluster_client


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def failure(cluster: Any) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(MlaasError) as info, cluster_client(cluster):
        pass
    return str(info.value), time.monotonic() - started


def test_refused_scheduler_within_its_timeout() -> None:
    address = f"tcp://127.0.0.1:{closed_port()}"
    message, seconds = failure({"scheduler": address, "timeout": 2})
    assert message.startswith(f"cannot reach the dask scheduler at {address}: ")
    assert "after 2 s" in message
    assert seconds < 15


def test_silent_scheduler_within_its_timeout(silent: int) -> None:
    message, seconds = failure({"scheduler": f"tcp://127.0.0.1:{silent}", "timeout": 1})
    assert message.startswith(f"cannot reach the dask scheduler at tcp://127.0.0.1:{silent}: ")
    assert seconds < 15


def test_refused_gateway_at_once() -> None:
    address = f"http://127.0.0.1:{closed_port()}"
    message, seconds = failure({"gateway": {"address": address, "auth": "none"}})
    assert message.startswith(f"cannot reach the dask-gateway at {address}: Cannot connect")
    assert seconds < 10


def test_silent_gateway_within_its_timeout(silent: int) -> None:
    address = f"http://127.0.0.1:{silent}"
    message, seconds = failure({"gateway": {"address": address, "auth": "none"}, "timeout": 1})
    assert message == f"cannot reach the dask-gateway at {address}: no answer within 1 s"
    assert seconds < 10


def test_gateway_address_from_the_dask_config() -> None:
    import dask

    with dask.config.set({"gateway.address": None}):
        message, _ = failure({"gateway": {"auth": "none"}})
    assert message == (
        "cluster.gateway.address: none given, and dask's gateway.address is not set "
        "(DASK_GATEWAY__ADDRESS)"
    )
    address = f"http://127.0.0.1:{closed_port()}"
    with dask.config.set({"gateway.address": address}):  # what facilities set
        message, _ = failure({"gateway": {"auth": "none"}})
    assert message.startswith(f"cannot reach the dask-gateway at {address}: Cannot connect")


def test_jupyterhub_auth_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.delenv("DASK_GATEWAY__AUTH__KWARGS__API_TOKEN", raising=False)
    message, _ = failure({"gateway": {"address": "https://hub.example.org", "auth": "jupyterhub"}})
    assert message == (
        "cluster.gateway.auth: jupyterhub authentication to https://hub.example.org needs a "
        "token: set JUPYTERHUB_API_TOKEN (JupyterHub sets it in its servers)"
    )


def test_stats_pass_on_an_unreachable_cluster(tmp_path: Path) -> None:
    spec = DatasetSpec.from_file(write_example_dataset(tmp_path, 200, files_per_class=1))
    address = f"tcp://127.0.0.1:{closed_port()}"
    with pytest.raises(MlaasError, match=f"^cannot reach the dask scheduler at {address}"):
        compute_stats(spec, cache=False, scheduler={"scheduler": address, "timeout": 1})


def test_dask_executor_fails_the_job_naming_the_cluster(tmp_path: Path) -> None:
    address = f"http://127.0.0.1:{closed_port()}"
    executor = DaskExecutor(cluster={"gateway": {"address": address, "auth": "none"}})
    path = write_example_dataset(tmp_path / "data", 200, files_per_class=1)
    spec = {"dataset": yaml.safe_load(path.read_text()), "model": {"name": "bdt"}}
    spec["dataset"]["classes"] = {
        k: [str(path.parent / f) for f in v] for k, v in spec["dataset"]["classes"].items()
    }

    async def main() -> Any:
        manager = JobManager(
            JobStore(tmp_path / "jobs.sqlite"),
            {"dask": executor},
            default_executor="dask",
            runs_dir=tmp_path / "runs",
        )
        try:
            return await manager.wait((await manager.submit(spec)).id, timeout=60)
        finally:
            await manager.shutdown()

    job = asyncio.run(main())
    assert job.state is JobState.FAILED
    assert job.error.startswith(f"cannot reach the dask-gateway at {address}: Cannot connect")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_mlaas_stats_uses_the_training_spec_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    dataset = write_example_dataset(tmp_path, 200, files_per_class=1)
    address = f"tcp://127.0.0.1:{closed_port()}"
    training = tmp_path / "train.yaml"
    spec = {"dataset": yaml.safe_load(dataset.read_text()), "model": {"name": "bdt"}}
    training.write_text(yaml.safe_dump({**spec, "cluster": {"scheduler": address, "timeout": 1}}))

    code, _, err = run(["stats", str(training)], capsys)
    assert (code, err.strip()) == (
        2,
        f"mlaas stats: error: cannot reach the dask scheduler at {address}: "
        f"Timed out trying to connect to {address} after 1 s",
    )
    # --scheduler (the old name of --cluster) overrides the spec's cluster
    other = f"tcp://127.0.0.1:{closed_port()}"
    given = f"{{scheduler: '{other}', timeout: 1}}"
    code, _, err = run(["stats", str(training), "--scheduler", given], capsys)
    assert code == 2
    assert f"cannot reach the dask scheduler at {other}: " in err
