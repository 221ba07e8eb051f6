"""Every route of the extension needs a user the authorizer lets use the ``mlaas``
resource; cookie clients also need the XSRF token."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from jupyter_server.auth import Authorizer
from jupyter_server.base.handlers import APIHandler
from traitlets.config import Config
from web_helpers import toy_spec

from mlaas_jupyter.web.handlers import AUTH_RESOURCE, NotFoundHandler, RouteHandler
from mlaas_jupyter.web.routes import API_PREFIX, ROUTES, Route

SAMPLES = {"job_id": "abc123", "sweep_id": "abc123", "path": "plots/loss.png", "name": "toy"}
#: methods no route has; every path must refuse them to anonymous callers all the same
OTHER_METHODS = ("PUT", "PATCH")
UNAUTHORIZED = {
    "error": "Unauthorized",
    "detail": "not authenticated: send the server's token ('Authorization: token <T>' or "
    "?token=<T>), or log in to the Jupyter server",
}


def mounted(web_app: Any) -> Iterator[tuple[str, type[Any], dict[str, Any]]]:
    """(regex, handler class, handler kwargs) of every rule under ``mlaas/api/`` in the
    server's router, in the order tornado tries them."""
    for rule in web_app.default_router.rules:
        for inner in getattr(rule.target, "rules", []):
            regex = getattr(inner.matcher, "regex", None)
            if regex is not None and f"/{API_PREFIX}" in regex.pattern:
                yield regex.pattern, inner.target, dict(inner.target_kwargs or {})


def concrete(route_path: str) -> str:
    """A route's path with sample values for its parameters."""
    return re.sub(r"{(\w+)}", lambda m: SAMPLES[m[1]], route_path)


def test_the_mounted_routes_are_the_operation_table(jp_serverapp: Any) -> None:
    rules = list(mounted(jp_serverapp.web_app))
    base = jp_serverapp.web_app.settings["base_url"]
    *route_rules, (catch_all, last, _) = rules
    assert last is NotFoundHandler  # the catch-all comes last
    assert catch_all == f"{base}{API_PREFIX}(?P<rest>.*)$"
    served = {
        (pattern.removeprefix(base + API_PREFIX).removesuffix("$"), method, route.name)
        for pattern, handler, kwargs in route_rules
        for method, route in kwargs["routes"].items()
        if handler is RouteHandler
    }
    assert served == {(r.pattern, r.method, r.name) for r in ROUTES}
    assert len(route_rules) == len({r.path for r in ROUTES})  # one handler per path
    for pattern, handler, _ in rules:
        assert issubclass(handler, APIHandler), pattern
        assert handler.auth_resource == AUTH_RESOURCE == "mlaas"
        for method in ("get", "post", "delete", *(m.lower() for m in OTHER_METHODS)):
            assert not getattr(getattr(handler, method), "__allow_unauthenticated", False)


@pytest.mark.parametrize("route", [*ROUTES, None], ids=[*(r.name for r in ROUTES), "catch-all"])
async def test_every_route_refuses_anonymous_and_wrong_tokens(
    route: Route | None, http_server_client: Any, jp_base_url: str, jp_serverapp: Any
) -> None:
    path = concrete(route.path) if route is not None else "nothing/here"
    url = f"{jp_base_url}{API_PREFIX}{path}"
    mine = route.method if route is not None else "GET"
    allowed = [r.method for r in ROUTES if route is not None and r.path == route.path]
    others = [m for m in ("GET", "POST", "DELETE", *OTHER_METHODS) if m not in {*allowed, mine}]

    async def fetch(method: str, target: str, headers: dict[str, str]) -> Any:
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        return await http_server_client.fetch(
            target,
            method=method,
            body=body,
            headers=headers,
            raise_error=False,
            allow_nonstandard_methods=True,
        )

    calls = [(mine, url, {}), (mine, url, {"Authorization": "token wrong"})]
    calls += [(mine, f"{url}?token=wrong", {}), (mine, url, {"Authorization": "wrong"})]
    calls += [(method, url, {}) for method in others]  # 401 before 405: nothing is told
    for method, target, headers in calls:
        response = await fetch(method, target, headers)
        # 401 (who are you?), also where jupyter_server's XSRF check refuses a request
        # that changes things first: an anonymous caller is told to send the token
        assert response.code == 401, (method, target, headers, response.body)
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["WWW-Authenticate"] == 'token realm="mlaas"'
        assert json.loads(response.body) == UNAUTHORIZED
        assert "Allow" not in response.headers
    # the server's token goes past authentication and authorization (to a 4xx of the route)
    token = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    response = await fetch(mine, url, token)
    assert response.code not in (401, 403), response.body
    if route is None:
        assert json.loads(response.body)["detail"].startswith("no such endpoint")


def _cookies(response: Any) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


async def test_cookie_clients_need_xsrf(
    http_server_client: Any, jp_serverapp: Any, jp_base_url: str
) -> None:
    # log in once with ?token= as a browser does, then use only the login cookie
    token = jp_serverapp.identity_provider.token
    url = f"{jp_base_url}{API_PREFIX}jobs"
    response = await http_server_client.fetch(f"{url}?token={token}")
    cookies = _cookies(response)
    assert any(name.startswith("username-") for name in cookies), cookies
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    response = await http_server_client.fetch(url, headers={"Cookie": cookie})
    assert response.code == 200  # reading with the login cookie is fine
    body = '{"spec": {"dataset": {}}}'
    for method, target in (
        ("POST", url),
        ("DELETE", url + "/abc123"),
        ("POST", url + "/abc123/cancel"),
        ("POST", f"{jp_base_url}{API_PREFIX}models/toy/predict"),
    ):
        response = await http_server_client.fetch(
            target,
            method=method,
            body=body if method == "POST" else None,
            headers={"Cookie": cookie},
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        assert response.code == 403, (method, target, response.body)
        reply = json.loads(response.body)
        assert reply["error"] == "Forbidden"
        assert "'_xsrf' argument missing" in reply["detail"]
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
    assert "XSRF" in json.loads(response.body)["detail"]


class DenyMlaas(Authorizer):
    """Lets users do anything but use the ``mlaas`` resource; notes what it was asked."""

    asked: list[tuple[str, str, str]] = []  # noqa: RUF012 - one list for the test

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        self.asked.append((handler.request.method, action, resource))
        return resource != "mlaas"


class TestAuthorizer:
    @pytest.fixture
    def jp_server_config(self, mlaas_config: dict[str, Any], toy_dir: Any) -> Config:
        DenyMlaas.asked.clear()
        return Config(
            {
                "ServerApp": {
                    "jpserver_extensions": {"mlaas_jupyter": True},
                    "authorizer_class": DenyMlaas,
                },
                "Mlaas": mlaas_config,
            }
        )

    async def test_the_authorizer_is_asked_for_every_route(self, api: Any, jp_fetch: Any) -> None:
        for route in ROUTES:
            body = {} if route.method == "POST" else None
            status, reply = await api(
                *concrete(route.path).split("/"), method=route.method, body=body
            )
            action = "read" if route.method == "GET" else "write"
            assert status == 403, (route.name, reply)
            assert reply == {
                "error": "Forbidden",
                "detail": f"User is not authorized to {action} on resource: mlaas.",
            }
            assert DenyMlaas.asked[-1] == (route.method, action, "mlaas"), route.name
        assert len(DenyMlaas.asked) == len(ROUTES)
        response = await jp_fetch("api", "status")  # other resources are allowed
        assert response.code == 200
