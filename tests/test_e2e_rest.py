"""The JSON CRUD API over real HTTP and a real Postgres, happy paths and bad input."""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import RunningGateway, run_sql, start_gateway
from .problems import error_body


async def _table(gw: RunningGateway) -> list[tuple[object, ...]]:
    return await gw.sql("SELECT * FROM todos ORDER BY id")


REPRESENTATION = {"Prefer": "return=representation"}


async def test_create_answers_201_without_a_body_unless_asked(gateway: RunningGateway) -> None:
    """PostgREST's default is return=minimal: no body, no Location."""
    async with gateway.http.post(gateway.url + "/api/todos", json={"title": "milk"}) as resp:
        assert resp.status == 201 and await resp.read() == b""
        assert "Location" not in resp.headers and resp.headers["Content-Range"] == "*/*"
    assert await gateway.sql("SELECT title FROM todos") == [("milk",)]


async def test_create_with_representation_returns_the_rows(gateway: RunningGateway) -> None:
    headers = {"Prefer": "return=representation, count=exact"}
    async with gateway.http.post(gateway.url + "/api/todos", json={"title": "milk"}, headers=headers) as resp:
        assert resp.status == 201
        assert resp.headers["Preference-Applied"] == "return=representation, count=exact"
        assert resp.headers["Content-Range"] == "*/1"
        assert "Location" not in resp.headers  # PostgREST: only with return=headers-only
        (row,) = await resp.json()
    assert row["title"] == "milk" and row["done"] is False and row["created_at"]
    async with gateway.http.get(gateway.url + f"/api/todos/{row['id']}") as resp:
        assert resp.status == 200 and await resp.json() == row  # the convenience path: the row as an object


async def test_headers_only_gives_the_location_and_no_body(gateway: RunningGateway) -> None:
    headers = {"Prefer": "return=headers-only"}
    async with gateway.http.post(gateway.url + "/api/todos", json={"id": 7, "title": "milk"}, headers=headers) as resp:
        assert resp.status == 201 and await resp.read() == b""
        assert resp.headers["Location"] == "/api/todos/7"


