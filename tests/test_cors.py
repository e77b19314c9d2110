"""CORS over real HTTP, without Postgres: an app wired as gateway/app.py wires the policy.

The handlers are stand-ins that answer 200; what is under test is which headers a
browser gets: the origin echoed with credentials, ``*`` without them, nothing for an
origin not configured or a path outside /events and /api, and ``Vary: Origin``
wherever the answer depends on the origin, so a cache never hands one origin's
answer to another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.cors import CORS, CorsPolicy, add_cors_headers, preflight
from gateway.errors import json_errors

from .problems import error_body

APP = "https://app.example.com"
Serve = Callable[[tuple[str, ...]], Awaitable[str]]  # origins -> the base URL of an app


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)  # headers leave before the handler returns
    await response.write(b"retry: 1000\n\n")
    return response


@pytest.fixture
async def served() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def serve(origins: tuple[str, ...]) -> str:
        app = web.Application(middlewares=[json_errors(guards=(preflight,))])
        app[CORS] = CorsPolicy(origins)
        app.on_response_prepare.append(add_cors_headers)
        for path in ("/events", "/api/todos", "/healthz"):
            app.router.add_get(path, _stream if path == "/events" else _ok)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url(""))

    yield serve
    for server in servers:
        await server.close()


async def _get(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.request(method, url, headers=headers) as resp:
        await resp.read()
        return resp.status, dict(resp.headers)


async def test_configured_origin_is_echoed_with_credentials_and_vary(served: Serve) -> None:
    base = await served((APP + "/",))  # a trailing slash in the setting is not part of an origin
    for path in ("/api/todos", "/events"):
        status, headers = await _get(base + path, Origin=APP)
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == APP
        assert headers["Access-Control-Allow-Credentials"] == "true"
        assert headers["Vary"] == "Origin"
        assert headers["Access-Control-Expose-Headers"] == "Location, Content-Range, Range-Unit, Preference-Applied"


async def test_star_allows_any_origin_without_credentials(served: Serve) -> None:
    base = await served(("*",))
    status, headers = await _get(base + "/api/todos", Origin="https://anyone.test")
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in headers
    assert headers["Vary"] == "Origin"


async def test_star_with_a_listed_origin_echoes_that_one_with_credentials(served: Serve) -> None:
    base = await served(("*", APP))
    _, headers = await _get(base + "/events", Origin=APP)
    assert headers["Access-Control-Allow-Origin"] == APP and headers["Access-Control-Allow-Credentials"] == "true"
    _, headers = await _get(base + "/events", Origin="https://other.test")
    assert headers["Access-Control-Allow-Origin"] == "*" and "Access-Control-Allow-Credentials" not in headers


@pytest.mark.parametrize(
    ("origins", "path", "origin"),
    [
        ((APP,), "/api/todos", "https://evil.test"),  # not configured
        ((APP,), "/api/todos", APP + ".evil.test"),  # a prefix is not the origin
        ((), "/api/todos", APP),  # CORS off
        ((APP,), "/healthz", APP),  # only /events and /api
        (("*",), "/healthz", APP),
        ((APP,), "/api/todos", ""),  # a same-origin request sends no Origin
    ],
)
async def test_no_cors_headers_for_an_origin_or_path_not_allowed(
    served: Serve, origins: tuple[str, ...], path: str, origin: str
) -> None:
    base = await served(origins)
    status, headers = await _get(base + path, **({"Origin": origin} if origin else {}))
    assert status == 200
    assert not {name for name in headers if name.lower().startswith("access-control-")}


async def test_preflight_from_a_configured_origin_lists_methods_and_headers(served: Serve) -> None:
    base = await served((APP,))
    status, headers = await _get(
        base + "/api/todos", "OPTIONS", Origin=APP, **{"Access-Control-Request-Method": "PATCH"}
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == APP and headers["Vary"] == "Origin"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Allow-Methods"] == "GET, POST, PATCH, DELETE, OPTIONS"
    allowed = {h.strip() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"Authorization", "Content-Type", "Last-Event-ID", "Cache-Control"} <= allowed
    assert {"Prefer", "Range", "Accept"} <= allowed  # what PostgREST's clients send
    assert headers["Access-Control-Max-Age"] == "600"


async def test_preflight_from_another_origin_is_a_json_403_naming_the_setting(served: Serve) -> None:
    base = await served((APP,))
    async with (
        aiohttp.ClientSession() as http,
        http.options(
            base + "/api/todos", headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"}
        ) as resp,
    ):
        assert resp.status == 403
        error = await error_body(resp)
    assert error["code"] == "forbidden"
    assert "'https://evil.test'" in error["message"] and "GATEWAY_CORS_ORIGINS" in error["message"]


async def test_options_without_a_requested_method_is_not_a_preflight(served: Serve) -> None:
    base = await served((APP,))
    status, _ = await _get(base + "/api/todos", "OPTIONS", Origin="https://evil.test")
    assert status == 405  # routed as any other request: no GET-only route answers OPTIONS


@pytest.mark.parametrize("origin", ["", "https://evil.test"])
async def test_an_answer_without_cors_headers_still_says_it_varies_by_origin(served: Serve, origin: str) -> None:
    """A shared cache must not serve the copy made for no Origin (or a refused one) to an allowed origin."""
    base = await served((APP,))
    for path in ("/api/todos", "/events"):
        _, headers = await _get(base + path, **({"Origin": origin} if origin else {}))
        assert "Access-Control-Allow-Origin" not in headers
        assert headers["Vary"] == "Origin"
    _, headers = await _get(base + "/healthz")  # not a CORS path: no Vary
    assert "Vary" not in headers
    off = await served(())  # CORS off: nothing varies
    _, headers = await _get(off + "/api/todos")
    assert "Vary" not in headers
