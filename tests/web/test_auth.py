"""Every route of the extension needs a user; cookie clients also need the XSRF token."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from jupyter_server.auth import Authorizer
from jupyter_server.base.handlers import APIHandler
from tornado.web import RequestHandler
from traitlets.config import Config
from web_helpers import toy_spec

from mlaas_jupyter.web.handlers import NotFoundHandler

SAMPLES = {"job_id": "abc123", "path": "plots/loss.png", "rest": "anything", "name": "toy"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


def mlaas_routes(web_app: Any) -> Iterator[tuple[str, type[RequestHandler]]]:
    """(regex, handler class) of every rule under ``mlaas/api/`` in the server's router."""
    for rule in web_app.default_router.rules:
        for inner in getattr(rule.target, "rules", []):
            regex = getattr(inner.matcher, "regex", None)
            if regex is not None and "/mlaas/api/" in regex.pattern:
                yield regex.pattern, inner.target


def example_url(pattern: str) -> str:
    """A concrete URL path matched by a route regex (named groups get sample values)."""
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: SAMPLES.get(m.group(1), "x1"), pattern)
    return url.rstrip("$")


def implemented(handler: type[RequestHandler]) -> list[str]:
    """The HTTP methods a handler class implements itself (not tornado's 405 default)."""
    return [
        m
        for m in METHODS
        if getattr(handler, m.lower()) is not getattr(RequestHandler, m.lower()) and m != "HEAD"
    ]


def test_all_routes_are_api_handlers(jp_serverapp: Any) -> None:
    routes = list(mlaas_routes(jp_serverapp.web_app))
    assert len(routes) >= 12
    assert routes[-1][1] is NotFoundHandler  # the catch-all comes last
    for pattern, handler in routes:
        assert issubclass(handler, APIHandler), pattern
        assert implemented(handler), pattern
        for method in implemented(handler):
            function = getattr(handler, method.lower())
            assert not getattr(function, "__allow_unauthenticated", False), (pattern, method)


async def test_every_route_and_method_needs_authentication(
    jp_serverapp: Any, http_server_client: Any
) -> None:
    checked = 0
    for pattern, handler in mlaas_routes(jp_serverapp.web_app):
        url = example_url(pattern)
        for method in implemented(handler):
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            response = await http_server_client.fetch(
                url, method=method, body=body, raise_error=False, allow_nonstandard_methods=True
            )
            assert response.code in (401, 403), (method, url, response.code, response.body)
            assert b"abc123" not in response.body
            checked += 1
    assert checked >= 14


async def test_wrong_token_is_refused(http_server_client: Any) -> None:
    response = await http_server_client.fetch(
        "/a%40b/mlaas/api/jobs", headers={"Authorization": "token nope"}, raise_error=False
    )
    assert response.code == 403
    assert response.headers["Content-Type"] == "application/json"


def _cookies(response: Any) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


async def test_cookie_clients_need_xsrf(http_server_client: Any, jp_serverapp: Any) -> None:
    # log in once with ?token= as a browser does, then use only the login cookie
    token = jp_serverapp.identity_provider.token
    response = await http_server_client.fetch(f"/a%40b/mlaas/api/jobs?token={token}")
    cookies = _cookies(response)
    assert any(name.startswith("username-") for name in cookies), cookies
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    url = "/a%40b/mlaas/api/jobs"
    response = await http_server_client.fetch(url, headers={"Cookie": cookie})
    assert response.code == 200  # reading with the login cookie is fine
    body = '{"spec": {"dataset": {}}}'
    for method, target in (("POST", url), ("DELETE", url + "/abc123")):
        response = await http_server_client.fetch(
            target,
            method=method,
            body=body if method == "POST" else None,
            headers={"Cookie": cookie},
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        assert response.code == 403, (method, response.body)
        assert b"_xsrf" in response.body
    # with the _xsrf cookie and the same token in the X-XSRFToken header it goes through
    xsrf = "2f6d6c616173"
    headers = {"Cookie": f"{cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf}
    response = await http_server_client.fetch(
        url, method="POST", body=body, headers=headers, raise_error=False
    )
    assert response.code == 400, response.body  # past auth and XSRF: the spec is wrong
    good = json.dumps({"spec": toy_spec()})
    response = await http_server_client.fetch(
        url, method="POST", body=good, headers=headers, raise_error=False
    )
    assert response.code == 201, response.body
    # a mismatching header is refused
    bad = {**headers, "X-XSRFToken": "00" + xsrf}
    response = await http_server_client.fetch(
        url, method="POST", body=body, headers=bad, raise_error=False
    )
    assert response.code == 403


class DenyMlaas(Authorizer):
    """Lets users do anything but use the ``mlaas`` resource."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "mlaas"


class TestAuthorizer:
    @pytest.fixture
    def jp_server_config(self, mlaas_config: dict[str, Any], toy_dir: Any) -> Config:
        return Config(
            {
                "ServerApp": {
                    "jpserver_extensions": {"mlaas_jupyter": True},
                    "authorizer_class": DenyMlaas,
                },
                "Mlaas": mlaas_config,
            }
        )

    async def test_the_authorizer_is_asked(self, api: Any, jp_fetch: Any) -> None:
        for parts, method in ((("jobs",), "GET"), (("files",), "GET"), (("jobs",), "POST")):
            status, reply = await api(*parts, method=method, body={} if method == "POST" else None)
            assert status == 403, (parts, reply)
            assert "not authorized" in reply["detail"]
            assert "mlaas" in reply["detail"]
        response = await jp_fetch("api", "status")  # other resources are allowed
        assert response.code == 200
