"""The OpenAPI document: generated from the routes, committed up to date, valid OpenAPI
3.1 with valid JSON Schemas, the same operations as the server mounts, and the
statuses, media types and error bodies of a real server's replies."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import uproot
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from report_examples import write_report_folder
from run_folders import write_run_folder
from standalone_helpers import rows_of, zipped
from test_auth import concrete, mounted
from web_helpers import API, FakeExecutor, toy_spec, wait_for

from mlaas_jupyter import __version__
from mlaas_jupyter.jobs import JobState
from mlaas_jupyter.web import openapi
from mlaas_jupyter.web.handlers import RouteHandler
from mlaas_jupyter.web.openapi import DOCUMENT_PATH, build_document, render
from mlaas_jupyter.web.routes import API_PREFIX, ROUTES, route

METHODS = ("get", "post", "delete", "put", "patch")
STALE = "openapi.json is stale: run python -m mlaas_jupyter.web.openapi --write"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_document()


def test_the_committed_document_is_up_to_date(doc: dict[str, Any]) -> None:
    assert DOCUMENT_PATH.read_text() == render(), STALE
    assert json.loads(DOCUMENT_PATH.read_text()) == doc


def test_check_and_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr(openapi, "DOCUMENT_PATH", tmp_path / "openapi.json")
    assert openapi.main(["--check"]) == 1  # missing
    assert "run python -m mlaas_jupyter.web.openapi --write" in capsys.readouterr().out
    assert openapi.main(["--write"]) == 0
    assert (tmp_path / "openapi.json").read_text() == render()
    assert openapi.main(["--check"]) == 0
    (tmp_path / "openapi.json").write_text(render().replace("Error", "Err"))
    assert openapi.main(["--check"]) == 1
    capsys.readouterr()
    assert openapi.main([]) == 0
    assert json.loads(capsys.readouterr().out) == build_document()


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _schemas(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, schema) of every JSON Schema in the document."""
    found = list(doc["components"]["schemas"].items())
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            found += [
                (f"{where} {p['name']}", p["schema"]) for p in operation.get("parameters", [])
            ]
            for kind, media in operation.get("requestBody", {}).get("content", {}).items():
                found.append((f"{where} body {kind}", media["schema"]))
            for status, reply in operation["responses"].items():
                for kind, media in reply["content"].items():
                    found.append((f"{where} {status} {kind}", media["schema"]))
    return found


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    # openapi-spec-validator is not a dependency: the structure is checked here, the
    # schemas against the Draft 2020-12 metaschema (OpenAPI 3.1's default dialect)
    assert (doc["openapi"], doc["info"]["title"], doc["info"]["version"]) == (
        "3.1.0",
        "mlaas-jupyter",
        __version__,
    )
    assert doc["servers"] == [{"url": "/" + API_PREFIX.rstrip("/")}]
    assert doc["security"] == [{"token": []}]
    assert doc["components"]["securitySchemes"]["token"]["in"] == "header"
    for ref in _refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # KeyError: a dangling $ref
    schemas = _schemas(doc)
    assert len(schemas) > 100
    for where, schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)
        if "default" in schema:  # a default the schema itself refuses would mislead
            jsonschema.Draft202012Validator(schema).validate(schema["default"])
        assert where
    operation_ids = []
    for path, item in doc["paths"].items():
        assert re.fullmatch(r"(/[\w{}]+(\.html)?)+", path), path
        assert set(item) <= set(METHODS), path
        for method, operation in item.items():
            operation_ids.append(operation["operationId"])
            assert operation["summary"], (method, path)
            assert operation["tags"], (method, path)
            params = operation.get("parameters", [])
            in_path = [p["name"] for p in params if p["in"] == "path"]
            assert in_path == re.findall(r"{(\w+)}", path), (method, path)
            assert all(p["required"] for p in params if p["in"] == "path")
            assert len({(p["name"], p["in"]) for p in params}) == len(params)
            for status, reply in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status), status
                assert reply["description"], status
                if int(status) >= 400:
                    schema = reply["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}
            assert {"400", "401", "403", "405"} <= set(operation["responses"])
    assert sorted(operation_ids) == sorted(r.name for r in ROUTES)  # unique, one per route


def test_the_document_and_the_server_have_the_same_operations(
    doc: dict[str, Any], jp_serverapp: Any
) -> None:
    base = jp_serverapp.web_app.settings["base_url"] + API_PREFIX
    rules = [(re.compile(p), h, k) for p, h, k in mounted(jp_serverapp.web_app)]
    documented = {(p, m.upper()) for p, item in doc["paths"].items() for m in item}
    served = set()
    for regex, handler, kwargs in rules:
        if handler is not RouteHandler:
            continue
        paths = [p for p in doc["paths"] if regex.fullmatch(base + concrete(p[1:]))]
        assert len(paths) == 1, (regex.pattern, paths)
        served |= {(paths[0], method) for method in kwargs["routes"]}
    assert served == documented
    for path, method in documented:  # and tornado picks the handler of that operation
        url = base + concrete(path[1:])
        handler, kwargs = next((h, k) for regex, h, k in rules if regex.fullmatch(url))
        assert handler is RouteHandler, (method, path)
        assert kwargs["routes"][method].path == path[1:]


class Replies:
    """Calls the server and checks each reply against the document's response of that
    operation and status: listed, of a documented media type, valid JSON (error
    replies: the Error schema). Remembers which (operation, status) it saw."""

    def __init__(self, doc: dict[str, Any], jp_fetch: Any) -> None:
        self.doc, self.fetch = doc, jp_fetch
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)
        self.seen: set[tuple[str, str]] = set()
        self.kind = ""  # the media type of the last reply

    async def __call__(
        self,
        operation_id: str,
        status: int,
        body: Any = None,
        /,
        method: str | None = None,
        **params: Any,
    ) -> Any:
        """Call an operation (``method``: another on its path) and expect ``status``.
        Path parameters by name; ``query`` and ``headers`` as jp_fetch takes them."""
        name = operation_id
        operation = route(name)
        query, headers = params.pop("query", {}), params.pop("headers", {})
        url = operation.path.format(**params)
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
        if body is None and (method or operation.method) in ("POST", "PUT"):
            body = b""
        response = await self.fetch(
            *API,
            url,
            method=method or operation.method,
            body=body,
            params=query,
            headers=headers,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        text = response.body
        assert response.code == status, (name, url, response.code, text[:500])
        responses = self.doc["paths"]["/" + operation.path][operation.method.lower()]["responses"]
        assert str(status) in responses, f"{name}: status {status} is not documented"
        content = responses[str(status)]["content"]
        kind = response.headers["Content-Type"].split(";")[0]
        assert kind in content or "*/*" in content, (name, status, kind)
        self.seen.add((name, str(status)))
        self.kind = kind
        if kind != "application/json" or kind not in content:  # a file or Arrow
            return text
        reply = json.loads(text)
        schema = content["application/json"]["schema"]
        ref = schema.get("$ref", "")
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"urn:openapi{ref}"} if ref else schema, registry=self.registry
        )
        validator.validate(reply)
        return reply


