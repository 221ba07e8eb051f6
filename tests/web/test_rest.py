"""Every endpoint through a real Jupyter server: happy paths, and errors with messages."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from web_helpers import toy_spec, wait_for

# -- browsing ---------------------------------------------------------------------------


async def test_files_lists_folders_and_data_files(api: Any, toy_dir: Path) -> None:
    status, top = await api("files")
    assert status == 200
    assert {"name": "toy", "is_dir": True, "path": "toy"}.items() <= top["entries"][0].items()
    status, listing = await api("files", params={"path": "toy"})
    assert status == 200
    names = [e["name"] for e in listing["entries"]]
    assert names == ["background_0.root", "signal_0.root"]  # no yaml, no hidden files
    entry = listing["entries"][1]
    assert entry["path"] == "toy/signal_0.root"
    assert entry["size"] == (toy_dir / "signal_0.root").stat().st_size
    assert entry["is_dir"] is False
    assert entry["mtime"] > 0


async def test_files_errors(api: Any) -> None:
    status, body = await api("files", params={"path": "nowhere"})
    assert status == 404
    assert "no such folder" in body["detail"]
    status, body = await api("files", params={"path": "toy/signal_0.root"})
    assert status == 404
    assert "not a folder" in body["detail"]


async def test_trees_and_branches(api: Any) -> None:
    status, body = await api("trees", params={"path": "toy/signal_0.root"})
    assert (status, body["trees"]) == (200, ["Events"])
    status, info = await api("branches", params={"path": "toy/signal_0.root", "tree": "Events"})
    assert status == 200
    assert info["name"] == "Events"
    assert info["entries"] == 2000
    kinds = {b["name"]: b["kind"] for b in info["branches"]}
    assert kinds["MET_pt"] == "flat"
    assert kinds["Jet_pt"] == "jagged"
    # the only tree is used when none is named
    status, alone = await api("branches", params={"path": "toy/signal_0.root"})
    assert status == 200
    assert alone == info


async def test_trees_and_branches_errors(api: Any) -> None:
    status, body = await api("trees", params={"path": "toy/missing.root"})
    assert status == 404
    assert "no such file" in body["detail"]
    status, body = await api("trees")
    assert status == 400
    assert "path" in body["detail"]
    status, body = await api("trees", params={"path": "toy/dataset.yaml"})
    assert status == 400
    assert "not a ROOT file" in body["detail"]
    status, body = await api("branches", params={"path": "toy/signal_0.root", "tree": "Nope"})
    assert status == 400
    assert "no tree 'Nope'" in body["detail"]
    assert body["error"] == "Bad Request"


# -- jobs ---------------------------------------------------------------------------------


async def test_job_lifecycle_events_logs_artefacts(api: Any) -> None:
    status, job = await api("jobs", method="POST", body={"spec": toy_spec(), "name": "toy"})
    assert status == 201, job
    assert job["state"] in ("queued", "running")
    assert job["executor"] == "local"
    done = await wait_for(api, job["id"], ("succeeded", "failed"))
    assert done["state"] == "succeeded"
    assert done["metrics"] == {"auc": 0.9}
    status, listing = await api("jobs")
    assert status == 200
    assert [j["id"] for j in listing["jobs"]] == [job["id"]]
    status, listing = await api("jobs", params={"state": "failed,cancelled"})
    assert (status, listing["jobs"]) == (200, [])

    status, events = await api("jobs", job["id"], "events", params={"since": 0})
    assert status == 200
    assert events["state"] == "succeeded"
    kinds = [(e["type"], e.get("state")) for e in events["events"]]
    assert kinds == [
        ("state", "queued"),
        ("state", "running"),
        ("start", None),
        ("epoch", None),
        ("epoch", None),
        ("done", None),
        ("state", "succeeded"),
    ]
    assert [e["seq"] for e in events["events"]] == list(range(1, 8))
    status, later = await api("jobs", job["id"], "events", params={"since": 5})
    assert [e["seq"] for e in later["events"]] == [6, 7]
    assert later["next"] == 7

    status, logs = await api("jobs", job["id"], "logs")
    assert status == 200
    assert logs["text"] == "trained\n"

    status, artefacts = await api("jobs", job["id"], "artefacts")
    assert status == 200
    paths = {a["path"]: a for a in artefacts["artefacts"]}
    assert set(paths) == {"plots/loss.png", "plots/curves.json", "bundle.zip"}
    assert paths["plots/loss.png"]["media_type"] == "image/png"


async def test_artefact_downloads(api: Any, jp_fetch: Any) -> None:
    status, job = await api("jobs", method="POST", body={"spec": toy_spec(), "name": "toy"})
    await wait_for(api, job["id"], ("succeeded",))
    response = await jp_fetch("mlaas", "api", "jobs", job["id"], "artefacts", "plots/loss.png")
    assert response.headers["Content-Type"] == "image/png"
    assert response.body.startswith(b"\x89PNG")
    response = await jp_fetch("mlaas", "api", "jobs", job["id"], "artefacts", "bundle.zip")
    assert response.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.body))
    assert sorted(archive.namelist()) == ["bundle/manifest.json", "bundle/model.onnx"]
    assert json.loads(archive.read("bundle/manifest.json")) == {"name": "toy"}
    status, body = await api("jobs", job["id"], "artefacts", "plots/nothing.png")
    assert status == 404
    assert "no such artefact" in body["detail"]


async def test_job_submitted_from_a_spec_file(api: Any, toy_dir: Path) -> None:
    spec = toy_spec()
    spec["dataset"]["classes"] = {"b": ["background_0.root"], "s": ["signal_0.root"]}
    (toy_dir / "train.json").write_text(json.dumps(spec))
    status, job = await api("jobs", method="POST", body={"spec_path": "toy/train.json"})
    assert status == 201, job
    files = job["spec"]["dataset"]["classes"]["s"]["files"]
    assert files == [str(toy_dir.resolve() / "signal_0.root")]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"spec": {**toy_spec(), "model": {"name": "resnet"}}}, "model.name", "built-in"),
        ({"spec": {"model": {"name": "mlp"}}}, "dataset", "missing"),
        ({"spec": toy_spec(), "colour": 1}, "colour", "unknown field"),
        ({"spec": toy_spec(), "executor": "cloud"}, "executor", "unknown executor"),
        ({}, "spec", "exactly one"),
        ({"spec": [1, 2]}, "spec", "expected a mapping"),
        ({"spec_path": "toy/none.yaml"}, "spec_path", "no such file"),
        (
            {"spec": {**toy_spec(), "model": {"name": "bdt"}, "training": {"workers": 2}}},
            "training.workers",
            "the BDT (scikit-learn) trains in one process: set workers: 1",
        ),
        ({"spec": {**toy_spec(), "training": {"workers": 0}}}, "training.workers", ">= 1"),
        ({"spec": {**toy_spec(), "cluster": {}}}, "cluster", "exactly one of local"),
    ],
)
async def test_job_bad_specs_name_the_field(
    api: Any, body: dict[str, Any], field: str, words: str
) -> None:
    status, reply = await api("jobs", method="POST", body=body)
    assert status == 400, reply
    assert reply["field"] == field
    assert words in reply["detail"]


async def test_job_spec_with_missing_files(api: Any) -> None:
    spec = toy_spec()
    spec["dataset"]["classes"]["background"] = ["toy/none_*.root"]
    status, reply = await api("jobs", method="POST", body={"spec": spec})
    assert status == 400
    assert reply["field"] == "dataset.classes.background"
    assert "matches no files" in reply["detail"]


async def test_job_body_not_json(api: Any) -> None:
    status, reply = await api("jobs", method="POST", body="{not json")
    assert status == 400
    assert "JSON" in reply["detail"]
    status, reply = await api("jobs", method="POST", body="[1]")
    assert status == 400
    assert reply["field"] == "body"


async def test_unknown_jobs_are_404(api: Any) -> None:
    for parts, method in [
        (("jobs", "abc123"), "GET"),
        (("jobs", "abc123"), "DELETE"),
        (("jobs", "abc123", "events"), "GET"),
        (("jobs", "abc123", "logs"), "GET"),
        (("jobs", "abc123", "artefacts"), "GET"),
        (("jobs", "abc123", "artefacts", "bundle.zip"), "GET"),
    ]:
        status, reply = await api(*parts, method=method)
        assert status == 404, (parts, reply)
        assert reply == {"error": "Not Found", "detail": "no job with id 'abc123'"}
    status, reply = await api("jobs", "abc123", "resubmit", method="POST", body={})
    assert status == 404


async def test_cancel_fail_resubmit_and_conflicts(api: Any) -> None:
    status, blocked = await api("jobs", method="POST", body={"spec": toy_spec(), "name": "block"})
    await wait_for(api, blocked["id"], ("running",))
    status, reply = await api("jobs", blocked["id"], method="DELETE")
    assert (status, reply["error"]) == (409, "Conflict")  # a running job is not deleted
    assert "cancel it before deleting it" in reply["detail"]
    status, cancelled = await api("jobs", blocked["id"], "cancel", method="POST", body={})
    assert (status, cancelled["state"]) == (200, "cancelled")
    status, reply = await api("jobs", blocked["id"], "cancel", method="POST", body={})
    assert status == 409
    assert "already finished (cancelled)" in reply["detail"]
    assert reply["error"] == "Conflict"
    status, again = await api("jobs", blocked["id"], "resubmit", method="POST", body={})
    assert status == 201
    assert again["resumed_from"] == blocked["id"]
    assert again["spec"]["training"]["resume"] is True
    await api("jobs", again["id"], "cancel", method="POST", body={})

    status, failing = await api("jobs", method="POST", body={"spec": toy_spec(), "name": "fail"})
    failed = await wait_for(api, failing["id"], ("failed",))
    assert failed["error"] == "boom"
    status, good = await api("jobs", method="POST", body={"spec": toy_spec(), "name": "ok"})
    await wait_for(api, good["id"], ("succeeded",))
    status, reply = await api("jobs", good["id"], "resubmit", method="POST", body={})
    assert status == 409
    assert "only lost, failed or cancelled" in reply["detail"]
    status, reply = await api("jobs", good["id"], method="DELETE")
    assert (status, reply["deleted"], reply["run_dir_removed"]) == (200, True, True)
    assert not Path(good["run_dir"]).exists()
    status, reply = await api("jobs", good["id"])
    assert status == 404
    status, reply = await api("jobs", good["id"], "events")
    assert status == 404


async def test_bad_query_arguments(api: Any) -> None:
    status, job = await api("jobs", method="POST", body={"spec": toy_spec()})
    status, reply = await api("jobs", job["id"], "events", params={"since": "x"})
    assert status == 400
    assert reply["field"] == "since"
    status, reply = await api("jobs", params={"state": "sleeping"})
    assert status == 400
    assert reply["field"] == "state"
    assert "allowed values" in reply["detail"]
    status, reply = await api("jobs", params={"limit": "-1"})
    assert status == 400
    assert reply["field"] == "limit"
    status, reply = await api("jobs", params={"limt": "5"})  # a typo is not ignored
    assert (status, reply["field"]) == (400, "limt")
    status, reply = await api("jobs", params={"1796526164293": ""})  # JupyterLab's cache buster
    assert status == 200
    assert [j["id"] for j in reply["jobs"]] == [job["id"]]


async def test_unknown_routes_and_methods_are_json(api: Any) -> None:
    status, reply = await api("nothing", "here")
    assert status == 404
    assert "no such endpoint" in reply["detail"]
    status, reply = await api("jobs", method="PUT", body={})
    assert status == 405
    assert reply["error"] == "Method Not Allowed"


BAD_INPUTS: list[tuple[tuple[str, ...], str, Any, dict[str, str]]] = [
    (("files",), "GET", None, {"path": "\u00fc\u2603"}),
    (("files",), "GET", None, {"path": "%"}),
    (("trees",), "GET", None, {"path": ""}),
    (("branches",), "GET", None, {"path": "toy", "tree": ""}),
    (("histograms",), "POST", "null", {}),
    (("histograms",), "POST", {"classes": {"s": "toy/signal_0.root"}, "branch": 3}, {}),
    (("histograms",), "POST", {"classes": {"s": [1]}, "branch": "x", "range": "a"}, {}),
    (("histograms",), "POST", {"classes": [], "branch": "x"}, {}),
    (("histograms",), "POST", {"classes": {"s": ["toy"]}, "branch": "Jet_pt[:, 0:2][0]"}, {}),
    (("histograms",), "POST", {"classes": {"s": ["toy"]}, "expression": "1", "bins": 1e9}, {}),
    (("jobs",), "POST", {"spec": {"dataset": None}}, {}),
    (("jobs",), "POST", {"spec": toy_spec(), "name": 5}, {}),
    (("jobs",), "POST", {"spec_path": ["a"]}, {}),
    (("jobs",), "GET", None, {"limit": "1e3"}),
]


@pytest.mark.parametrize(("parts", "method", "body", "params"), BAD_INPUTS)
async def test_bad_input_never_raises(
    api: Any, parts: tuple[str, ...], method: str, body: Any, params: dict[str, str]
) -> None:
    status, reply = await api(*parts, method=method, body=body, params=params)
    assert 400 <= status < 500, reply
    assert set(reply) >= {"error", "detail"}
    assert reply["detail"]
