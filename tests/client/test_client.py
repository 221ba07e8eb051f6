"""`Client`: finding the server, its HTTP requests, and the in-process transport."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from mlaas_jupyter.client import Client
from mlaas_jupyter.errors import Conflict, MlaasError, NotFound
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.jobs import JobNotFound, JobStateError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

TOKEN = "secret"
EVENTS = [{"seq": k, "type": "epoch", "epoch": k} for k in range(1, 6)]


class FakeApi(BaseHTTPRequestHandler):
    """The mlaas REST API, enough to see what the client sends and how it reads answers."""

    extension = True
    requests: ClassVar[list[tuple[str, str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append((method, self.path, body))
        path = self.path.removeprefix("/base/mlaas/api/")
        if not self.extension or self.path == path:
            return self.reply(404, {"message": "Not Found"})
        if self.headers.get("Authorization") != f"token {TOKEN}":
            return self.reply(403, {"error": "forbidden", "detail": "bad token"})
        if method == "POST" and path == "jobs":
            return self.reply(201, {"id": "j1", "state": "queued", **body})
        if path == "info":
            return self.reply(200, {"version": "test"})
        if path.startswith("jobs?"):
            return self.reply(200, {"jobs": [{"id": "j1", "state": "running"}]})
        if path == "jobs/j1":
            return self.reply(200, {"id": "j1", "state": "succeeded"})
        if path == "jobs/j1/cancel" and method == "POST":
            return self.reply(200, {"id": "j1", "state": "cancelled"})
        if path.startswith("jobs/done"):
            return self.reply(409, {"error": "conflict", "detail": "job done has finished"})
        if path.startswith("jobs/j1/events?since="):
            since = int(path.rsplit("=", 1)[1])
            page = [e for e in EVENTS if e["seq"] > since][:2]
            return self.reply(200, {"events": page, "next": page[-1]["seq"] if page else since})
        if path == "jobs/j1/logs":
            return self.reply(200, {"text": "hello\n"})
        if path.startswith("models/toy/predict"):
            return self.reply(200, {"scores": [0.5]})
        return self.reply(404, {"error": "not found", "detail": f"no job {path}"})

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_DELETE(self) -> None:
        self.handle_any("DELETE")


@pytest.fixture
def api() -> Iterator[str]:
    FakeApi.extension = True
    FakeApi.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/base/"
    server.shutdown()
    server.server_close()


def test_rest_calls(isolated: Path, api: str) -> None:
    client = Client(api, TOKEN)
    assert client.transport == "http"
    assert client.url == api
    job = client.submit({"dataset": {}}, executor="dask", name="toy")
    assert job["id"] == "j1"
    assert FakeApi.requests[-1] == (
        "POST",
        "/base/mlaas/api/jobs",
        {"spec": {"dataset": {}}, "executor": "dask", "kernel_name": None, "name": "toy"},
    )
    assert client.jobs(state="running") == [{"id": "j1", "state": "running"}]
    assert FakeApi.requests[-1][1] == "/base/mlaas/api/jobs?state=running"
    assert client.wait("j1", timeout=5)["state"] == "succeeded"
    assert client.cancel("j1")["state"] == "cancelled"
    assert [e["seq"] for e in client.events("j1")] == [1, 2, 3, 4, 5]  # all pages
    assert [e["seq"] for e in client.events("j1", since=3)] == [4, 5]
    assert client.logs("j1") == "hello\n"
    assert client.predict("toy", [{"MET_pt": 1.0}]) == {"scores": [0.5]}
    assert FakeApi.requests[-1][2] == {"rows": [{"MET_pt": 1.0}]}
    assert FakeApi.requests[-1][1] == "/base/mlaas/api/models/toy/predict"
    with pytest.raises(NotFound, match=r"^no job jobs/nope$"):
        client.job("nope")
    with pytest.raises(Conflict, match=r"^job done has finished$"):
        client.resubmit("done")


def test_discovery_and_fallback(isolated: Path, api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # a runtime file of a server whose root holds the current folder
    runtime = isolated / "runtime"
    runtime.mkdir()
    info = {"url": api, "token": TOKEN, "root_dir": str(isolated), "pid": os.getpid()}
    (runtime / "jpserver-1.json").write_text(json.dumps(info))
    monkeypatch.chdir(isolated)
    client = Client()
    assert client.transport == "http"
    assert client.url == api

    FakeApi.extension = False  # a server without the mlaas extension: the core in process
    client = Client()
    assert client.transport == "in-process"
    assert "has no mlaas extension" in repr(client)
    client.close()
    with pytest.raises(MlaasError, match="has no mlaas extension"):
        Client(api, TOKEN)  # an explicit server must work
    FakeApi.extension = True
    monkeypatch.setenv("MLAAS_SERVER_URL", api)
    with pytest.raises(MlaasError, match=r"refused the request: bad token"):
        Client()  # no MLAAS_TOKEN

    monkeypatch.delenv("MLAAS_SERVER_URL")
    (runtime / "jpserver-1.json").unlink()
    client = Client()
    assert client.transport == "in-process"
    assert client.reason == "no Jupyter server found"
    assert f"job store {isolated}" in client.where
    with pytest.raises(NotFound, match="no model named 'toy'"):  # models are served in process too
        client.predict("toy", {"MET_pt": [1.0]})
    client.close()


@pytest.mark.slow
def test_in_process_jobs(isolated: Path) -> None:
    path = write_example_dataset(isolated / "data", events_per_file=2000, files_per_class=1)
    dataset = yaml.safe_load(path.read_text())
    dataset["classes"] = {
        k: [str(path.parent / g) for g in v] for k, v in dataset["classes"].items()
    }
    training = {"epochs": 1, "batch_size": 256, "device": "cpu"}
    spec = {"dataset": dataset, "model": {"name": "mlp"}, "training": training}
    client = Client(transport="in-process")
    try:
        job = client.submit(spec, name="toy")
        endless = {**training, "epochs": 500, "early_stopping": None}  # runs until cancelled
        long = client.submit({**spec, "training": endless})
        assert job["state"] in ("queued", "running")
        assert job["run_dir"] == str(isolated / "runs" / job["id"])
        done = client.wait(job["id"], timeout=300)
        assert done["state"] == "succeeded", (done["error"], client.logs(job["id"]))
        assert Path(done["bundle"]).is_dir()
        events = client.events(job["id"])
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        kinds = [e["type"] for e in events if e["type"] != "note"]
        assert kinds[-4:] == ["test", "report", "done", "state"]
        assert [e["seq"] for e in client.events(job["id"], since=len(events) - 1)] == [len(events)]
        assert [j["id"] for j in client.jobs()] == [long["id"], job["id"]]

        while not any(e["type"] == "epoch" for e in client.events(long["id"])):
            time.sleep(0.2)
        assert client.cancel(long["id"])["state"] == "cancelled"
        with pytest.raises(JobStateError, match="has already finished"):
            client.cancel(long["id"])
        with pytest.raises(JobNotFound):
            client.job("nope")
        again = client.resubmit(long["id"])
        assert again["resumed_from"] == long["id"]
    finally:
        client.close()  # the resubmitted job becomes lost
    restarted = Client(transport="in-process")
    try:
        assert restarted.job(again["id"])["state"] == "lost"
    finally:
        restarted.close()
