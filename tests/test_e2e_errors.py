"""Every surface answers its errors in PostgREST's shape: real HTTP, a real Postgres.

``{"code", "message", "details", "hint"}`` at the top level, with PostgREST's code and
status where it has one (gateway/codes.py); what Postgres said in DETAIL and HINT is in
``details`` and ``hint``, not glued onto the message.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import jwt
import pytest

from .conftest import RunningGateway, run_sql, start_gateway
from .problems import error_body, error_of
from .test_e2e_protocol import raw

SECRET = "test-secret-that-is-long-enough-for-hs256"

REFUSING_TRIGGER = """
CREATE TABLE notes (id int PRIMARY KEY, body text);
CREATE FUNCTION notes_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body = 'shout' THEN
        RAISE EXCEPTION 'notes are not shouted' USING ERRCODE = '23514',
            DETAIL = 'body was shout', HINT = 'write it in lower case';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER notes_refuse BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION notes_refuse();
"""


@pytest.fixture
async def gw(database: str) -> AsyncIterator[RunningGateway]:
    await run_sql(database, REFUSING_TRIGGER)
    async with start_gateway(database, expose=("todos", "notes"), max_body=1000) as running:
        yield running


async def test_a_constraint_violation_is_postgres_code_with_its_detail_in_details(gw: RunningGateway) -> None:
    await gw.sql("INSERT INTO todos (id, title) VALUES (1, 'first')")
    async with gw.http.post(gw.url + "/api/todos", json={"id": 1, "title": "again"}) as resp:
        assert resp.status == 409
        assert await error_body(resp) == {
            "code": "23505",
            "message": 'duplicate key value violates unique constraint "todos_pkey"',
            "details": "Key (id)=(1) already exists.",
            "hint": None,
        }
    async with gw.http.post(gw.url + "/api/todos", json={"title": ""}) as resp:
        assert resp.status == 400  # PostgREST's status for 23514, not 422
        error = await error_body(resp)
    assert error["code"] == "23514" and error["message"].startswith('new row for relation "todos" violates check')
    assert error["details"] and error["details"].startswith("Failing row contains")
    assert error["details"] not in error["message"]


async def test_a_raised_errors_detail_and_hint_reach_the_client_apart(gw: RunningGateway) -> None:
    async with gw.http.post(gw.url + "/api/notes", json={"id": 1, "body": "shout"}) as resp:
        assert resp.status == 400
        assert await error_body(resp) == {
            "code": "23514",
            "message": "notes are not shouted",
            "details": "body was shout",
            "hint": "write it in lower case",
        }
    assert await gw.sql("SELECT count(*) FROM notes") == [(0,)]


async def test_request_errors_are_postgrests_codes(gw: RunningGateway) -> None:
    async with gw.http.get(gw.url + "/api/nope") as resp:
        assert (resp.status, (await error_body(resp))["code"]) == (404, "PGRST205")
    async with gw.http.post(
        gw.url + "/api/todos", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as resp:
        assert (resp.status, (await error_body(resp))["code"]) == (400, "PGRST102")
    async with gw.http.post(gw.url + "/api/todos", json={"title": "x", "colour": "red"}) as resp:
        assert (resp.status, (await error_body(resp))["code"]) == (400, "PGRST204")


async def test_events_refuses_a_bad_topic_and_a_bad_cursor_in_the_same_shape(gw: RunningGateway) -> None:
    async with gw.http.get(gw.url + "/events?topic=has%20space") as resp:
        assert resp.status == 400
        assert await error_body(resp) == {
            "code": "bad_topic",
            "message": "topic 'has space' must be 1 to 200 characters without spaces or control characters",
            "details": None,
            "hint": None,
        }
    async with gw.http.get(gw.url + "/events?topic=todos", headers={"Last-Event-ID": "x1"}) as resp:
        assert resp.status == 400
        error = await error_body(resp)
    assert (error["code"], error["details"]) == ("bad_cursor", None) and error["hint"]
    assert "'x1'" in error["message"]
    async with gw.http.get(gw.url + "/events") as resp:
        assert resp.status == 400
        error = await error_body(resp)
    assert (error["code"], error["hint"]) == ("missing_topic", "/events?topic=todos[&topic=todos/42]")


async def test_a_path_that_names_nothing_is_postgrests_404(gw: RunningGateway) -> None:
    async with gw.http.get(gw.url + "/nowhere") as resp:
        assert resp.status == 404
        assert await error_body(resp) == {
            "code": "PGRST125",
            "message": "no such endpoint: GET /nowhere",
            "details": None,
            "hint": None,
        }


async def test_a_wrong_method_is_postgrests_405_with_allow(gw: RunningGateway) -> None:
    for path in ("/metrics", "/api/todos/1"):
        async with gw.http.put(gw.url + path, data=b"") as resp:
            assert resp.status == 405, path
            assert "GET" in resp.headers["Allow"]
            error = await error_body(resp)
        assert error["code"] == "PGRST117" and f"PUT is not allowed on {path}" in error["message"]


async def test_a_body_too_large_and_one_not_json_are_413_and_415(gw: RunningGateway) -> None:
    async with gw.http.post(gw.url + "/api/todos", json={"title": "x" * 2000}) as resp:
        assert resp.status == 413
        assert (await error_body(resp))["code"] == "body_too_large"
    async with gw.http.post(gw.url + "/api/todos", data=b"title=x", headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 415  # PostgREST says 400 with this code; HTTP has 415 for it
        error = await error_body(resp)
    assert error["code"] == "PGRST102" and "'text/plain'" in error["message"]
    assert await gw.sql("SELECT count(*) FROM todos") == [(0,)]


async def test_a_malformed_request_is_a_400_in_the_same_shape_from_the_protocol_layer(gw: RunningGateway) -> None:
    status, headers, body = await raw(gw, b"GET /api/todos HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert status == 400 and headers["content-type"].startswith("application/json")
    error = error_of(json.loads(body))
    assert (error["code"], error["details"], error["hint"]) == ("bad_request", None, None)


async def test_a_401_names_postgrests_jwt_code_and_keeps_its_challenge(database: str) -> None:
    expired = jwt.encode({"exp": time.time() - 5, "topics": ["*"]}, SECRET, algorithm="HS256")
    wrong_key = jwt.encode({"exp": time.time() + 60}, "another-secret-also-long-enough!!", algorithm="HS256")
    cases = [({}, "PGRST302"), ({"Authorization": f"Bearer {wrong_key}"}, "PGRST301")]
    cases.append(({"Authorization": f"Bearer {expired}"}, "PGRST303"))
    async with start_gateway(database, jwt_secret=SECRET) as secured:
        for path in ("/api/todos", "/events?topic=todos"):
            for headers, code in cases:
                async with secured.http.get(secured.url + path, headers=headers) as resp:
                    assert resp.status == 401, (path, code)
                    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="pg-sse-gateway"'
                    error = await error_body(resp)
                assert error["code"] == code
                assert (error["hint"] is not None) == (code == "PGRST302"), error  # where to put the token


async def test_a_guards_refusal_is_in_the_same_shape(database: str) -> None:
    async with start_gateway(database, cors_origins=("https://app.example.com",)) as gw:
        preflight = {"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"}
        async with gw.http.options(gw.url + "/api/todos", headers=preflight) as resp:
            assert resp.status == 403
            error = await error_body(resp)
    assert (error["code"], error["details"], error["hint"]) == ("forbidden", None, None)
