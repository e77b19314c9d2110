"""GET /events/<table>?<filter>, through real HTTP and a real Postgres: the changes of
the rows that match, with moves in and out as inserts and deletes."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import jwt
import psycopg2
import pytest

from .conftest import RunningGateway, start_gateway
from .sse_client import Event, SSEClient
from .waiting import until

SECRET = "test-secret-that-is-long-enough-for-hs256"


async def view(
    gw: RunningGateway, query: str, headers: dict[str, str] | None = None, table: str = "todos"
) -> SSEClient:
    client = SSEClient(gw.http, f"{gw.url}/events/{table}?{query}", headers=headers)
    await client.connected()
    return client


async def add(gw: RunningGateway, title: str, done: bool = False) -> int:
    rows = await gw.sql("INSERT INTO todos (title, done) VALUES (%s, %s) RETURNING id", (title, done))
    return int(rows[0][0])  # type: ignore[call-overload]


def seen(event: Event) -> tuple[str, str, str | None, str | None]:
    """(event type, op, moved, title) of one event."""
    data = event.json
    row = data["row"] if data["row"] is not None else data.get("old")
    return event.type, data["op"], data.get("moved"), (row or {}).get("title")


async def test_update_moves_rows_out_as_deletes_and_in_as_inserts(gateway: RunningGateway) -> None:
    client = await view(gateway, "done=is.false")
    a = await add(gateway, "a")
    b = await add(gateway, "b", done=True)  # not in the view: nothing
    await gateway.sql("UPDATE todos SET title = 'a2' WHERE id = %s", (a,))
    await gateway.sql("UPDATE todos SET done = true WHERE id = %s", (a,))
    await gateway.sql("UPDATE todos SET done = false WHERE id = %s", (b,))
    await gateway.sql("UPDATE todos SET title = 'a3' WHERE id = %s", (a,))  # outside: nothing
    await gateway.sql("DELETE FROM todos WHERE id = %s", (b,))
    events = await client.take(5)
    assert [seen(e) for e in events] == [
        ("insert", "insert", None, "a"),
        ("update", "update", None, "a2"),
        ("delete", "update", "out", "a2"),
        ("insert", "update", "in", "b"),
        ("delete", "delete", None, "b"),
    ]
    moved_out = events[2].json
    assert moved_out["row"] is None and moved_out["old"]["done"] is False  # never a row outside the view
    assert events[3].json["old"] is None and events[3].json["row"]["done"] is False
    assert "moved" not in events[1].json
    await add(gateway, "marker")  # the next one in the view: nothing came between
    assert seen(await client.next()) == ("insert", "insert", None, "marker")
    await client.close()


async def test_select_sends_only_the_chosen_columns_of_row_and_old(gateway: RunningGateway) -> None:
    client = await view(gateway, "select=id,title&title=like.keep*")
    a = await add(gateway, "keep me")
    await gateway.sql("UPDATE todos SET done = true WHERE id = %s", (a,))
    inserted, updated = await client.take(2)
    assert inserted.json["row"] == {"id": a, "title": "keep me"}
    assert updated.json["row"] == {"id": a, "title": "keep me"}
    assert updated.json["old"] == {"id": a, "title": "keep me"}
    await client.close()


async def test_on_takes_only_the_changes_named(gateway: RunningGateway) -> None:
    client = await view(gateway, "on=insert&done=is.false")
    a = await add(gateway, "a")
    await gateway.sql("UPDATE todos SET title = 'a2' WHERE id = %s", (a,))  # an update: not wanted
    await gateway.sql("UPDATE todos SET done = true WHERE id = %s", (a,))  # a move out: a delete, not wanted
    await gateway.sql("UPDATE todos SET done = false WHERE id = %s", (a,))  # a move in: an insert
    events = await client.take(2)
    assert [seen(e) for e in events] == [("insert", "insert", None, "a"), ("insert", "update", "in", "a2")]
    await add(gateway, "marker")
    assert seen(await client.next()) == ("insert", "insert", None, "marker")
    await client.close()


async def test_truncate_reaches_every_filtered_stream_of_the_table(gateway: RunningGateway) -> None:
    narrow = await view(gateway, "title=eq.nothing-has-this&on=insert")
    wide = await view(gateway, "done=is.false")
    await add(gateway, "a")
    await gateway.sql("TRUNCATE todos")
    assert seen(await wide.next()) == ("insert", "insert", None, "a")
    for client in (narrow, wide):
        event = await client.next()
        assert event.type == "truncate" and event.json["op"] == "truncate"
        await client.close()


async def test_resume_replays_through_the_same_filter(gateway: RunningGateway) -> None:
    client = await view(gateway, "done=is.false")
    a = await add(gateway, "a")
    first = await client.next()
    await client.close()
    await add(gateway, "hidden", done=True)
    await gateway.sql("UPDATE todos SET done = true WHERE id = %s", (a,))
    await add(gateway, "d")
    resumed = await view(gateway, "done=is.false", headers={"Last-Event-ID": first.id})
    assert [seen(e) for e in await resumed.take(2)] == [
        ("delete", "update", "out", "a"),
        ("insert", "insert", None, "d"),
    ]
    await add(gateway, "live")
    assert seen(await resumed.next()) == ("insert", "insert", None, "live")
    await resumed.close()


async def test_equal_filters_share_a_group_and_equality_filters_are_indexed(gateway: RunningGateway) -> None:
    same = [await view(gateway, "done=is.false") for _ in range(3)]
    by_title = {title: await view(gateway, f"title=eq.{title}") for title in ("x", "y", "z")}
    stats = gateway.hub.statistics()
    assert (stats.views, stats.view_groups) == (6, 4)
    await add(gateway, "y")
    for client in same:
        assert seen(await client.next()) == ("insert", "insert", None, "y")
    assert seen(await by_title["y"].next()) == ("insert", "insert", None, "y")
    await add(gateway, "x")
    assert seen(await by_title["x"].next()) == ("insert", "insert", None, "x")
    await add(gateway, "z")
    assert seen(await by_title["z"].next()) == ("insert", "insert", None, "z")
    assert by_title["x"].events.empty() and by_title["y"].events.empty()
    for client in [*same, *by_title.values()]:
        await client.close()
    await until(lambda: gateway.hub.statistics().views == 0, what="every view unsubscribed")
    assert gateway.hub.statistics().view_groups == 0


@pytest.mark.parametrize(
    ("path", "status", "code", "words"),
    [
        ("/events/todos?title=match.x", 400, "unsupported_filter", "'title' with match"),
        ("/events/todos?title=gt.a", 400, "unsupported_filter", "collation"),
        ("/events/todos?nope=eq.1", 400, "42703", "todos.nope"),
        ("/events/todos?done=eq.maybe", 400, "22P02", "boolean"),
        ("/events/todos?id=eqq.1", 400, "PGRST100", "eqq.1"),
        ("/events/todos?order=id", 400, "PGRST100", "order"),
        ("/events/todos?on=upsert", 400, "PGRST100", "upsert"),
        ("/events/todos?select=id,nope", 400, "42703", "todos.nope"),
        ("/events/todos?select=t:title", 400, "PGRST100", "aliases"),
        ("/events/nosuch?id=eq.1", 404, "PGRST205", "'nosuch'"),
        ("/events/todos?lastEventId=abc", 400, "bad_cursor", "Last-Event-ID"),
    ],
)
async def test_a_bad_filter_is_a_json_error_naming_what_is_wrong(
    gateway: RunningGateway, path: str, status: int, code: str, words: str
) -> None:
    async with gateway.http.get(gateway.url + path) as resp:
        assert resp.status == status
        body: dict[str, Any] = json.loads(await resp.text())
    assert set(body) == {"code", "message", "details", "hint"}
    assert body["code"] == code
    assert words in body["message"] + (body["details"] or ""), body


async def test_several_views_share_one_connection_in_id_order(gateway: RunningGateway) -> None:
    views = "view=" + quote("todos?done=is.false") + "&view=" + quote("todos?title=eq.x&select=id,title")
    client = SSEClient(gateway.http, f"{gateway.url}/events?{views}")
    await client.connected()
    x = await add(gateway, "x")
    await add(gateway, "y")
    await gateway.sql("UPDATE todos SET done = true WHERE id = %s", (x,))
    events = await client.take(4)
    assert [(e.type, e.json["view"], (e.json["row"] or e.json["old"])["title"]) for e in events] == [
        ("insert", 0, "x"),
        ("insert", 1, "x"),
        ("insert", 0, "y"),
        ("delete", 0, "x"),  # moved out of view 0; still in view 1:
    ] and events[0].id == events[1].id
    update = await client.next()
    assert (update.type, update.json["view"], update.json["row"]) == ("update", 1, {"id": x, "title": "x"})
    await client.close()
    resumed = SSEClient(gateway.http, f"{gateway.url}/events?{views}", headers={"Last-Event-ID": events[0].id})
    await resumed.connected()
    replayed = await resumed.take(3)
    assert [(e.type, e.json["view"]) for e in replayed] == [("insert", 0), ("delete", 0), ("update", 1)]
    await resumed.close()
    async with gateway.http.get(f"{gateway.url}/events?topic=todos&{views}") as resp:
        assert resp.status == 400 and "not both" in (await resp.json())["message"]


@contextlib.asynccontextmanager
async def with_table_named_on(database: str) -> AsyncIterator[RunningGateway]:
    with contextlib.closing(psycopg2.connect(database)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        cur.execute('CREATE TABLE things (id serial PRIMARY KEY, "on" text)')
    async with start_gateway(database, expose=("todos", "things")) as gw:
        yield gw


async def test_a_column_named_on_is_filtered_never_mistaken(database: str) -> None:
    async with with_table_named_on(database) as gw:
        client = await view(gw, "on=eq.x", table="things")
        ops = await view(gw, "on=insert", table="things")
        await gw.sql("INSERT INTO things (\"on\") VALUES ('y'), ('x')")
        await gw.sql("UPDATE things SET \"on\" = 'x2' WHERE \"on\" = 'y'")
        event = await client.next()
        assert (event.type, event.json["row"]["on"]) == ("insert", "x")
        assert [e.json["row"]["on"] for e in await ops.take(2)] == ["y", "x"]
        await gw.sql("INSERT INTO things (\"on\") VALUES ('x')")
        assert (await ops.next()).json["row"]["on"] == "x"  # the update came before: not an insert
        assert (await client.next()).json["row"]["on"] == "x"
        await client.close()
        await ops.close()


async def test_the_token_must_grant_the_table(database: str) -> None:
    async with start_gateway(database, jwt_secret=SECRET) as gw:

        def bearer(topics: list[str]) -> dict[str, str]:
            token = jwt.encode({"exp": time.time() + 3600, "topics": topics}, SECRET, algorithm="HS256")
            return {"Authorization": f"Bearer {token}"}

        async with gw.http.get(f"{gw.url}/events/todos?done=is.false", headers=bearer(["notes"])) as resp:
            assert resp.status == 403
            assert (await resp.json())["code"] == "forbidden"
        async with gw.http.get(f"{gw.url}/events/todos?done=is.false") as resp:
            assert resp.status == 401
        client = await view(gw, "done=is.false", headers=bearer(["todos"]))
        await add(gw, "granted")
        assert seen(await client.next()) == ("insert", "insert", None, "granted")
        await client.close()


async def test_the_tokens_rows_claim_narrows_every_stream_of_its_table(database: str) -> None:
    async with start_gateway(database, jwt_secret=SECRET) as gw:

        def bearer(**claims: object) -> dict[str, str]:
            token = jwt.encode({"exp": time.time() + 3600, **claims}, SECRET, algorithm="HS256")
            return {"Authorization": f"Bearer {token}"}

        mine = bearer(topics=["todos", "chat"], rows={"todos": "title=like.mine*"})
        client = await view(gw, "done=is.false", headers=mine)
        a = await add(gw, "mine a")
        await add(gw, "theirs")  # outside the token's filter: never sent
        await gw.sql("UPDATE todos SET title = 'given away' WHERE id = %s", (a,))  # leaves it: a delete
        await add(gw, "mine b", done=True)  # outside the client's own filter
        await add(gw, "mine c")
        assert [seen(e) for e in await client.take(3)] == [
            ("insert", "insert", None, "mine a"),
            ("delete", "update", "out", "mine a"),  # the row as it was: its new state is not the token's
            ("insert", "insert", None, "mine c"),
        ]
        first_id = (await gw.sql("SELECT min(id) FROM gateway.journal"))[0][0]
        replay = await view(gw, "", headers={**mine, "Last-Event-ID": str(int(first_id) - 1)})  # type: ignore[call-overload]
        assert [seen(e)[3] for e in await replay.take(4)] == ["mine a", "mine a", "mine b", "mine c"]
        for path in ("/events?topic=todos", "/events?topic=todos/1"):
            async with gw.http.get(gw.url + path, headers=mine) as resp:
                assert resp.status == 403
                assert "rows filter" in (await resp.json())["message"]
        async with gw.http.get(gw.url + "/events?topic=chat", headers=mine) as resp:
            assert resp.status == 200  # publish topics keep today's grants
        for bad in ({"rows": "title=eq.x"}, {"rows": {"todos": 5}}, {"rows": {"todos": "title=eqq.x"}}):
            async with gw.http.get(gw.url + "/events/todos", headers=bearer(topics=["todos"], **bad)) as resp:
                assert resp.status == 401, bad
        async with gw.http.get(
            gw.url + "/events/todos", headers=bearer(topics=["todos"], rows={"todos": "title=match.x"})
        ) as resp:
            assert resp.status == 403
        await client.close()
        await replay.close()
