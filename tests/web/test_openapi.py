"""The checked-in OpenAPI document matches the routes, and real replies match its schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from test_auth import example_url, implemented, mlaas_routes
from test_web_models import _zip
from web_helpers import toy_spec, wait_for

import mlaas_jupyter.web

DOC_PATH = Path(mlaas_jupyter.web.__file__).parent / "openapi.yaml"
SAMPLES = {"job_id": "abc123", "path": "plots/loss.png", "name": "toy"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return dict(yaml.safe_load(DOC_PATH.read_text()))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_document_is_consistent(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    assert doc["security"]
    assert "token" in doc["components"]["securitySchemes"]
    for ref in _refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # KeyError: a dangling $ref
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["responses"], (path, method)
            assert operation["operationId"]


def _routes(app: Any) -> list[tuple[re.Pattern[str], type]]:
    base = app.web_app.settings["base_url"]
    routes = []
    for pattern, handler in mlaas_routes(app.web_app):
        relative = pattern.removeprefix(base)
        assert relative != pattern, (pattern, base)
        routes.append((re.compile("/" + relative.removeprefix("mlaas/api/")), handler))
    return routes


def _doc_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }


def _concrete(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], template)


def test_every_documented_operation_has_a_handler(doc: dict[str, Any], jp_serverapp: Any) -> None:
    routes = _routes(jp_serverapp)
    for path, method in _doc_operations(doc):
        url = _concrete(path)
        handler = next(h for regex, h in routes if regex.fullmatch(url))  # tornado: first match
        assert not getattr(handler, "openapi_exempt", False), f"{method} {path}: no route"
        assert method in implemented(handler), f"{method} {path}: {handler.__name__}"


def test_every_handler_is_documented(doc: dict[str, Any], jp_serverapp: Any) -> None:
    operations = _doc_operations(doc)
    for regex, handler in _routes(jp_serverapp):
        if getattr(handler, "openapi_exempt", False):
            continue
        paths = [p for p in doc["paths"] if regex.fullmatch(_concrete(p))]
        assert len(paths) == 1, (regex.pattern, paths)
        for method in implemented(handler):
            assert (paths[0], method) in operations, f"{method} {paths[0]} is not documented"
    assert example_url("/x/(?P<job_id>[a-z]+)$") == "/x/abc123"


class Checker:
    """Validates replies against the document's schema of (path, method, status)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)
        self.seen: set[tuple[str, str, str]] = set()

    def __call__(self, path: str, method: str, status: int, body: Any) -> None:
        operation = self.doc["paths"][path][method.lower()]
        response = operation["responses"][str(status)]
        if "$ref" in response:
            response = self.doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response["content"]["application/json"]["schema"]
        ref = schema.get("$ref", "")
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"urn:openapi{ref}"} if ref else schema, registry=self.registry
        )
        validator.validate(body)
        self.seen.add((path, method, str(status)))


async def test_replies_match_the_schemas(
    doc: dict[str, Any], api: Any, outside_dir: Path, toy_bundles: dict[str, Path]
) -> None:
    check = Checker(doc)
    for path, method, parts, kwargs, status in [
        ("/files", "GET", ("files",), {}, 200),
        ("/files", "GET", ("files",), {"params": {"path": "none"}}, 404),
        ("/files", "GET", ("files",), {"params": {"path": ".."}}, 403),
        ("/trees", "GET", ("trees",), {"params": {"path": "toy/signal_0.root"}}, 200),
        ("/branches", "GET", ("branches",), {"params": {"path": "toy/signal_0.root"}}, 200),
        ("/branches", "GET", ("branches",), {"params": {"path": "toy/dataset.yaml"}}, 400),
    ]:
        code, body = await api(*parts, method=method, **kwargs)
        assert code == status, body
        check(path, method, code, body)
    request = {"classes": {"s": ["toy/signal_0.root"]}, "branch": "MET_pt", "bins": 5}
    code, body = await api("histograms", method="POST", body=request)
    check("/histograms", "POST", code, body)
    code, body = await api("jobs", method="POST", body={"spec": toy_spec(), "name": "ok"})
    check("/jobs", "POST", code, body)
    job_id = body["id"]
    await wait_for(api, job_id, ("succeeded",))
    for template, parts in [
        ("/jobs", ()),
        ("/jobs/{job_id}", (job_id,)),
        ("/jobs/{job_id}/events", (job_id, "events")),
        ("/jobs/{job_id}/logs", (job_id, "logs")),
        ("/jobs/{job_id}/artefacts", (job_id, "artefacts")),
    ]:
        code, body = await api("jobs", *parts)
        check(template, "GET", code, body)
    code, body = await api("jobs", job_id, method="DELETE")
    check("/jobs/{job_id}", "DELETE", code, body)
    assert code == 409
    code, body = await api("jobs", job_id, "resubmit", method="POST", body={})
    check("/jobs/{job_id}/resubmit", "POST", code, body)
    code, body = await api("jobs", "nothing1", "logs")
    check("/jobs/{job_id}/logs", "GET", code, body)
    code, body = await api("jobs", method="POST", body={"spec": {"dataset": {}}})
    check("/jobs", "POST", code, body)
    code, _ = await api(
        "models", method="POST", body=_zip(toy_bundles["flat"]), params={"name": "toy"}
    )
    assert code == 201
    request = {"path": "toy/*.root", "out": "scores", "async": True}
    code, body = await api("models", "toy", "predict_file", method="POST", body=request)
    assert code == 202, body
    check("/models/{name}/predict_file", "POST", code, body)
    code, body = await api("models", "toy", "predict_file", method="POST", body={"path": 1})
    check("/models/{name}/predict_file", "POST", code, body)
    assert len(check.seen) == 19
