"""The OpenAPI document of the REST API, generated from the routes and the spec models.

``openapi.json`` beside this module is the committed copy (a test fails when it
differs from what this module generates). Regenerate it after changing a route or a
request model::

    python -m mlaas_jupyter.web.openapi --write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .._version import __version__
from ..specs._base import SpecModel
from ..specs.training import TrainSpec
from ._replies import REPLIES, STATUS_REPLIES, reply_schemas
from .routes import API_PREFIX, PARAM_PATTERNS, ROUTES, Route

__all__ = ["DOCUMENT_PATH", "build_document", "main"]

DOCUMENT_PATH = Path(__file__).with_name("openapi.json")
_REF = "#/components/schemas/{model}"
_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "description": "the HTTP reason phrase"},
        "detail": {"type": "string", "description": "what is wrong, and where"},
        "field": {"type": "string", "description": "the dotted spec field at fault"},
    },
}
_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    202: "Accepted: a prediction job was submitted",
    400: "Bad request: a field, value or body is wrong (see detail and field)",
    401: "Not authenticated: no token or a wrong one (see WWW-Authenticate)",
    403: "Not allowed: a path outside the data roots, the authorizer's refusal, or a Host "
    "header the server does not answer to",
    404: "No such job, model, file or route",
    405: "Method not allowed (see the Allow header)",
    409: "Conflict: the job is not in a state that allows this",
    413: "The request body or batch is over the limit",
}
_RAW_BODIES: dict[str, dict[str, Any]] = {
    "upload_model": {
        "application/zip": {"schema": {"type": "string", "format": "binary"}},
        "application/gzip": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "name": {"type": "string"},
                },
            }
        },
    },
    "predict": {
        "application/json": {"schema": {"$ref": "#/components/schemas/PredictionPayload"}},
        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
#: replies that are not JSON when the request asks so (Accept)
_RAW_REPLIES: dict[str, dict[str, Any]] = {
    "predict": {
        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}}
    },
}
_PAYLOAD = {
    "description": "Events to score: rows (objects of named features), columns (feature "
    "-> values), or TFaaS keys/values. Jagged features are lists.",
    "type": "object",
    "properties": {
        "rows": {"type": "array", "items": {"type": "object"}},
        "columns": {"type": "object", "additionalProperties": {"type": "array"}},
        "keys": {"type": "array", "items": {"type": "string"}},
        "values": {"type": "array"},
        "model": {"type": "string"},
    },
}


def _schema(model: type[SpecModel], schemas: dict[str, Any]) -> dict[str, Any]:
    """A reference to ``model``'s schema, adding it and its definitions to ``schemas``."""
    schema = model.model_json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    if model.__name__ == "JobRequest":  # its spec mapping is a training spec
        spec = schema["properties"]["spec"]
        spec["anyOf"] = [{"$ref": _REF.format(model="TrainSpec")}, {"type": "null"}]
    schemas[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


def _parameters(route: Route) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": f"^{PARAM_PATTERNS[name]}$"},
        }
        for name in route.params
    ]
    if route.query is not None:
        schema = route.query.model_json_schema()
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            description = prop.pop("description", None)
            prop.pop("title", None)
            parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if prop.get("type") == "array":  # one comma-separated argument: jobs=a,b
                parameter.update(style="form", explode=False)
            if description:
                parameter["description"] = description
            found.append(parameter)
    return found


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
    }
    if parameters := _parameters(route):
        operation["parameters"] = parameters
    if route.name in _RAW_BODIES:
        operation["requestBody"] = {"required": True, "content": _RAW_BODIES[route.name]}
    elif route.body is not None:
        content = {"application/json": {"schema": _schema(route.body, schemas)}}
        operation["requestBody"] = {"required": True, "content": content}
    statuses = {route.status} | ({200, 202} if route.status_of is not None else set())
    responses: dict[str, Any] = {
        str(status): {"description": _DESCRIPTIONS[status], "content": _reply(route, status)}
        for status in sorted(statuses)
    }
    error = {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}
    # every route: 400 for an unknown query argument or a body that is not JSON, 401
    # without a valid token, 403 for a refused origin or path, 405 (with Allow) for
    # another method on its path; with path parameters, 404 for none of that name
    every = {400, 401, 403, 405} | ({404} if route.params else set())
    for status in sorted({*route.errors, *every}):
        responses[str(status)] = {"description": _DESCRIPTIONS[status], "content": error}
    if "405" in responses:
        allow = {"description": "the methods of this path", "schema": {"type": "string"}}
        responses["405"]["headers"] = {"Allow": allow}
    operation["responses"] = responses
    return operation


def _reply(route: Route, status: int) -> dict[str, Any]:
    """The media types and schemas of a successful reply."""
    if route.returns == "file":  # sent with the file's own media type (image/png ...)
        return {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    if route.returns == "html":
        return {"text/html": {"schema": {"type": "string"}}}
    schema = STATUS_REPLIES.get((route.name, status), REPLIES.get(route.name, {"type": "object"}))
    return {"application/json": {"schema": schema}, **_RAW_REPLIES.get(route.name, {})}


def build_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route."""
    schemas: dict[str, Any] = {"Error": _ERROR, "PredictionPayload": _PAYLOAD}
    schemas.update(reply_schemas())
    _schema(TrainSpec, schemas)
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault("/" + route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mlaas-jupyter",
            "version": __version__,
            "description": "The REST API of the mlaas core service: under a Jupyter server "
            "(the mlaas extension) or `mlaas serve`. Every route needs the server's token "
            "(`Authorization: token <T>`).",
            "license": {"name": "BSD-3-Clause", "identifier": "BSD-3-Clause"},
        },
        "servers": [{"url": "/" + API_PREFIX.rstrip("/")}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "token <the server's token>",
                }
            },
        },
    }


def render() -> str:
    """The document as the committed file holds it."""
    return json.dumps(build_document(), indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``--write`` the committed document, or ``--check`` that it is up to date."""
    parser = argparse.ArgumentParser(prog="python -m mlaas_jupyter.web.openapi")
    parser.add_argument("--write", action="store_true", help="write openapi.json")
    parser.add_argument("--check", action="store_true", help="exit 1 when it is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOCUMENT_PATH.write_text(text)
        print(f"wrote {DOCUMENT_PATH}")
        return 0
    if args.check:
        stale = not DOCUMENT_PATH.is_file() or DOCUMENT_PATH.read_text() != text
        if stale:
            print(f"{DOCUMENT_PATH} is stale: run python -m mlaas_jupyter.web.openapi --write")
        return int(stale)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
