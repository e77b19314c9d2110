"""A client that keeps a filtered list from /events/<table>?<filter> ends with the list
a fresh filtered read gives, whatever the writes (issue 12, item 2).

Hypothesis draws a sequence of inserts, updates (one row or several in one
statement) and deletes, through SQL and through /api, with an occasional TRUNCATE,
and a point where every client drops its connection and resumes with its
Last-Event-ID. One client per filter keeps ``{id: row}`` from its stream the way an
app does, handling only insert, update, delete and truncate. At the end a marker
row that every filter matches is inserted; once a client has it, its list must
equal ``SELECT ... WHERE <the filter>`` (the filter written as SQL, as in
tests/test_predicate.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiopg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg2 import sql

from gateway.grammar import parse_filters

from .conftest import RunningGateway
from .sse_client import Event, SSEClient
from .test_predicate import _and_sql
from .waiting import until

MARKER = "__end__"
# Every filter matches the marker row (done = false, title MARKER); titles are drawn from TITLES.
FILTERS = (
    "done=is.false",
    f"title=in.(a,b,{MARKER})",
    "or=(done.is.true,title.like.*end*)",
    "id=gt.0&title=neq.b",
    "not.and=(done.is.true,title.eq.a)",
)
TITLES = ("a", "b", "ab", "c")

ops = st.one_of(
    st.tuples(st.just("insert"), st.sampled_from(TITLES), st.booleans(), st.booleans()),
    st.tuples(st.just("update"), st.integers(0, 20), st.sampled_from(TITLES), st.booleans(), st.booleans()),
    st.tuples(st.just("flip"), st.sampled_from(TITLES)),  # one statement, every row with that title
    st.tuples(st.just("delete"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("truncate")),
)


class ListKeeper:
    """A filtered stream and the list an app keeps from it."""

    def __init__(self, gw: RunningGateway, query: str) -> None:
        self.gw, self.query = gw, query
        self.rows: dict[int, tuple[int, str, bool]] = {}
        self.client: SSEClient | None = None
        self.saw_marker = False

    async def connect(self, last_event_id: str | None = None) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else None
        url = f"{self.gw.url}/events/todos?select=id,title,done&{self.query}"
        self.client = SSEClient(self.gw.http, url, headers=headers)
        await self.client.connected()

    async def resume(self) -> None:
        """Drop the connection and come back with the last id it read, as EventSource does."""
        assert self.client is not None
        await self.client.close()
        while not self.client.events.empty():
            self.take(self.client.events.get_nowait())
        await self.connect(self.client.last_event_id)

    async def until_marker(self) -> None:
        assert self.client is not None
        async with asyncio.timeout(10):
            while not self.saw_marker:
                self.take(await self.client.events.get())

    def take(self, event: Event) -> None:
        """What an app does with one event of its filtered list."""
        data = event.json
        if event.type == "truncate":
            self.rows.clear()
            return
        row = data["row"] if event.type != "delete" else (data.get("old") or data["row"])
        if event.type in ("insert", "update"):
            self.rows[row["id"]] = (row["id"], row["title"], row["done"])
            self.saw_marker = self.saw_marker or row["title"] == MARKER
        elif event.type == "delete":
            self.rows.pop(row["id"], None)

    async def expected(self) -> dict[int, tuple[int, str, bool]]:
        where, params = _and_sql(parse_filters(self.query))
        query = sql.SQL("SELECT id, title, done FROM todos AS t WHERE {}").format(where)
        async with _Cursor(self.gw) as cur:
            await cur.execute(query, params)
            return {int(r[0]): (int(r[0]), str(r[1]), bool(r[2])) for r in await cur.fetchall()}


class _Cursor:
    """A cursor on a connection of its own (autocommit), for composed SQL."""

    def __init__(self, gw: RunningGateway) -> None:
        self.gw = gw

    async def __aenter__(self) -> Any:
        self.conn = await aiopg.connect(self.gw.dsn)
        self.cur = await self.conn.cursor()
        return self.cur

    async def __aexit__(self, *exc: object) -> None:
        self.cur.close()
        await self.conn.close()


async def apply(gw: RunningGateway, op: tuple[Any, ...]) -> None:
    kind = op[0]
    ids = [int(r[0]) for r in await gw.sql("SELECT id FROM todos ORDER BY id")]  # type: ignore[call-overload]
    if kind == "insert":
        _, title, done, via_api = op
        if via_api:
            async with gw.http.post(f"{gw.url}/api/todos", json={"title": title, "done": done}) as resp:
                assert resp.status == 201, await resp.text()
        else:
            await gw.sql("INSERT INTO todos (title, done) VALUES (%s, %s)", (title, done))
    elif kind == "update" and ids:
        _, index, title, done, via_api = op
        target = ids[index % len(ids)]
        if via_api:
            async with gw.http.patch(f"{gw.url}/api/todos/{target}", json={"title": title, "done": done}) as resp:
                assert resp.status in (200, 204), await resp.text()
        else:
            await gw.sql("UPDATE todos SET title = %s, done = %s WHERE id = %s", (title, done, target))
    elif kind == "flip":
        await gw.sql("UPDATE todos SET done = NOT done WHERE title = %s", (op[1],))
    elif kind == "delete" and ids:
        _, index, via_api = op
        target = ids[index % len(ids)]
        if via_api:
            async with gw.http.delete(f"{gw.url}/api/todos/{target}") as resp:
                assert resp.status in (200, 204), await resp.text()
        else:
            await gw.sql("DELETE FROM todos WHERE id = %s", (target,))
    elif kind == "truncate":
        await gw.sql("TRUNCATE todos")


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@example(  # moves out, in, and out again, across a resume
    sequence=[("insert", "a", False, False), ("update", 0, "a", True, False), ("flip", "a"), ("flip", "a")],
    resume_at=2,
    seed_rows=2,
)
@given(sequence=st.lists(ops, min_size=1, max_size=20), resume_at=st.integers(0, 20), seed_rows=st.integers(0, 3))
async def test_a_filtered_list_kept_from_the_stream_equals_a_fresh_filtered_read(
    gateway: RunningGateway, sequence: list[tuple[Any, ...]], resume_at: int, seed_rows: int
) -> None:
    await gateway.sql("TRUNCATE todos")
    for i in range(seed_rows):  # rows from before the streams: their updates may move them in
        await gateway.sql("INSERT INTO todos (title, done) VALUES (%s, %s)", (TITLES[i], i % 2 == 0))
    keepers = [ListKeeper(gateway, query) for query in FILTERS]
    try:
        for keeper in keepers:
            await keeper.connect()
            keeper.rows = await keeper.expected()  # the initial GET
        for step, op in enumerate(sequence):
            if step == resume_at:
                await gateway.caught_up()
                for keeper in keepers:
                    await keeper.resume()
            await apply(gateway, op)
        await gateway.sql("INSERT INTO todos (title, done) VALUES (%s, false)", (MARKER,))
        for keeper in keepers:
            await keeper.until_marker()
            assert keeper.rows == await keeper.expected(), keeper.query
    finally:  # a failing example must not leave its streams open for the next (the per-client limit)
        for keeper in keepers:
            if keeper.client is not None:
                await keeper.client.close()
        await until(lambda: gateway.hub.statistics().views == 0, what="the example's streams ended")
