"""Resuming across journal pruning: a cursor within retention resumes with nothing
missing, any other gets an explicit refetch; never a silent gap, and an emptied
journal does not make up-to-date clients refetch."""

from __future__ import annotations

import aiopg
import pytest

from .conftest import RunningGateway, run_sql, start_gateway
from .sse_client import Event, SSEClient


async def _first_after_marker_written(gw: RunningGateway, client: SSEClient) -> Event:
    """The first event a resumed stream gets, once a marker event has been written after it."""
    await gw.sql("INSERT INTO todos (title) VALUES ('marker')")
    return await client.next()


async def _late_row_pruned(gw: RunningGateway, prune: str, newer: bool = False) -> tuple[Event, Event]:
    """A writer takes journal id L and stays open; a client reads past L and leaves; the
    writer commits (live subscribers get L); with ``newer``, one more row is written;
    ``prune`` runs. The client's cursor, L's event."""
    reader = await gw.subscribe("todos")
    live = await gw.subscribe("todos")
    async with aiopg.connect(gw.dsn) as conn, conn.cursor() as writer:
        await writer.execute("BEGIN")
        await writer.execute("INSERT INTO todos (title) VALUES ('late')")
        await gw.sql("INSERT INTO todos (title) VALUES ('read past it')")
        past = await reader.next()
        await reader.close()
        await writer.execute("COMMIT")
    late = (await live.take(2))[1]
    assert late.json["row"]["title"] == "late" and int(late.id) < int(past.id)
    await live.close()
    if newer:
        await gw.sql("INSERT INTO todos (title) VALUES ('newer')")
    await gw.sql(prune, {"cursor": int(past.id)})
    return past, late


async def _gets_late_row_or_refetch(gw: RunningGateway, past: Event, late: Event) -> None:
    resumed = await gw.subscribe("todos", headers={"Last-Event-ID": past.id})
    first = await _first_after_marker_written(gw, resumed)
    if first.type == "refetch":
        assert first.json["reason"] == "cursor_expired" and first.json["cursor"] == int(past.id)
    else:
        assert (first.id, first.json["row"]["title"]) == (late.id, "late"), "resume skipped the late row"
    await resumed.close()


@pytest.mark.parametrize("newer", [False, True], ids=["cursor_is_newest", "newer_row_after"])
async def test_resume_after_an_age_prune_of_a_late_row_gets_it_or_a_refetch(
    gateway: RunningGateway, newer: bool
) -> None:
    """L's created_at is its transaction's start, older than the cursor's row: an age
    limit between the two makes the prune take L and keep the cursor's row."""
    past, late = await _late_row_pruned(
        gateway,
        "SELECT gateway.prune(now() - created_at, 1000000) FROM gateway.journal WHERE id = %(cursor)s",
        newer,
    )
    await _gets_late_row_or_refetch(gateway, past, late)


async def test_resume_after_a_row_count_prune_of_a_late_row_gets_it_or_a_refetch(gateway: RunningGateway) -> None:
    past, late = await _late_row_pruned(gateway, "SELECT gateway.prune(interval '1 day', 1)")  # keep the newest only
    (kept,) = (await gateway.sql("SELECT count(*) FROM gateway.journal"))[0]
    assert kept == 1  # L went: a row limit is a limit
    await _gets_late_row_or_refetch(gateway, past, late)