@pytest.fixture
def mlaas_config(tmp_path: Path) -> dict[str, Any]:
    """The test server's, with its own models and small body limits (413)."""
    return {
        "job_store": str(tmp_path / "state" / "jobs.sqlite"),
        "runs_dir": str(tmp_path / "state" / "runs"),
        "models_dir": str(tmp_path / "state" / "models"),
        "local_executor_class": FakeExecutor,
        "default_executor": "local",
        "max_predict_bytes": 100_000,
        "max_upload_bytes": 200_000,
    }


async def test_every_documented_reply_of_a_real_server(
    doc: dict[str, Any],
    api: Any,
    jp_fetch: Any,
    jp_root_dir: Path,
    outside_dir: Path,
    toy_bundles: dict[str, Path],
    mlaas: Any,
) -> None:
    call = Replies(doc, jp_fetch)
    secret = str(outside_dir / "secret.root")
    # every operation: 401 without a token, 403 for a Host the server does not answer
    # to, 405 for a method of no route on its path, 400 for an unknown query argument
    for operation in ROUTES:
        params = dict.fromkeys(operation.params, "x1")
        await call(operation.name, 401, headers={"Authorization": ""}, **params)
        await call(operation.name, 403, headers={"Host": "rebound.example.com"}, **params)
        await call(operation.name, 405, method="PUT", **params)
        await call(operation.name, 400, query={"colour": "red"}, **params)

    await call("info", 200)
    await call("list_files", 200)
    await call("list_files", 403, query={"path": ".."})
    await call("list_files", 404, query={"path": "none"})
    await call("list_trees", 200, query={"path": "toy/signal_0.root"})
    await call("list_trees", 403, query={"path": secret})
    await call("list_trees", 404, query={"path": "toy/none.root"})
    await call("branches", 200, query={"path": "toy/signal_0.root"})
    await call("branches", 403, query={"path": secret})
    await call("branches", 404, query={"path": "toy/none.root"})
    histogram = {"classes": {"s": ["toy/signal_0.root"]}, "branch": "MET_pt", "bins": 5}
    await call("histograms", 200, histogram)
    await call("histograms", 403, {**histogram, "classes": {"s": [secret]}})
    dataset = {"classes": {"s": "toy/signal_0.root", "b": "toy/background_0.root"}}
    assert (await call("dataset_stats", 200, dataset))["classes"]["s"]["events"] == 2000
    await call("dataset_stats", 400, {"classes": {"s": "toy/signal_0.root"}})
    await call("dataset_stats", 403, {**dataset, "classes": {"s": secret, "b": secret}})

    await call("list_jobs", 200)
    await call("submit_job", 400, {"spec": {"dataset": {}}})
    await call("submit_job", 403, {"spec_path": str(outside_dir / "train.yaml")})
    job_id = (await call("submit_job", 201, {"spec": toy_spec(), "name": "ok"}))["id"]
    await wait_for(api, job_id, ("succeeded",))
    for name in ("get_job", "job_events", "job_logs", "list_artefacts"):
        await call(name, 200, job_id=job_id)
        await call(name, 404, job_id="nothing1")
    await call("job_events", 400, job_id=job_id, query={"since": "-1"})
    png = await call("get_artefact", 200, job_id=job_id, path="plots/loss.png")
    assert (call.kind, png[:4]) == ("image/png", b"\x89PNG")
    curves = await call("get_artefact", 200, job_id=job_id, path="plots/curves.json")
    assert (call.kind, json.loads(curves)) == ("application/json", {"history": []})
    run_dir = Path((await call("get_job", 200, job_id=job_id))["run_dir"])
    (run_dir / "notes.txt").touch()  # no chunk: the media type is still the file's
    empty = await call("get_artefact", 200, job_id=job_id, path="notes.txt")
    assert (call.kind, empty) == ("text/plain", b"")
    await call("get_artefact", 403, job_id=job_id, path="..%2F..%2Fjobs.sqlite")
    await call("get_artefact", 404, job_id=job_id, path="plots/none.png")
    await call("cancel_job", 409, job_id=job_id)
    await call("resubmit_job", 409, job_id=job_id)
    other = (await call("submit_job", 201, {"spec": toy_spec(), "name": "other"}))["id"]
    await wait_for(api, other, ("succeeded",))
    for each in (job_id, other):  # run folders as real runs leave them
        write_run_folder(Path((await call("get_job", 200, job_id=each))["run_dir"]))
    pair = {"jobs": f"{job_id},{other}"}
    assert len((await call("compare_jobs", 200, query=pair))["runs"]) == 2
    assert (await call("compare_plot", 200, query=pair))[:4] == b"\x89PNG"
    write_report_folder(run_dir)  # a report as training writes it
    assert (await call("job_report", 200, job_id=job_id))["task"] == "binary"
    page = await call("job_report_html", 200, job_id=job_id)
    assert (call.kind, page[:15]) == ("text/html", b"<!DOCTYPE html>")
    blocked = (await call("submit_job", 201, {"spec": toy_spec(), "name": "block"}))["id"]
    await wait_for(api, blocked, ("running",))
    await call("delete_job", 409, job_id=blocked)
    assert (await call("cancel_job", 200, job_id=blocked))["state"] == "cancelled"
    again = (await call("resubmit_job", 201, job_id=blocked))["id"]
    await call("cancel_job", 200, job_id=again)
    record = mlaas.core.store.get(blocked)  # a job as a server stopped mid-run leaves it:
    lost = replace(record, id="lost1", name="ok", state=JobState.LOST, events=0)
    mlaas.core.store.create(replace(lost, run_dir=f"{record.run_dir}-lost"))
    assert (await call("resume_job", 200, job_id="lost1"))["state"] == "queued"
    await wait_for(api, "lost1", ("succeeded",))
    await call("resume_job", 409, job_id="lost1")
    for name in ("compare_jobs", "compare_plot"):
        await call(name, 404, query={"jobs": f"{job_id},nothing1"})
        await call(name, 409, query={"jobs": f"{job_id},{blocked}"})
    for name in ("job_report", "job_report_html"):
        await call(name, 404, job_id="nothing1")
        await call(name, 409, job_id=blocked)
    for name in ("cancel_job", "resubmit_job", "resume_job", "delete_job"):
        await call(name, 404, job_id="nothing1")
    await call("delete_job", 200, job_id=job_id)

    sweep = {"spec": toy_spec(), "params": {"training.epochs": "1,2"}, "metric": "loss"}
    await call("list_sweeps", 200)
    await call("submit_sweep", 400, {**sweep, "params": {"model.params.hiden": "1,2"}})
    outside = {"spec_path": str(outside_dir / "train.yaml"), "params": sweep["params"]}
    await call("submit_sweep", 403, outside)
    swept = (await call("submit_sweep", 201, {**sweep, "register": False}))["id"]
    while (await call("get_sweep", 200, sweep_id=swept))["state"] == "running":
        await asyncio.sleep(0.1)
    await call("cancel_sweep", 409, sweep_id=swept)
    blocked_sweep = (await call("submit_sweep", 201, {**sweep, "name": "block"}))["id"]
    await call("delete_sweep", 409, sweep_id=blocked_sweep)  # its trials block: running
    assert (await call("cancel_sweep", 200, sweep_id=blocked_sweep))["state"] == "cancelled"
    lost = {**(await call("get_sweep", 200, sweep_id=swept)), "id": "lost1", "state": "lost"}
    mlaas.core.store.create_sweep(lost)  # as a server that stopped mid-sweep leaves it
    assert (await call("resume_sweep", 200, sweep_id="lost1"))["state"] == "running"
    await call("resume_sweep", 409, sweep_id=swept)
    while (await call("get_sweep", 200, sweep_id="lost1"))["state"] == "running":
        await asyncio.sleep(0.1)
    for name in ("get_sweep", "cancel_sweep", "resume_sweep", "delete_sweep"):
        await call(name, 404, sweep_id="nothing1")
    await call("delete_sweep", 200, sweep_id=swept)

    await call("list_models", 200)
    await call("upload_model", 400, b"")
    await call("upload_model", 413, b"x" * 200_001)
    await call("upload_model", 201, zipped(toy_bundles["flat"]), query={"name": "toy"})
    await call("get_model", 200, name="toy")
    await call("get_model", 400, name="toy", query={"version": "x"})
    await call("get_model", 404, name="nope")
    rows = {"rows": rows_of(3)}
    await call("predict", 200, rows, name="toy")
    arrow = {"Accept": "application/vnd.apache.arrow.stream"}
    assert await call("predict", 200, rows, name="toy", headers=arrow)
    assert call.kind == "application/vnd.apache.arrow.stream"
    await call("predict", 400, {"rows": [1]}, name="toy")
    await call("predict", 404, rows, name="nope")
    await call("predict", 413, b"x" * 100_001, name="toy")
    source = jp_root_dir / "events.root"
    columns = {k: np.array(v, dtype=np.float32) for k, v in _columns(rows_of(20)).items()}
    with uproot.recreate(source) as handle:
        handle.mktree("Events", {k: np.float32 for k in columns}).extend(columns)
    request = {"path": "events.root", "out": "events_score.root"}
    assert (await call("predict_file", 200, request, name="toy"))["entries"] == 20
    job = await call("predict_file", 202, {**request, "out": "scored", "async": True}, name="toy")
    assert job["kind"] == "predict"
    await call("predict_file", 400, {"path": 1}, name="toy")
    await call("predict_file", 403, {**request, "path": secret}, name="toy")
    await call("predict_file", 404, request, name="nope")
    await call("delete_model", 400, name="toy", query={"version": "0"})
    await call("delete_model", 404, name="nope")
    await call("delete_model", 200, name="toy")

    documented = {
        (item[method]["operationId"], status)
        for item in doc["paths"].values()
        for method in item
        for status in item[method]["responses"]
    }
    assert call.seen == documented, sorted(documented ^ call.seen)


def _columns(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    return {k: [r[k] for r in rows] for k in rows[0]}
