"""The JSON CRUD API over real HTTP and a real Postgres, happy paths and bad input."""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import RunningGateway, run_sql, start_gateway
from .problems import error_body


async def _table(gw: RunningGateway) -> list[tuple[object, ...]]:
    return await gw.sql("SELECT * FROM todos ORDER BY id")


async def test_create_returns_201_location_and_row(gateway: RunningGateway) -> None:
    async with gateway.http.post(gateway.url + "/api/todos", json={"title": "milk"}) as resp:
        assert resp.status == 201
        row = await resp.json()
        assert resp.headers["Location"] == f"/api/todos/{row['id']}"
    assert row["title"] == "milk" and row["done"] is False and row["created_at"]
    async with gateway.http.get(gateway.url + resp.headers["Location"]) as resp:
        assert resp.status == 200 and await resp.json() == row


async def test_patch_changes_only_given_fields(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (id, title) VALUES (5, 'bread')")
    async with gateway.http.patch(gateway.url + "/api/todos/5", json={"done": True}) as resp:
        assert resp.status == 200
        row = await resp.json()
    assert row["done"] is True and row["title"] == "bread"
    assert await gateway.sql("SELECT title, done FROM todos WHERE id = 5") == [("bread", True)]


async def test_delete_returns_row_and_removes_it(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (id, title) VALUES (5, 'bread')")
    async with gateway.http.delete(gateway.url + "/api/todos/5") as resp:
        assert resp.status == 200 and (await resp.json())["title"] == "bread"
    assert await gateway.sql("SELECT count(*) FROM todos") == [(0,)]
    async with gateway.http.get(gateway.url + "/api/todos/5") as resp:
        assert resp.status == 404


async def test_list_filters_limit_offset_order(gateway: RunningGateway) -> None:
    await gateway.sql(
        "INSERT INTO todos (id, title, done) "
        "SELECT i, 't' || lpad(i::text, 2, '0'), i % 2 = 0 FROM generate_series(1, 10) i"
    )

    async def titles(query: str) -> list[str]:
        async with gateway.http.get(gateway.url + "/api/todos" + query) as resp:
            assert resp.status == 200, await resp.text()
            return [row["title"] for row in await resp.json()]

    assert await titles("") == [f"t{i:02}" for i in range(1, 11)]
    assert await titles("?done=true") == ["t02", "t04", "t06", "t08", "t10"]
    assert await titles("?done=false&title=t03") == ["t03"]
    assert await titles("?order=-id&limit=3") == ["t10", "t09", "t08"]
    assert await titles("?order=title.desc&limit=2&offset=1") == ["t09", "t08"]
    assert await titles("?order=done,-id&limit=3") == ["t09", "t07", "t05"]
    assert await titles("?limit=0") == []
    assert await titles("?title=nope") == []


async def test_other_tables_are_introspected_not_hard_coded(database: str) -> None:
    from .conftest import run_sql

    await run_sql(
        database,
        "CREATE SCHEMA shop; CREATE TABLE shop.items (sku text PRIMARY KEY, price numeric(10,2) NOT NULL, "
        "tags text[] DEFAULT '{}', meta jsonb, qty int CHECK (qty >= 0))",
    )
    async with start_gateway(database, expose=("todos", "shop.items")) as gw:
        client = await gw.subscribe("shop.items/abc-1")
        body = {"sku": "abc-1", "price": 9.5, "tags": ["a", "b"], "meta": {"colour": "red"}, "qty": 3}
        async with gw.http.post(gw.url + "/api/shop.items", json=body) as resp:
            assert resp.status == 201, await resp.text()
            assert resp.headers["Location"] == "/api/shop.items/abc-1"
            row = await resp.json()
        assert row == {**body, "price": 9.50}
        event = await client.next()
        assert event.json["table"] == "shop.items" and event.json["row"]["meta"] == {"colour": "red"}
        async with gw.http.get(gw.url + "/api/shop.items?qty=3") as resp:
            assert [r["sku"] for r in await resp.json()] == ["abc-1"]
        await client.close()


BAD_REQUESTS = [
    # (method, path, body or raw bytes, headers, status, code)
    ("POST", "/api/todos", b"{not json", {"Content-Type": "application/json"}, 400, "PGRST102"),
    ("POST", "/api/todos", b"[1, 2]", {"Content-Type": "application/json"}, 400, "PGRST102"),
    ("POST", "/api/todos", {"title": "x", "colour": "red"}, None, 400, "PGRST204"),
    ("POST", "/api/todos", {"title": "x", "done": "maybe"}, None, 400, "22P02"),
    ("POST", "/api/todos", {"title": {"nested": 1}}, None, 400, "22P02"),
    ("POST", "/api/todos", {"title": ""}, None, 400, "23514"),
    ("POST", "/api/todos", {"done": True}, None, 400, "23502"),
    ("POST", "/api/todos", {"id": 1, "title": "duplicate key"}, None, 409, "23505"),
    (
        "POST",
        "/api/todos",
        b"title=x",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "PGRST102",
    ),
    ("POST", "/api/todos", {"title": "x" * 2_000_000}, None, 413, "body_too_large"),
    ("POST", "/api/nope", {"title": "x"}, None, 404, "PGRST205"),
    ("POST", "/api/todos;DROP TABLE todos", {"title": "x"}, None, 404, "PGRST205"),
    ("GET", "/api/pg_catalog.pg_authid", None, None, 404, "PGRST205"),
    ("GET", "/api/todos?title%22%3B%20DROP%20TABLE%20todos%3B--=1", None, None, 400, "PGRST204"),
    ("GET", "/api/todos?order=id;drop", None, None, 400, "PGRST204"),
    ("GET", "/api/todos?order=id.sideways", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?limit=ten", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?limit=-1", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?limit=100000", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?limit=1_0", None, None, 400, "PGRST100"),  # int() takes these three
    ("GET", "/api/todos?limit=%D9%A1", None, None, 400, "PGRST100"),  # an Arabic-Indic 1
    ("GET", "/api/todos?offset=%205", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?offset=5%0A", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?id=abc", None, None, 400, "22P02"),
    ("GET", "/api/todos/abc", None, None, 400, "22P02"),
    ("GET", "/api/todos/99999999999999999999", None, None, 400, "22003"),
    ("GET", "/api/todos/404", None, None, 404, "not_found"),
    ("PATCH", "/api/todos/404", {"done": True}, None, 404, "not_found"),
    ("PATCH", "/api/todos/1", {}, None, 400, "PGRST102"),
    ("PATCH", "/api/todos/1", {"title": None}, None, 400, "23502"),
    ("PATCH", "/api/todos/1", {"done": 5}, None, 400, "22P02"),
    ("DELETE", "/api/todos/404", None, None, 404, "not_found"),
    ("PUT", "/api/todos/1", {"title": "x"}, None, 405, "PGRST117"),
    ("GET", "/nowhere", None, None, 404, "PGRST125"),
    ("POST", "/api/todos", {"title": "nul \u0000 byte"}, None, 400, "22P02"),
    ("POST", "/api/todos", {"title": "lone \ud800 surrogate"}, None, 400, "22P02"),
    ("GET", "/api/todos?title=%00", None, None, 400, "22P02"),
    ("GET", "/api/todos/%00", None, None, 400, "22P02"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    BAD_REQUESTS,
    ids=[f"{m} {p[:40]} -> {s} {c}" for m, p, _, _, s, c in BAD_REQUESTS],
)
async def test_bad_input_gets_json_error_and_changes_nothing(
    gateway: RunningGateway,
    method: str,
    path: str,
    body: object,
    headers: dict[str, str] | None,
    status: int,
    code: str,
) -> None:
    await gateway.sql("INSERT INTO todos (id, title) VALUES (1, 'keep me'), (2, 'me too')")
    before = await _table(gateway)
    kwargs: dict[str, object] = {"headers": headers}
    if isinstance(body, bytes):
        kwargs["data"] = body
    elif body is not None:
        kwargs["json"] = body
    async with gateway.http.request(method, gateway.url + path, **kwargs) as resp:  # type: ignore[arg-type]
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        error = await error_body(resp)
    assert error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]
    assert await _table(gateway) == before
    async with gateway.http.get(gateway.url + "/api/todos") as resp:  # still serving
        assert resp.status == 200


async def test_health_and_readiness(gateway: RunningGateway) -> None:
    async with gateway.http.get(gateway.url + "/healthz") as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "ok"
    async with gateway.http.get(gateway.url + "/readyz") as resp:
        assert resp.status == 200 and await resp.json() == {"ready": True, "database": True, "listener": True}
    client = await gateway.subscribe("todos")
    async with gateway.http.post(gateway.url + "/api/todos", json={"title": "counted"}) as resp:
        assert resp.status == 201
    await client.next()
    async with gateway.http.get(gateway.url + "/metrics") as resp:
        text = await resp.text()
    metrics = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert metrics["gateway_subscribers"] == "1" and metrics["gateway_listener_connected"] == "1"
    assert metrics["gateway_events_in_total"] == "1" and metrics["gateway_deliveries_total"] == "1"
    assert int(metrics["gateway_bytes_out_total"]) > 100
    assert metrics["gateway_journal_lag_events"] == "0"
    post = 'method="POST",route="/api/{table}",status="201"'
    assert metrics[f"gateway_http_request_duration_seconds_count{{{post}}}"] == "1"
    await client.close()


async def test_access_token_in_the_query_is_not_a_filter(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (title) VALUES ('a')")
    async with gateway.http.get(gateway.url + "/api/todos?access_token=whatever") as resp:
        assert resp.status == 200 and len(await resp.json()) == 1


async def test_location_header_quotes_the_key(database: str) -> None:
    from .conftest import run_sql, start_gateway

    await run_sql(database, "CREATE TABLE tags (name text PRIMARY KEY)")
    async with start_gateway(database, expose=("todos", "tags")) as gw:
        async with gw.http.post(gw.url + "/api/tags", json={"name": "a/b?c d"}) as resp:
            assert resp.status == 201
            location = resp.headers["Location"]
        assert location == "/api/tags/a%2Fb%3Fc%20d"
        async with gw.http.get(gw.url + location) as resp:
            assert resp.status == 200 and (await resp.json())["name"] == "a/b?c d"


async def test_a_body_that_trickles_past_the_bound_is_a_408_and_stores_nothing(database: str) -> None:
    """A body sent a byte at a time would hold a connection and a handler for as long as the client liked."""
    async with start_gateway(database, request_body_timeout=0.5) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = b'{"title": "slow"}'
        writer.write(
            b"POST /api/todos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body[:3])
        )
        started = time.monotonic()
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            answer = await reader.read()  # the JSON body, then the gateway closes the connection
        assert 0.4 <= time.monotonic() - started < 5
        assert head.startswith(b"HTTP/1.1 408"), head
        assert b"connection: close" in head.lower()
        assert b'"request_timeout"' in answer
        writer.close()
        assert await gw.sql("SELECT count(*) FROM todos WHERE title = 'slow'") == [(0,)]
        async with gw.http.post(gw.url + "/api/todos", json={"title": "fast"}) as resp:  # a whole body is fine
            assert resp.status == 201


async def test_a_value_the_server_cannot_handle_is_a_400_not_a_500(database: str) -> None:
    """xml needs a Postgres built with libxml (the embedded one is not): plain SQL says 0A000."""
    await run_sql(database, "CREATE TABLE docs (id int PRIMARY KEY, body xml)")
    async with start_gateway(database, expose=("docs",)) as gw:
        async with gw.http.post(gw.url + "/api/docs", json={"id": 1, "body": "<a>1</a>"}) as resp:
            assert resp.status in (201, 400), await resp.text()
            if resp.status == 400:
                assert (await error_body(resp))["code"] == "0A000"