async def test_cursor_within_retention_resumes_after_a_prune(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("todos")
    for i in range(1, 4):
        await gateway.sql("INSERT INTO todos (title) VALUES (%s)", (f"seen {i}",))
    seen = await client.take(3)
    await client.close()
    for i in range(1, 3):
        await gateway.sql("INSERT INTO todos (title) VALUES (%s)", (f"missed {i}",))
    assert (await gateway.sql("SELECT gateway.prune(interval '1 day', 4)"))[0][0] == 1  # "seen 1" goes
    expected = {seen[0].id: ["seen 2", "seen 3", "missed 1", "missed 2"], seen[2].id: ["missed 1", "missed 2"]}
    for cursor, titles in expected.items():  # the last pruned id, and a kept one
        resumed = await gateway.subscribe("todos", headers={"Last-Event-ID": cursor})
        events = await resumed.take(len(titles))
        assert [(e.type, e.json["row"]["title"]) for e in events] == [("insert", title) for title in titles]
        assert (await _first_after_marker_written(gateway, resumed)).json["row"]["title"] == "marker"
        await resumed.close()


async def test_up_to_date_client_resumes_after_the_journal_emptied(database: str) -> None:
    """A quiet period longer than the retention empties the journal; the position stays."""
    async with start_gateway(database) as gw:
        client = await gw.subscribe("todos")
        await gw.sql("INSERT INTO todos (title) SELECT 'one statement ' || i FROM generate_series(1, 3) i")
        await gw.sql("INSERT INTO todos (title) VALUES ('last')")
        last = (await client.take(4))[-1]
        await client.close()
        fresh = await gw.subscribe("todos")
        assert fresh.last_event_id == last.id  # the preamble cursor
        await fresh.close()
        assert (await gw.sql("SELECT gateway.prune(interval '0', 1000000)"))[0][0] == 4
        assert (await gw.sql("SELECT count(*) FROM gateway.journal"))[0][0] == 0
        resumed = await gw.subscribe("todos", headers={"Last-Event-ID": last.id})
        first = await _first_after_marker_written(gw, resumed)
        assert (first.type, first.json["row"]["title"]) == ("insert", "marker")
        await resumed.close()
        marker = first
    await run_prune_empty(database)
    async with start_gateway(database) as restarted:  # the position survives a restart on an empty journal
        fresh = await restarted.subscribe("todos")
        assert fresh.last_event_id == marker.id
        await fresh.close()
        resumed = await restarted.subscribe("todos", headers={"Last-Event-ID": fresh.last_event_id})
        first = await _first_after_marker_written(restarted, resumed)
        assert (first.type, first.json["row"]["title"]) == ("insert", "marker")
        await resumed.close()


async def run_prune_empty(dsn: str) -> None:
    async with aiopg.connect(dsn) as conn, conn.cursor() as cur:
        await cur.execute("SELECT gateway.prune(interval '0', 1000000)")
        await cur.execute("SELECT count(*) FROM gateway.journal")
        assert (await cur.fetchone())[0] == 0


async def test_a_journal_pruned_by_an_older_gateway_refetches_its_old_cursors_once(database: str) -> None:
    """What an older prune deleted is unknown: cursors from before the upgrade refetch,
    cursors written after it resume; applying the schema again changes nothing."""
    async with start_gateway(database) as gw:
        await gw.sql("INSERT INTO todos (title) SELECT 'old ' || i FROM generate_series(1, 3) i")
    await run_sql(
        database,
        "ALTER TABLE gateway.retention DROP COLUMN boundary_tx, DROP COLUMN boundary_xmin, DROP COLUMN second_late_tx,"
        " DROP COLUMN late_tx, DROP COLUMN pruned_snapshot;"
        "DELETE FROM gateway.journal WHERE id = 1; UPDATE gateway.retention SET pruned_through = 1",
    )
    async with start_gateway(database) as gw:
        old = await gw.subscribe("todos", headers={"Last-Event-ID": "2"})
        refetch = await old.next()
        assert (refetch.type, refetch.json["reason"]) == ("refetch", "cursor_expired")
        await old.close()
        await gw.sql("INSERT INTO todos (title) VALUES ('new')")
        (new_id,) = (await gw.sql("SELECT max(id) FROM gateway.journal"))[0]
        migrated = await gw.sql("SELECT late_tx::text, pruned_snapshot::text FROM gateway.retention")
    async with start_gateway(database) as gw:
        assert await gw.sql("SELECT late_tx::text, pruned_snapshot::text FROM gateway.retention") == migrated
        resumed = await gw.subscribe("todos", headers={"Last-Event-ID": str(new_id)})
        first = await _first_after_marker_written(gw, resumed)
        assert (first.type, first.json["row"]["title"]) == ("insert", "marker")
        await resumed.close()


async def test_quiet_period_after_overlapping_writers_needs_no_refetch(gateway: RunningGateway) -> None:
    """Two writers overlap, then nothing happens for longer than the retention. The
    newest row's writer started while the other was open, so the older row could be
    late for it: the age limit keeps both rather than make up-to-date clients refetch."""
    client = await gateway.subscribe("todos")
    async with (
        aiopg.connect(gateway.dsn) as c1,
        c1.cursor() as one,
        aiopg.connect(gateway.dsn) as c2,
        c2.cursor() as two,
    ):
        await one.execute("BEGIN; INSERT INTO todos (title) VALUES ('first')")
        await two.execute("BEGIN; INSERT INTO todos (title) VALUES ('second')")
        await one.execute("COMMIT")
        await two.execute("COMMIT")
    last = (await client.take(2))[-1]
    assert last.json["row"]["title"] == "second"
    await client.close()
    await gateway.sql("SELECT gateway.prune(interval '0', 1000000)")
    resumed = await gateway.subscribe("todos", headers={"Last-Event-ID": last.id})
    await gateway.sql("INSERT INTO todos (title) VALUES ('marker')")
    while (event := await resumed.next()).json.get("row", {}).get("title") != "marker":
        assert event.type != "refetch", event
        assert int(event.id) <= int(last.id)  # a duplicate across the resume, allowed
    await resumed.close()
