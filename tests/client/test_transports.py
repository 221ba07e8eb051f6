"""The same client calls give the same answers in process and over HTTP.

One scenario (browse, histogram, train on the local and dask executors, follow,
read artefacts, serve, predict, score a file, cancel, delete, and the errors) runs
through a client whose core is in this process and through a client of a real
``mlaas serve`` server in a subprocess, on copies of the same data; what each call
answers is compared.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notebook_server import free_port

from mlaas_jupyter.client import Client
from mlaas_jupyter.errors import (
    Conflict,
    MlaasError,
    NotFound,
    PathRefused,
    PayloadTooLarge,
    SpecError,
)
from mlaas_jupyter.examples import write_example_dataset

pytestmark = pytest.mark.slow
TOKEN = "transport-test-token"
ROWS = [
    {
        "MET_pt": 85.0,
        "nJet": 4,
        "Jet_pt": [120.0, 80.5, 60.2, 45],
        "Jet_btag": [0.9, 0.8, 0.3, 0.1],
    },
    {"MET_pt": 20.0, "nJet": 3, "Jet_pt": [45.0, 30.0, 22.0], "Jet_btag": [0.1, 0.05, 0.2]},
]


def spec(model: dict[str, Any], epochs: int = 1) -> dict[str, Any]:
    return {
        "dataset": {
            "tree": "Events",
            "classes": {"background": ["data/background_*.root"], "signal": ["data/signal_*.root"]},
            "branches": ["MET_pt", "nJet", "Jet_pt", "Jet_btag"],
            "jagged": {"Jet_*": {"length": 4, "sort_by": "Jet_pt"}},
            "seed": 3,
        },
        "model": model,
        "training": {"epochs": epochs, "batch_size": 512, "early_stopping": None},
    }


FAMILIES = (SpecError, NotFound, Conflict, PathRefused, PayloadTooLarge, MlaasError)


def outcome(call: Any) -> Any:
    """What a call answered, or the kind (the family an HTTP client can tell from the
    status: JobStateError is a Conflict), message and field of what it raised."""
    try:
        return call()
    except MlaasError as err:
        kind = next(cls for cls in FAMILIES if isinstance(err, cls))
        return (kind.__name__, str(err), getattr(err, "field", None))


def scenario(client: Client) -> dict[str, Any]:
    """Every kind of call a notebook makes, reduced to what must not depend on the
    transport (ids, times and absolute paths do)."""
    seen: dict[str, Any] = {}
    info = client.info()
    seen["info"] = sorted(info)
    seen["executors"] = sorted(info["executors"])
    seen["files"] = [e["name"] for e in client.files("data")["entries"]]
    branches = client.branches("data/signal_0.root", "Events")
    seen["branches"] = [(b["name"], b["kind"]) for b in branches["branches"]]
    histograms = client.histograms(
        {
            "classes": {"sig": ["data/signal_0.root"]},
            "branch": "MET_pt",
            "bins": 8,
            "range": [0, 200],
            "cuts": ["nJet >= 4"],
        }
    )
    seen["histograms"] = {k: v for k, v in histograms["classes"]["sig"].items() if k != "files"}
    dataset = {**spec({})["dataset"], "luminosity": 1000.0, "weights": {"branch": "EventWeight"}}
    dataset["classes"] = {
        "background": {"files": "data/background_*.root", "xsec": 800.0},
        "signal": {"files": "data/signal_*.root", "xsec": 0.5},
    }
    yields = client.dataset_stats(dataset)
    # no cuts: a sample's yield is its cross-section times the luminosity
    assert yields["classes"]["background"]["yield"] == pytest.approx(800_000.0, rel=1e-5)
    seen["yields"] = {name: round(row["yield"], 3) for name, row in yields["classes"].items()}
    seen["no_luminosity"] = outcome(lambda: client.dataset_stats({**dataset, "luminosity": None}))

    local = client.submit(spec({"name": "bdt"}), executor="local", name="eq-local")
    on_dask = client.submit(spec({"name": "bdt"}), executor="dask", name="eq-dask")
    for job in (local, on_dask):
        done = client.wait(job["id"], timeout=300)
        assert done["state"] == "succeeded", (done["error"], client.logs(job["id"])[-2000:])
        metrics = done["metrics"]
        assert 0.6 < metrics["auc"] <= 1.0, metrics  # trained, not guessed
        # the train/test split hashes each event's file path, which differs between
        # the two copies of the data: the values differ a little, their names do not
        seen[f"{job['name']} metrics"] = sorted(metrics)
        seen[f"{job['name']} events"] = [
            e["type"] for e in client.events(job["id"]) if e["type"] != "progress"
        ]
    seen["logs are text"] = isinstance(client.logs(local["id"]), str)
    artefacts = [a["path"].replace(local["id"], "ID") for a in client.artefacts(local["id"])]
    seen["artefacts"] = sorted(artefacts)
    seen["roc is a png"] = client.artefact(local["id"], "plots/roc.png")[:8]
    report = client.report(local["id"])  # GET jobs/{id}/report and its page
    seen["report"] = (report.task, sorted(report.data), report.text().splitlines()[0])
    page = report.html()
    seen["report page"] = ("<h3>Overtraining check" in page, "data:image/png;base64," in page)
    models = client.models()["models"]
    seen["models"] = sorted((m["name"], m["version"]) for m in models)
    prediction = client.predict("eq-local", ROWS)
    scores = prediction.pop("scores")
    assert len(scores) == len(ROWS)
    assert all(0.0 <= s <= 1.0 for s in scores), scores
    seen["predict"] = prediction
    scored = client.predict_file("eq-local", "data/signal_0.root", "scores/", wait=True)
    seen["predict_file"] = (scored["state"], [Path(p).name for p in scored["outputs"]])

    long = client.submit(spec({"name": "mlp"}, epochs=500), executor="local", name="eq-long")
    seen["delete running"] = outcome(lambda: client.delete(long["id"]))[0]
    seen["report running"] = outcome(lambda: client.report(long["id"]))[0]
    seen["cancel"] = client.cancel(long["id"])["state"]
    seen["cancel again"] = outcome(lambda: client.cancel(long["id"]))[0]
    seen["delete"] = client.delete(long["id"])["deleted"]
    seen["after delete"] = outcome(lambda: client.job(long["id"]))[0]
    seen["missing job"] = outcome(lambda: client.job("nope"))
    seen["bad spec"] = outcome(lambda: client.submit({**spec({"name": "cnn"})}))
    seen["bad executor"] = outcome(lambda: client.submit(spec({"name": "bdt"}), executor="gpu"))
    seen["missing model"] = outcome(lambda: client.predict("nope", ROWS))
    seen["bad rows"] = outcome(lambda: client.predict("eq-local", [{"MET_pt": 1.0}]))
    return seen


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dataset")
    write_example_dataset(folder, events_per_file=3000, files_per_class=1)
    return folder


def workspace(base: Path, data: Path) -> Path:
    root = base / "work"
    shutil.copytree(data, root / "data")
    return root


@pytest.fixture
def server(tmp_path: Path, data: Path) -> Iterator[str]:
    """``mlaas serve`` (a Jupyter server with only the mlaas extension) on loopback."""
    root = workspace(tmp_path / "server", data)
    state = tmp_path / "server" / "state"
    env = dict(
        os.environ,
        MLAAS_JOB_STORE=str(state / "jobs.sqlite"),
        MLAAS_RUNS_DIR=str(state / "runs"),
        JUPYTER_RUNTIME_DIR=str(state / "rt"),
        MLAAS_CACHE_DIR=str(state / "cache"),
    )
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlaas_jupyter",
        "serve",
        "--root",
        str(root),
        "--port",
        str(port),
        "--token",
        TOKEN,
    ]
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                Client(url, TOKEN, transport="http")
                break
            except MlaasError:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
        log.close()


def test_both_transports_answer_alike(
    isolated: Path, data: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    over_http = scenario(Client(server, TOKEN, transport="http"))
    monkeypatch.chdir(workspace(isolated / "local", data))
    client = Client(transport="in-process")
    try:
        in_process = scenario(client)
    finally:
        client.close()
    assert over_http.keys() == in_process.keys()
    for key in over_http:
        assert in_process[key] == over_http[key], key
    # and the answers are the right ones, not just equal
    assert in_process["executors"] == ["dask", "kernel", "local"]
    assert in_process["models"] == [("eq-dask", 1), ("eq-local", 1)]
    assert in_process["predict_file"] == ("succeeded", ["signal_0_score.root"])
    assert in_process["delete running"] == "Conflict"
    assert in_process["after delete"] == "NotFound"
    assert in_process["missing job"][0] == "NotFound"
    assert in_process["bad spec"][0] == "SpecError"
    assert in_process["bad spec"][2] == "model.name"
    assert in_process["bad executor"][2] == "executor"
    assert in_process["roc is a png"] == b"\x89PNG\r\n\x1a\n"
    assert "auc" in in_process["eq-local metrics"]
    assert in_process["predict"] == {"model": "eq-local", "version": 1, "task": "binary"}
    assert in_process["eq-local events"][-2:] == ["done", "state"]