async def test_patch_by_filter_changes_only_given_fields(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (id, title) VALUES (5, 'bread'), (6, 'jam')")
    async with gateway.http.patch(gateway.url + "/api/todos?id=eq.5", json={"done": True}) as resp:
        assert resp.status == 204 and await resp.read() == b""
        assert resp.headers["Content-Range"] == "0-0/*"
    assert await gateway.sql("SELECT id, title, done FROM todos ORDER BY id") == [(5, "bread", True), (6, "jam", False)]
    url = gateway.url + "/api/todos?id=eq.5&select=title,done"
    async with gateway.http.patch(url, json={"done": False}, headers=REPRESENTATION) as resp:
        assert resp.status == 200 and await resp.json() == [{"title": "bread", "done": False}]


async def test_patch_and_delete_by_key_answer_like_the_filtered_form(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (id, title) VALUES (5, 'bread')")
    async with gateway.http.patch(gateway.url + "/api/todos/5", json={"done": True}) as resp:
        assert resp.status == 204
    async with gateway.http.patch(gateway.url + "/api/todos/5", json={"title": "rye"}, headers=REPRESENTATION) as resp:
        assert resp.status == 200
        row = await resp.json()  # the key names one row: an object
    assert (row["title"], row["done"]) == ("rye", True)
    async with gateway.http.delete(gateway.url + "/api/todos/5", headers=REPRESENTATION) as resp:
        assert resp.status == 200 and (await resp.json())["title"] == "rye"
    assert await gateway.sql("SELECT count(*) FROM todos") == [(0,)]
    for method in ("GET", "PATCH", "DELETE"):
        async with gateway.http.request(method, gateway.url + "/api/todos/5", json={"done": True}) as resp:
            assert resp.status == 404 and (await error_body(resp))["code"] == "not_found"


async def test_delete_by_filter_removes_what_it_matches(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (id, title, done) SELECT i, 't' || i, i % 2 = 0 FROM generate_series(1, 6) i")
    async with gateway.http.delete(gateway.url + "/api/todos?done=is.true") as resp:
        assert resp.status == 204 and resp.headers["Content-Range"] == "*/*"
    assert await gateway.sql("SELECT id FROM todos ORDER BY id") == [(1,), (3,), (5,)]
    async with gateway.http.delete(gateway.url + "/api/todos?id=gt.3", headers=REPRESENTATION) as resp:
        assert resp.status == 200 and [r["id"] for r in await resp.json()] == [5]
    async with gateway.http.delete(gateway.url + "/api/todos?id=eq.404") as resp:
        assert resp.status == 204  # matched nothing, changed nothing


async def test_an_unfiltered_patch_or_delete_is_refused_and_changes_nothing(gateway: RunningGateway) -> None:
    """PostgREST would change every row; we refuse, with a hint."""
    await gateway.sql("INSERT INTO todos (id, title) VALUES (1, 'a'), (2, 'b')")
    for method in ("PATCH", "DELETE"):
        async with gateway.http.request(method, gateway.url + "/api/todos", json={"done": True}) as resp:
            assert resp.status == 400
            error = await error_body(resp)
        assert error["code"] == "unfiltered_write" and "id=eq.1" in error["hint"]
    assert await gateway.sql("SELECT count(*) FROM todos WHERE NOT done") == [(2,)]


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
    assert await titles("?done=eq.true") == ["t02", "t04", "t06", "t08", "t10"]
    assert await titles("?done=is.false&title=eq.t03") == ["t03"]
    assert await titles("?order=id.desc&limit=3") == ["t10", "t09", "t08"]
    assert await titles("?order=title.desc&limit=2&offset=1") == ["t09", "t08"]
    assert await titles("?order=done,id.desc&limit=3") == ["t09", "t07", "t05"]
    assert await titles("?limit=0") == []
    assert await titles("?title=eq.nope") == []


async def test_a_bare_value_is_a_400_with_the_hint_to_write_eq(gateway: RunningGateway) -> None:
    async with gateway.http.get(gateway.url + "/api/todos?done=true") as resp:
        assert resp.status == 400
        error = await error_body(resp)
    assert error["code"] == "PGRST100" and error["hint"].startswith("done=eq.true")
    assert error["message"] == '"failed to parse filter (true)" (line 1, column 1)'


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
        async with gw.http.post(gw.url + "/api/shop.items", json=body, headers=REPRESENTATION) as resp:
            assert resp.status == 201, await resp.text()
            (row,) = await resp.json()
        assert row == {**body, "price": 9.50}
        event = await client.next()
        assert event.json["table"] == "shop.items" and event.json["row"]["meta"] == {"colour": "red"}
        async with gw.http.get(gw.url + "/api/shop.items?qty=eq.3") as resp:
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
    ("GET", "/api/todos?title%22%3B%20DROP%20TABLE%20todos%3B--=eq.1", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?%22title%3B%20DROP%20TABLE%20todos%3B--%22=eq.1", None, None, 400, "42703"),
    ("GET", "/api/todos?order=id;drop", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?order=%22id;drop%22", None, None, 400, "42703"),
    ("GET", "/api/todos?order=id.sideways", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?order=-id", None, None, 400, "PGRST100"),  # the old grammar's descending
    ("GET", "/api/todos?limit=ten", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?limit=-1", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?limit=1_0", None, None, 400, "PGRST100"),  # int() takes these three
    ("GET", "/api/todos?limit=%D9%A1", None, None, 400, "PGRST100"),  # an Arabic-Indic 1
    ("GET", "/api/todos?offset=%205", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?offset=5%0A", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?id=abc", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?id=eq.abc", None, None, 400, "22P02"),
    ("GET", "/api/todos?id=eqq.1", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?colour=eq.red", None, None, 400, "42703"),
    ("GET", "/api/todos?select=colour", None, None, 400, "42703"),
    ("GET", "/api/todos?select=id::text;drop", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?select=id::nosuchtype", None, None, 400, "42704"),
    ("GET", "/api/todos?id=like.1", None, None, 404, "42883"),  # no LIKE for an integer: PostgREST's 404
    ("GET", "/api/todos?title=cd.", None, None, 400, "42725"),  # <@ on text: Postgres cannot choose (schemathesis)
    ("DELETE", "/api/todos?title=cd.{a}", None, None, 400, "42725"),
    ("GET", "/api/todos?or=(id.eq.1,title.eq.a", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?title=in.(a,b", None, None, 400, "PGRST100"),
    ("GET", "/api/todos?title=is.maybe", None, None, 400, "PGRST100"),
    ("PATCH", "/api/todos", {"title": "every row"}, None, 400, "unfiltered_write"),
    ("DELETE", "/api/todos", None, None, 400, "unfiltered_write"),
    ("DELETE", "/api/todos?limit=1", None, None, 400, "unfiltered_write"),  # a limit is no filter
    ("PATCH", "/api/todos?id=eq.1", [{"title": "x"}], None, 400, "PGRST102"),
    ("PATCH", "/api/todos?id=eq.1", {"colour": "red"}, None, 400, "PGRST204"),
    ("POST", "/api/todos", [{"title": "a"}, {"title": "b", "done": True}], None, 400, "PGRST102"),
    ("POST", "/api/todos", [{"id": 10, "title": "a"}, {"id": 11, "title": ""}], None, 400, "23514"),  # all or nothing
    ("POST", "/api/todos", [{"title": "a"}, 5], None, 400, "PGRST102"),
    ("POST", "/api/todos", b"", {"Content-Type": "application/json"}, 400, "PGRST102"),
    ("POST", "/api/todos?columns=title,colour", {"title": "a"}, None, 400, "PGRST204"),
    ("POST", "/api/todos?id=eq.1", {"title": "a"}, None, 400, "PGRST100"),
    (
        "POST",
        "/api/todos?on_conflict=nope",
        {"id": 1, "title": "a"},
        {"Prefer": "resolution=merge-duplicates"},
        400,
        "PGRST204",
    ),
    (
        "POST",
        "/api/todos?on_conflict=title",
        {"id": 1, "title": "a"},
        {"Prefer": "resolution=merge-duplicates"},
        400,
        "42P10",
    ),
    ("POST", "/api/todos", {"title": "a"}, {"Prefer": "handling=strict, return=everything"}, 400, "PGRST122"),
    ("GET", "/api/todos", None, {"Accept": "text/html"}, 406, "PGRST107"),
    ("GET", "/api/todos", None, {"Accept": "application/vnd.pgrst.object+json"}, 406, "PGRST116"),
    ("GET", "/api/todos", None, {"Range": "5-2"}, 416, "PGRST103"),
    ("GET", "/api/todos?offset=5", None, {"Prefer": "count=exact"}, 416, "PGRST103"),
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
    ("GET", "/api/todos?title=eq.%00", None, None, 400, "22P02"),
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
        headers = {"Prefer": "return=headers-only"}
        async with gw.http.post(gw.url + "/api/tags", json={"name": "a/b?c d"}, headers=headers) as resp:
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
