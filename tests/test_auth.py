"""Topic grants and token claims, without a server: auth's pure parts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.auth import (
    AUTHENTICATOR,
    EVERYTHING,
    LATEST_EXPIRY,
    Authenticator,
    Grant,
    _grant_from,
    authenticate,
    grant_of,
)
from gateway.config import ConfigError
from gateway.errors import ApiError, json_errors

from .problems import error_of


@pytest.mark.parametrize(
    ("pattern", "topic", "granted"),
    [
        ("chat/*", "chat/room1", True),
        ("chat/*", "chat/a/b", True),  # * crosses "/"
        ("*", "anything/at/all", True),
        ("chat/room?", "chat/room?", True),  # ? is a character, not a wildcard
        ("chat/room?", "chat/roomZ", False),
        ("chat/[ab]", "chat/[ab]", True),  # [...] is text, not a set
        ("chat/[ab]", "chat/a", False),
        ("chat/[!a]", "chat/b", False),
        ("a.c", "abc", False),  # no regex leaks through either
        ("todos", "todos/42", True),  # a table grants its rows
        ("tod?s", "todos/42", False),
        ("todo*", "todos/42", True),
        ("chat/*/x", "chat/1/x", True),
        ("chat/*/x", "chat/1/y", False),
        ("a*a", "a", False),  # prefix and suffix may not overlap
        ("a*a", "aa", True),
        ("ab*ba", "aba", False),
        ("*b*b*", "abab", True),
        ("*b*b*", "ab", False),
        ("**", "", True),
        ("", "", True),
        ("x", "xx", False),
    ],
)
def test_only_star_is_a_wildcard_in_topic_grants(pattern: str, topic: str, granted: bool) -> None:
    assert Grant(topics=(pattern,), write=False).may_read(topic) is granted


def test_a_pattern_with_many_stars_is_matched_in_linear_time() -> None:
    """As a regex of ``.*``s this took hours (each star multiplies the backtracking) with
    the event loop stopped; run in a child process so a regression fails instead of hanging."""
    check = (
        "from gateway.auth import Grant\n"
        "grant = Grant(topics=('*a' * 12 + '*b',), write=False)\n"
        "assert not grant.may_read('a' * 199) and grant.may_read('a' * 198 + 'b')\n"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=20)


@pytest.mark.parametrize("exp", ["1767225600", True, False, None, [1], {"n": 1}])
def test_exp_that_is_not_a_json_number_is_refused(exp: object) -> None:
    with pytest.raises(ApiError) as caught:
        _grant_from({"exp": exp, "topics": ["*"]})
    assert caught.value.status == 401 and "'exp'" in caught.value.message


def test_huge_exp_is_capped_to_a_usable_time() -> None:
    assert _grant_from({"exp": 10**400}).expires_at == LATEST_EXPIRY
    assert _grant_from({"exp": 1767225600.5}).expires_at == 1767225600.5


@pytest.mark.parametrize(
    ("pattern", "topic", "granted"),
    [
        ("*b*b", "ab", False),  # the middle b may not be the last piece's b
        ("*b*b", "abb", True),
        ("a*bc*c", "abcc", True),
        ("a*bc*c", "abc", False),
        ("todos", "todos/a/b", True),  # a text key may hold "/": still a row of todos
    ],
)
def test_pieces_of_a_grant_do_not_overlap_and_a_table_grants_every_row(pattern: str, topic: str, granted: bool) -> None:
    assert Grant(topics=(pattern,), write=False).may_read(topic) is granted


def test_write_grant_is_all_none_or_the_tables_listed() -> None:
    assert Grant((), write=True).may_write("todos") and not Grant((), write=False).may_write("todos")
    listed = Grant((), write=frozenset({"todos"}))
    assert listed.may_write("todos") and not listed.may_write("notes")


def test_a_publish_grant_matches_the_topic_itself_and_nothing_grants_it_but_the_claim() -> None:
    grant = Grant(("*",), write=True, publish=("chat/*", "alerts"))
    assert grant.may_publish("chat/room-1") and grant.may_publish("alerts")
    assert not grant.may_publish("alerts/1")  # unlike a read grant, no row topics below it
    assert not grant.may_publish("chatter")
    assert not Grant(("*",), write=True).may_publish("chat/1")
    assert EVERYTHING.may_publish("anything") and EVERYTHING.inspect
    assert _grant_from({"exp": time.time() + 60, "publish": ["a*"], "inspect": True}) == Grant(
        (), write=False, publish=("a*",), inspect=True, expires_at=pytest.approx(time.time() + 60, abs=5)
    )


def test_require_read_and_write_refuse_with_a_403_naming_what_was_asked() -> None:
    grant = Grant(("chat/*",), write=frozenset({"todos"}))
    grant.require_read("chat/1")
    grant.require_write("todos")
    with pytest.raises(ApiError) as read:
        grant.require_read("todos")
    with pytest.raises(ApiError) as write:
        grant.require_write("notes")
    assert read.value.status == write.value.status == 403
    assert "topic 'todos'" in read.value.message and "writes to 'notes'" in write.value.message


def test_claims_become_a_grant() -> None:
    grant = _grant_from({"exp": 2000000000, "sub": "user-1", "topics": ["todos", "chat/*"], "write": ["todos"]})
    assert grant == Grant(("todos", "chat/*"), frozenset({"todos"}), "user-1", 2000000000.0)
    assert _grant_from({"exp": 2000000000}) == Grant((), False, None, 2000000000.0)  # reads and writes nothing
    assert _grant_from({"exp": 2000000000, "write": True}).write is True


@pytest.mark.parametrize(
    ("claims", "named"),
    [
        ({"topics": "todos"}, "'topics'"),
        ({"topics": ["todos", 1]}, "'topics'"),
        ({"write": "yes"}, "'write'"),
        ({"write": ["todos", 1]}, "'write'"),
        ({"write": 1}, "'write'"),
    ],
)
def test_a_claim_of_the_wrong_shape_is_a_401_naming_it(claims: dict[str, object], named: str) -> None:
    with pytest.raises(ApiError) as caught:
        _grant_from({"exp": 2000000000, **claims})
    assert caught.value.status == 401 and named in caught.value.message
    assert caught.value.headers == {"WWW-Authenticate": 'Bearer realm="pg-sse-gateway"'}


def test_a_key_that_cannot_verify_tokens_stops_the_gateway_at_start() -> None:
    with pytest.raises(ConfigError, match="not several"):
        Authenticator(secret="s" * 32, public_key="pem")
    with pytest.raises(ConfigError, match="not several"):
        Authenticator(secret="s" * 32, jwks_url="https://issuer.example/.well-known/jwks.json")
    with pytest.raises(ConfigError, match="GATEWAY_JWT_PUBLIC_KEY: not a public key or certificate in PEM"):
        Authenticator(public_key="not a pem")
    assert not Authenticator().enabled and Authenticator(secret="s" * 32).enabled


# The Authenticator over real HTTP: where the token comes from, and what a bad one gets.

SECRET = "a-secret-long-enough-for-hs256-tokens"


async def _whoami(request: web.Request) -> web.Response:
    grant = grant_of(request)
    return web.json_response({"sub": grant.subject, "everything": grant is EVERYTHING})


@pytest.fixture
async def secured() -> AsyncIterator[str]:
    app = web.Application(middlewares=[json_errors(guards=(authenticate,))])
    app[AUTHENTICATOR] = Authenticator(secret=SECRET)
    app.router.add_get("/api/todos", _whoami)
    app.router.add_route("OPTIONS", "/api/todos", _whoami)
    app.router.add_get("/healthz", _whoami)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url(""))
    await server.close()


def _token(**claims: object) -> str:
    # An hour: parametrize builds these when pytest collects, maybe minutes before the test runs.
    return jwt.encode({"exp": time.time() + 3600, "sub": "user-1", **claims}, SECRET, algorithm="HS256")


async def _ask(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, object], dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.request(method, url, headers=headers) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/todos", {"Authorization": "Bearer " + _token()}),
        ("/api/todos", {"Authorization": "bearer  " + _token() + " "}),  # the scheme is case-blind
        ("/api/todos?access_token=" + _token(), {}),
        ("/api/todos", {"Cookie": "access_token=" + _token()}),
        ("/api/todos?access_token=" + _token(), {"Authorization": "Basic dXNlcjpwdw=="}),  # not a bearer
    ],
)
async def test_a_token_is_taken_from_the_header_the_query_or_the_cookie(
    secured: str, path: str, headers: dict[str, str]
) -> None:
    status, body, _ = await _ask(secured + path, **headers)
    assert (status, body) == (200, {"sub": "user-1", "everything": False})


@pytest.mark.parametrize(
    ("headers", "code", "says"),
    [
        ({}, "PGRST302", "a token is required"),
        ({"Authorization": "Bearer "}, "PGRST302", "a token is required"),
        ({"Authorization": "Bearer not.a.jwt"}, "PGRST301", "the token is not valid"),
        ({"Authorization": "Bearer " + _token(exp=time.time() - 10)}, "PGRST303", "the token has expired"),
    ],
)
async def test_no_token_or_a_bad_one_is_a_401_that_says_which(
    secured: str, headers: dict[str, str], code: str, says: str
) -> None:
    status, body, response_headers = await _ask(secured + "/api/todos", **headers)
    assert status == 401 and error_of(body)["code"] == code and says in body["message"]  # type: ignore[index]
    assert response_headers["WWW-Authenticate"] == 'Bearer realm="pg-sse-gateway"'


async def test_paths_outside_events_and_api_and_preflights_need_no_token(secured: str) -> None:
    assert (await _ask(secured + "/healthz"))[:2] == (200, {"sub": None, "everything": True})
    assert (await _ask(secured + "/api/todos", "OPTIONS"))[0] == 200
