"""Every failure leaves as a JSON error with the right status: real HTTP, real Postgres errors."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
import psycopg2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.codes import Code
from gateway.errors import (
    ApiError,
    Deferred,
    api_error_response,
    database_error,
    error_response,
    json_errors,
    status_error,
)

from .problems import error_of


def _raises(exc: Exception) -> Callable[[web.Request], web.StreamResponse]:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise exc

    return handler  # type: ignore[return-value]


@pytest.fixture
async def app_url() -> AsyncIterator[str]:
    app = web.Application(middlewares=[json_errors()])
    app.router.add_get("/api", _raises(ApiError(Code.FORBIDDEN, "no", headers={"Retry-After": "1"})))
    app.router.add_get("/bug", _raises(ZeroDivisionError("secret detail")))
    app.router.add_get("/slow", _raises(TimeoutError()))
    app.router.add_get("/redirect", _raises(web.HTTPFound("/elsewhere")))
    app.router.add_get("/gone", _raises(web.HTTPServiceUnavailable(headers={"Retry-After": "3", "X-Other": "x"})))
    app.router.add_post("/post", _raises(ApiError(Code.BAD_REQUEST, "unused")))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url(""))
    await server.close()


async def _answer(url: str, method: str = "GET") -> tuple[int, dict[str, str], dict[str, str]]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, allow_redirects=False) as resp,
    ):
        assert resp.content_type == "application/json" or resp.status < 400
        body = await resp.json() if resp.status >= 400 else {}
        if body:
            assert set(body) == {"code", "message", "details", "hint"}, body
        return resp.status, body, dict(resp.headers)


async def test_api_error_keeps_its_code_status_message_and_headers(app_url: str) -> None:
    status, error, headers = await _answer(app_url + "/api")
    assert (status, error) == (403, {"code": "forbidden", "message": "no", "details": None, "hint": None})
    assert headers["Retry-After"] == "1"


async def test_a_bug_is_a_500_without_its_text_and_is_logged(app_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.errors")
    status, error, _ = await _answer(app_url + "/bug")
    assert (status, error["code"]) == (500, "internal") and "secret" not in error["message"]
    assert "GET /bug" in caplog.text and "ZeroDivisionError" in caplog.text


async def test_a_timeout_is_postgrests_504_and_a_redirect_stays_a_redirect(app_url: str) -> None:
    assert (await _answer(app_url + "/slow"))[:2] == (
        504,
        {
            "code": "PGRST003",
            "message": "the database did not answer in time; try again",
            "details": None,
            "hint": None,
        },
    )
    status, _, headers = await _answer(app_url + "/redirect")
    assert status == 302 and headers["Location"] == "/elsewhere"


async def test_aiohttp_errors_are_json_with_a_message_that_says_what_to_do(app_url: str) -> None:
    status, error, _ = await _answer(app_url + "/nowhere")
    assert (status, error["code"], error["message"]) == (404, "PGRST125", "no such endpoint: GET /nowhere")
    status, error, headers = await _answer(app_url + "/post", "GET")
    assert status == 405 and error["code"] == "PGRST117" and "allowed: POST" in error["message"]
    assert headers["Allow"] == "POST"
    status, error, headers = await _answer(app_url + "/gone")
    assert (status, error["code"]) == (503, "error") and headers["Retry-After"] == "3" and "X-Other" not in headers


def test_status_error_names_the_code_of_a_known_status_and_error_for_others() -> None:
    assert (status_error(413, "big").status, json.loads(status_error(413, "big").text or "")) == (
        413,
        {"code": "body_too_large", "message": "big", "details": None, "hint": None},
    )
    assert status_error(431, "x").status == 431 and json.loads(status_error(431, "x").text or "")["code"] == "error"
    assert error_response(Code.NOT_FOUND, "m").status == 404


def test_a_401_always_carries_a_challenge_and_keeps_its_own() -> None:
    assert error_response(Code.TOKEN_REQUIRED, "m").headers["WWW-Authenticate"].startswith("Bearer")
    own = error_response(Code.UNAUTHORIZED, "m", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    assert own.headers.getall("WWW-Authenticate") == ['Bearer error="invalid_token"']
    assert "WWW-Authenticate" not in error_response(Code.FORBIDDEN, "m").headers


def test_every_code_is_postgrests_a_sqlstate_or_a_readable_one_of_ours() -> None:
    for code in Code:
        assert code.source in ("PostgREST", "SQLSTATE", "ours"), code
        if code.source == "ours":
            assert code.code == code.name.lower(), f"{code}: our codes are the member's name"


@pytest.mark.parametrize(
    ("statement", "status", "member", "sqlstate"),
    [
        ("SELECT 'x'::int", 400, Code.BAD_VALUE, "22P02"),  # class 22
        ("SELECT 1/0", 400, Code.BAD_VALUE, "22012"),
        ("SELECT repeat('x', 3000)::tsvector", 400, Code.BAD_VALUE, "54000"),  # class 54: ours 400, PostgREST 500
        ("SELECT 'a & (b'::tsquery", 400, Code.BAD_VALUE, "42601"),  # from a value's own syntax
        ("SELECT 1 = 'x'::text", 404, Code.UNDEFINED_FUNCTION, "42883"),  # PostgREST's 404 for 42883
        ("CREATE TEMP TABLE t (a int UNIQUE); INSERT INTO t VALUES (1), (1)", 409, Code.UNIQUE_VIOLATION, "23505"),
        ("CREATE TEMP TABLE t (a int NOT NULL); INSERT INTO t VALUES (NULL)", 400, Code.NOT_NULL_VIOLATION, "23502"),
        ("CREATE TEMP TABLE t (a int CHECK (a > 0)); INSERT INTO t VALUES (0)", 400, Code.CHECK_VIOLATION, "23514"),
        ("SET ROLE no_such_role_at_all", 401, Code.UNKNOWN_ROLE, "22023"),  # a token's role: PostgREST's 401
        ("SET ROLE pg_monitor; SELECT rolpassword FROM pg_authid", 403, Code.INSUFFICIENT_PRIVILEGE, "42501"),
    ],
)
def test_database_errors_map_to_postgrests_status_with_postgres_code_and_message(
    server_dsn: str, statement: str, status: int, member: Code, sqlstate: str
) -> None:
    with psycopg2.connect(server_dsn) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute(statement)
        conn.rollback()
    mapped = database_error(caught.value)
    assert mapped is not None
    assert (mapped.status, mapped.code, mapped.sqlstate) == (status, member, sqlstate)
    assert mapped.message and "Traceback" not in mapped.message and "DETAIL" not in mapped.message


def test_a_database_errors_detail_and_hint_are_details_and_hint_not_the_message(server_dsn: str) -> None:
    with psycopg2.connect(server_dsn) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute("CREATE TEMP TABLE t (a int UNIQUE); INSERT INTO t VALUES (7), (7)")
        conn.rollback()
        with pytest.raises(psycopg2.Error) as hinted:
            cur.execute("SELECT 1 = 'x'::text")
        conn.rollback()
    mapped = database_error(caught.value)
    assert mapped is not None and mapped.details == "Key (a)=(7) already exists." and mapped.hint is None
    assert mapped.message == 'duplicate key value violates unique constraint "t_a_key"'
    body = json.loads(api_error_response(mapped).text or "")
    assert body == {"code": "23505", "message": mapped.message, "details": mapped.details, "hint": None}
    with_hint = database_error(hinted.value)
    assert with_hint is not None and "type casts" in (with_hint.hint or "") and "cast" not in with_hint.message


def test_a_database_error_that_is_a_bug_is_left_to_the_500() -> None:
    assert database_error(psycopg2.ProgrammingError("no SQLSTATE, a driver misuse")) is None


def test_an_unreachable_database_is_a_503_that_says_to_retry() -> None:
    with pytest.raises(psycopg2.OperationalError) as caught:
        psycopg2.connect("host=127.0.0.1 port=1 connect_timeout=2")
    mapped = database_error(caught.value)
    assert mapped is not None and (mapped.status, mapped.code.code, mapped.message) == (
        503,
        "PGRST000",
        "the database is unreachable; try again shortly",
    )


async def test_a_guard_that_defers_waits_once_then_runs_again_and_a_second_deferral_gets_its_fallback() -> None:
    """A guard may raise Deferred (gateway.jwks: a key being fetched); the request waits, the
    guards from that one on run again, and a guard that defers again answers ``otherwise``."""
    calls: list[str] = []
    fetched = asyncio.Event()

    async def fetch() -> None:
        fetched.set()

    def first(request: web.Request) -> None:
        calls.append("first")

    def deferring(request: web.Request) -> None:
        calls.append("deferring")
        if request.path == "/always" or not fetched.is_set():
            raise Deferred(fetch(), ApiError(Code.KEYS_UNAVAILABLE, "still no keys", headers={"Retry-After": "7"}))

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[json_errors(guards=(first, deferring))])
    app.router.add_get("/once", ok)
    app.router.add_get("/always", ok)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/once")) as resp:
                assert (resp.status, await resp.json()) == (200, {"ok": True})
            assert calls == ["first", "deferring", "deferring"]  # the earlier guard is not run twice
            async with http.get(server.make_url("/always")) as resp:
                body = error_of(await resp.json())
                assert (resp.status, body["code"], resp.headers["Retry-After"]) == (503, "keys_unavailable", "7")
    finally:
        await server.close()
