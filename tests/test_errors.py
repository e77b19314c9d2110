"""Every failure leaves as a JSON error with the right status: real HTTP, real Postgres errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
import psycopg2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.codes import Code
from gateway.errors import ApiError, database_error, error_response, json_errors, status_error


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
        return resp.status, body.get("error", {}), dict(resp.headers)


async def test_api_error_keeps_its_code_status_message_and_headers(app_url: str) -> None:
    status, error, headers = await _answer(app_url + "/api")
    assert (status, error) == (403, {"code": "forbidden", "message": "no"}) and headers["Retry-After"] == "1"


async def test_a_bug_is_a_500_without_its_text_and_is_logged(app_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.errors")
    status, error, _ = await _answer(app_url + "/bug")
    assert (status, error["code"]) == (500, "internal") and "secret" not in error["message"]
    assert "GET /bug" in caplog.text and "ZeroDivisionError" in caplog.text


async def test_a_timeout_is_a_503_and_a_redirect_stays_a_redirect(app_url: str) -> None:
    assert (await _answer(app_url + "/slow"))[:2] == (
        503,
        {"code": "database_unavailable", "message": "the database did not answer in time; try again"},
    )
    status, _, headers = await _answer(app_url + "/redirect")
    assert status == 302 and headers["Location"] == "/elsewhere"


async def test_aiohttp_errors_are_json_with_a_message_that_says_what_to_do(app_url: str) -> None:
    status, error, _ = await _answer(app_url + "/nowhere")
    assert (status, error) == (404, {"code": "not_found", "message": "no such endpoint: GET /nowhere"})
    status, error, headers = await _answer(app_url + "/post", "GET")
    assert status == 405 and error["code"] == "method_not_allowed" and "allowed: POST" in error["message"]
    assert headers["Allow"] == "POST"
    status, error, headers = await _answer(app_url + "/gone")
    assert (status, error["code"]) == (503, "error") and headers["Retry-After"] == "3" and "X-Other" not in headers


def test_status_error_names_the_code_of_a_known_status_and_error_for_others() -> None:
    assert (status_error(413, "big").status, status_error(413, "big").text) == (
        413,
        '{"error": {"code": "body_too_large", "message": "big"}}',
    )
    assert status_error(431, "x").status == 431 and '"code": "error"' in str(status_error(431, "x").text)
    assert error_response(Code.NOT_FOUND, "m").status == 404


@pytest.mark.parametrize(
    ("statement", "status", "code"),
    [
        ("SELECT 'x'::int", 400, "bad_value"),  # class 22
        ("SELECT 1/0", 400, "bad_value"),
        ("SELECT repeat('x', 3000)::tsvector", 400, "bad_value"),  # class 54
        ("SELECT 'a & (b'::tsquery", 400, "bad_value"),  # 42601 from a value's own syntax
        ("SELECT 1 = 'x'::text", 400, "bad_value"),  # 42883
        ("CREATE TEMP TABLE t (a int UNIQUE); INSERT INTO t VALUES (1), (1)", 409, "unique_violation"),
        ("CREATE TEMP TABLE t (a int NOT NULL); INSERT INTO t VALUES (NULL)", 422, "not_null_violation"),
        ("CREATE TEMP TABLE t (a int CHECK (a > 0)); INSERT INTO t VALUES (0)", 422, "check_violation"),
    ],
)
def test_database_errors_map_to_the_clients_status_with_postgres_message(
    server_dsn: str, statement: str, status: int, code: str
) -> None:
    with psycopg2.connect(server_dsn) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute(statement)
        conn.rollback()
    mapped = database_error(caught.value)
    assert mapped is not None
    assert (mapped.status, mapped.code.code) == (status, code)
    assert mapped.message and "Traceback" not in mapped.message


def test_a_database_error_that_is_a_bug_is_left_to_the_500() -> None:
    assert database_error(psycopg2.ProgrammingError("no SQLSTATE, a driver misuse")) is None


def test_an_unreachable_database_is_a_503_that_says_to_retry() -> None:
    with pytest.raises(psycopg2.OperationalError) as caught:
        psycopg2.connect("host=127.0.0.1 port=1 connect_timeout=2")
    mapped = database_error(caught.value)
    assert mapped is not None and (mapped.status, mapped.message) == (
        503,
        "the database is unreachable; try again shortly",
    )
