"""Kernel jobs on a real Jupyter Kernel Gateway: the server runs with ``GatewayClient.url``
(``--gateway-url``), so its kernels, and the jobs', live on the gateway.

One ``jupyter kernelgateway`` (with a token) serves the module; each test starts a
Jupyter server with the extension pointed at it and drives jobs through the REST API.
Slow (kernels train small models); ``.ci/run`` runs them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from gateway_server import KernelGateway, kernel_gateway
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayMappingKernelManager
from tornado.httpclient import HTTPClientError
from traitlets.config import Config
from web_helpers import toy_spec, wait_for

from mlaas_jupyter.web.gateway import GatewayKernelChannels

# the gateway is installed with the test extra: only a bare environment skips these
pytest.importorskip("kernel_gateway", reason="jupyter-kernel-gateway (test extra) is missing")

pytestmark = pytest.mark.slow

LONG = toy_spec("mlp", epochs=10_000)  # runs until cancelled or killed


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, toy_source: Path) -> Iterator[KernelGateway]:
    """The Kernel Gateway of this module's tests, its kernels started in the data folder."""
    with kernel_gateway(toy_source, tmp_path_factory.mktemp("gateway")) as running:
        yield running
    # the server's gateway settings are a process-wide singleton: later servers get none
    GatewayClient.clear_instance()


@pytest.fixture(autouse=True)
def launch_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GatewayClient sets ``KERNEL_LAUNCH_TIMEOUT`` (environment and class) from its
    request_timeout: undone after each test."""
    monkeypatch.delenv("KERNEL_LAUNCH_TIMEOUT", raising=False)
    monkeypatch.setattr(GatewayClient, "KERNEL_LAUNCH_TIMEOUT", GatewayClient.KERNEL_LAUNCH_TIMEOUT)


@pytest.fixture
def mlaas_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "job_store": str(tmp_path / "state" / "jobs.sqlite"),
        "runs_dir": str(tmp_path / "state" / "runs"),
        "default_executor": "kernel",
        "max_concurrent_jobs": 2,
    }


@pytest.fixture
def jp_server_config(
    mlaas_config: dict[str, Any],
    toy_dir: Path,
    gateway: KernelGateway,
) -> Config:
    """The server of docs/remote-kernels.md: ``GatewayClient`` settings, jobs in kernels
    of the gateway's default kernel spec."""
    GatewayClient.clear_instance()  # an earlier server's (without a URL) would stay
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"mlaas_jupyter": True}},
            "GatewayClient": {
                "url": gateway.url,
                "auth_token": gateway.token,
                "request_timeout": 120.0,
            },
            "KernelExecutor": {"default_kernel": ""},  # the gateway's default spec
            "Mlaas": mlaas_config,
        }
    )


async def follow(
    api: Any, job_id: str, until: str, since: int = 0, timeout: float = 240.0
) -> list[dict[str, Any]]:
    """The job's events after number ``since``, read as they come (``GET
    jobs/{id}/events?since=``), up to the first of type ``until`` (``"end"``: the
    state event of a final state); raises if the job ends before."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: list[dict[str, Any]] = []
    while loop.time() < deadline:
        params = {"since": seen[-1]["seq"] if seen else since}
        status, reply = await api("jobs", job_id, "events", params=params)
        assert status == 200, reply
        for event in reply["events"]:
            seen.append(event)
            final = event["type"] == "state" and event["state"] not in ("queued", "running")
            if event["type"] == until or (until == "end" and final):
                return seen
        if reply["state"] not in ("queued", "running") and not reply["events"]:
            _, logs = await api("jobs", job_id, "logs")
            ended = reply["state"]
            raise AssertionError(f"job ended {ended} before {until}: {logs['text'][-3000:]}")
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {until} event after {timeout} s: {[e['type'] for e in seen]}")


async def test_a_training_job_runs_in_a_gateway_kernel(
    api: Any, jp_serverapp: Any, mlaas: Any, gateway: KernelGateway
) -> None:
    assert isinstance(jp_serverapp.kernel_manager, GatewayMappingKernelManager)
    assert mlaas.core.manager.executors["kernel"].client_factory is not None
    status, job = await api("jobs", method="POST", body={"spec": toy_spec("bdt"), "name": "gw"})
    assert status == 201, job
    assert (job["executor"], job["kernel_name"]) == ("kernel", None)

    events = await follow(api, job["id"], "kernel")
    kernel = events[-1]
    assert kernel["kernel_name"] == "python3"  # the gateway's default kernel spec
    on_gateway = kernel["kernel_id"] in await asyncio.to_thread(gateway.kernel_ids)
    events += await follow(api, job["id"], "end", since=kernel["seq"])
    done = await wait_for(api, job["id"], ("succeeded", "failed"), timeout=10)
    _, logs = await api("jobs", job["id"], "logs")
    assert done["state"] == "succeeded", (done, logs["text"][-3000:])
    assert on_gateway  # the job's kernel ran there, while the job ran
    assert done["metrics"]["auc"] > 0.6

    _, reply = await api("jobs", job["id"], "events")
    assert events == reply["events"]  # followed as they came = stored
    types = [e["type"] for e in events]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert types[:3] == ["state", "state", "kernel"]
    assert types.index("start") < types.index("stats") < types.index("epoch")
    assert types.index("epoch") < types.index("test") < types.index("done")
    assert types[-2:] == ["done", "state"]
    assert reply["events"][-1]["state"] == "succeeded"
    # shut down at the end, on the gateway too
    assert kernel["kernel_id"] not in await asyncio.to_thread(gateway.kernel_ids)
    assert kernel["kernel_id"] not in jp_serverapp.kernel_manager

    _, artefacts = await api("jobs", job["id"], "artefacts")
    paths = {a["path"] for a in artefacts["artefacts"]}
    assert {"plots/curves.json", "plots/roc.png", "bundle.zip"} <= paths


async def test_cancel_a_job_running_in_a_gateway_kernel(
    api: Any, jp_serverapp: Any, gateway: KernelGateway
) -> None:
    _, job = await api("jobs", method="POST", body={"spec": LONG, "name": "long"})
    kernel = (await follow(api, job["id"], "kernel"))[-1]
    # training: not inside an import that eats SIGINT
    await follow(api, job["id"], "epoch", since=kernel["seq"])
    assert kernel["kernel_id"] in await asyncio.to_thread(gateway.kernel_ids)

    status, cancelled = await api("jobs", job["id"], "cancel", method="POST", body={})
    assert status == 200, cancelled
    assert cancelled["state"] == "cancelled"
    assert kernel["kernel_id"] not in await asyncio.to_thread(gateway.kernel_ids)
    assert kernel["kernel_id"] not in jp_serverapp.kernel_manager
    _, reply = await api("jobs", job["id"], "events")
    types = [e["type"] for e in reply["events"]]
    assert types[-2:] == ["cancelled", "state"]  # the gateway's interrupt let the job say so
    assert reply["events"][-1]["state"] == "cancelled"
    _, logs = await api("jobs", job["id"], "logs")
    assert "KeyboardInterrupt" in logs["text"]


def _kernel_process(gateway: KernelGateway, kernel_id: str) -> psutil.Process:
    """The gateway's process of a kernel (its connection file is named after its id)."""
    for child in psutil.Process(gateway.pid).children(recursive=True):
        try:
            if any(kernel_id in part for part in child.cmdline()):
                return child
        except psutil.Error:  # a process that ended meanwhile
            continue
    raise AssertionError(f"no process of kernel {kernel_id} under the gateway")


async def test_a_gateway_kernel_that_dies_fails_its_job(
    api: Any, jp_serverapp: Any, gateway: KernelGateway
) -> None:
    _, job = await api("jobs", method="POST", body={"spec": LONG})
    kernel = (await follow(api, job["id"], "kernel"))[-1]
    await follow(api, job["id"], "start", since=kernel["seq"])
    _kernel_process(gateway, kernel["kernel_id"]).send_signal(signal.SIGKILL)
    failed = await wait_for(api, job["id"], ("failed", "succeeded", "cancelled"), timeout=60)
    assert failed["state"] == "failed"
    assert (
        f"the kernel died while running the job (kernel {kernel['kernel_id']})" in failed["error"]
    )
    # the gateway restarted the kernel; the executor shut it down all the same
    assert kernel["kernel_id"] not in await asyncio.to_thread(gateway.kernel_ids)
    assert kernel["kernel_id"] not in jp_serverapp.kernel_manager


async def test_a_kernel_spec_the_gateway_lacks_fails_the_job_by_name(api: Any) -> None:
    body = {"spec": toy_spec("bdt"), "kernel_name": "no-such-kernel"}
    _, job = await api("jobs", method="POST", body=body)
    failed = await wait_for(api, job["id"], ("failed", "succeeded"), timeout=60)
    assert failed["state"] == "failed"
    # the gateway itself only says "500: Internal Server Error"; its kernel specs tell
    start = "cannot start a 'no-such-kernel' kernel: no such kernel spec (known: "
    assert failed["error"].startswith(start), failed["error"]
    assert "python3" in failed["error"][len(start) : -1].split(", ")


def _start_kernel(gateway: KernelGateway) -> str:
    request = urllib.request.Request(
        f"{gateway.url}/api/kernels",
        data=b'{"name": "python3"}',
        headers={"Authorization": f"token {gateway.token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.loads(response.read())["id"])


def _delete_kernel(gateway: KernelGateway, kernel_id: str) -> None:
    request = urllib.request.Request(
        f"{gateway.url}/api/kernels/{kernel_id}",
        headers={"Authorization": f"token {gateway.token}"},
        method="DELETE",
    )
    urllib.request.urlopen(request, timeout=60).close()


async def test_the_channels_carry_the_gateway_credentials(gateway: KernelGateway) -> None:
    """jupyter_server's GatewayKernelClient opens the websocket without them (401); ours
    sends the token, and says so when the gateway refuses instead of waiting."""
    kernel_id = await asyncio.to_thread(_start_kernel, gateway)
    try:
        refused = GatewayKernelChannels(
            GatewayClient(url=gateway.url, auth_token="wrong"), kernel_id
        )
        with pytest.raises(HTTPClientError, match="401"):
            await refused.start_channels()
        with pytest.raises(RuntimeError, match="not open"):
            await refused.get_iopub_msg(timeout=0.1)

        channels = GatewayKernelChannels(
            GatewayClient(url=gateway.url, auth_token=gateway.token), kernel_id
        )
        await channels.start_channels()
        await channels.wait_for_ready(timeout=60)
        msg_id = await channels.execute("print(6 * 7)")
        printed = []
        while True:
            msg = await channels.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["header"]["msg_type"] == "stream":
                printed.append(msg["content"]["text"])
            if (
                msg["header"]["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                break
        assert printed == ["42\n"]
        channels.stop_channels()
        with pytest.raises(RuntimeError, match="stopped"):
            await channels.get_iopub_msg(timeout=5)
    finally:
        await asyncio.to_thread(_delete_kernel, gateway, kernel_id)
