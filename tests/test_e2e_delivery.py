"""The delivery invariant under real faults: every committed change reaches every
subscriber of its topic, in order, across listener drops, restarts and resumes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import aiopg

from .conftest import RunningGateway, dsn_with_db, run_sql, start_gateway
from .sse_client import Event
from .waiting import notifications_before_marker, until


def titles(events: list[Event]) -> list[str]:
    return [e.json["row"]["title"] for e in events]


async def _kill_listener(gw: RunningGateway, via: str | None = None) -> int:
    """Terminate the gateway's LISTEN backend (from another database with ``via``)."""
    rows = await run_sql(
        via or gw.dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'pg-sse-gateway listener' AND datname = %s",
        (gw.dsn_dbname,),
    )
    return len(rows)


async def test_listener_killed_mid_stream_loses_and_repeats_nothing(gateway: RunningGateway) -> None:
    clients = [await gateway.subscribe("todos") for _ in range(3)]

    async def writer() -> None:
        async with aiopg.connect(gateway.dsn) as conn, conn.cursor() as cur:
            for i in range(500):
                await cur.execute("INSERT INTO todos (title) VALUES (%s)", (f"n{i}",))
                if i % 50 == 0:
                    await asyncio.sleep(0.01)

    async def killer() -> None:
        await asyncio.sleep(0.15)
        assert await _kill_listener(gateway) == 1
        await asyncio.sleep(0.3)
        await _kill_listener(gateway)

    await asyncio.gather(writer(), killer())
    expected = [f"n{i}" for i in range(500)]
    for client in clients:
        events = await client.take(500, timeout=30)
        assert titles(events) == expected
        await client.nothing_more()
    await until(
        lambda: gateway.metrics.listener_reconnects >= 1, what="the listener noticed the kill"
    )  # maybe after the last event
    for client in clients:
        await client.close()


async def test_resume_replays_late_commit_of_lower_id(gateway: RunningGateway) -> None:
    """A takes the lower id but commits after B was delivered: resuming from B gets A."""
    client = await gateway.subscribe("todos")
    async with aiopg.connect(gateway.dsn) as conn_a, conn_a.cursor() as a:
        await a.execute("BEGIN")
        await a.execute("INSERT INTO todos (title) VALUES ('A') RETURNING id")
        await gateway.sql("INSERT INTO todos (title) VALUES ('B')")
        b_event = await client.next()
        assert b_event.json["row"]["title"] == "B"
        await client.close()
        await a.execute("COMMIT")
    resumed = await gateway.subscribe("todos", headers={"Last-Event-ID": b_event.id})
    a_event = await resumed.next()
    assert a_event.json["row"]["title"] == "A"
    assert int(a_event.id) < int(b_event.id)
    await resumed.nothing_more()
    await resumed.close()


async def test_resume_from_last_event_id_gets_what_was_missed(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("todos")
    await gateway.sql("INSERT INTO todos (title) VALUES ('seen')")
    seen = await client.next()
    await client.close()
    await gateway.sql("INSERT INTO todos (title) SELECT 'missed ' || i FROM generate_series(1, 5) i")
    await gateway.sql("SELECT gateway.publish('elsewhere', '{}')")
    by_header = await gateway.subscribe("todos", headers={"Last-Event-ID": seen.id})
    by_query = await gateway.subscribe("todos", lastEventId=seen.id)
    for resumed in (by_header, by_query):
        events = await resumed.take(5)
        assert titles(events) == [f"missed {i}" for i in range(1, 6)]
        await resumed.nothing_more()
    await gateway.sql("INSERT INTO todos (title) VALUES ('live')")
    for resumed in (by_header, by_query):
        assert (await resumed.next()).json["row"]["title"] == "live"
        await resumed.close()


async def test_resume_during_writes_has_no_gap_and_no_duplicate(gateway: RunningGateway) -> None:
    """The hand-over from replay to live, raced by a concurrent writer."""
    first = await gateway.subscribe("todos")
    await gateway.sql("INSERT INTO todos (title) VALUES ('w0')")
    cursor = (await first.next()).id
    await first.close()
    stop = asyncio.Event()

    async def writer() -> int:
        count = 1
        async with aiopg.connect(gateway.dsn) as conn, conn.cursor() as cur:
            while not stop.is_set():
                await cur.execute("INSERT INTO todos (title) VALUES (%s)", (f"w{count}",))
                count += 1
                await asyncio.sleep(0)
        return count

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.2)
    resumed = await gateway.subscribe("todos", headers={"Last-Event-ID": cursor})
    await asyncio.sleep(0.3)
    stop.set()
    written = await task
    events = await resumed.take(written - 1, timeout=20)
    assert titles(events) == [f"w{i}" for i in range(1, written)]
    await resumed.nothing_more()
    await resumed.close()


async def test_big_and_unicode_rows_arrive_byte_identical(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("todos")
    await gateway.sql("ALTER TABLE todos DROP CONSTRAINT todos_title_check")
    big = "x" * (1024 * 1024)
    tricky = 'line one\nline two\r\n\tünïcødé ✓ 😀 "quoted" \\ back\u2028sep'
    await gateway.sql("INSERT INTO todos (title) VALUES (%s), (%s)", (big, tricky))
    big_event, tricky_event = await client.take(2)
    assert big_event.json["row"]["title"] == big
    assert tricky_event.json["row"]["title"] == tricky
    assert "\n" not in big_event.data and "\n" not in tricky_event.data
    await client.close()


async def test_ten_thousand_row_update_is_one_notification_and_all_events(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (title) SELECT 'r' || i FROM generate_series(1, 10000) i")
    await gateway.caught_up(timeout=20)
    client = await gateway.subscribe("todos")
    await gateway.listener_asleep()  # so the writer has a listener to wake
    async with aiopg.connect(gateway.dsn) as conn, conn.cursor() as cur:
        await cur.execute("LISTEN gateway_journal")
        await gateway.sql("UPDATE todos SET done = true")
        events = await client.take(10000, timeout=60)
        notifications = await notifications_before_marker(conn, gateway.dsn)
    # One from the writer; the listener it woke announces "wake" to other listeners.
    [(writer_tx,)] = await gateway.sql("SELECT tx::text FROM gateway.journal WHERE id = %s", (int(events[0].id),))
    assert [n for n in notifications if n != "wake"] == [writer_tx]
    assert all(e.type == "update" and e.json["row"]["done"] is True for e in events)
    assert titles(events) == [f"r{i}" for i in range(1, 10001)]
    ids = [int(e.id) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 10000
    await client.close()


async def test_expired_cursor_gets_refetch_then_live(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("todos")
    await gateway.sql("INSERT INTO todos (title) SELECT 'old ' || i FROM generate_series(1, 3) i")
    old = await client.take(3)
    await client.close()
    await gateway.sql("INSERT INTO todos (title) VALUES ('newer')")
    pruned = await gateway.sql("SELECT gateway.prune(interval '0', 1)")  # keep only the newest row
    assert pruned[0][0] >= 3
    resumed = await gateway.subscribe("todos", headers={"Last-Event-ID": old[0].id})
    refetch = await resumed.next()
    assert refetch.type == "refetch"
    assert refetch.json["reason"] == "cursor_expired" and refetch.json["cursor"] == int(old[0].id)
    assert refetch.id == str(refetch.json["resume_from"])
    await gateway.sql("INSERT INTO todos (title) VALUES ('live')")
    assert (await resumed.next()).json["row"]["title"] == "live"
    await resumed.close()

    future = await gateway.subscribe("todos", headers={"Last-Event-ID": "999999"})
    event = await future.next()
    assert event.type == "refetch" and event.json["reason"] == "cursor_unknown"
    await future.close()


async def test_two_gateways_on_one_database_both_deliver_everything(database: str) -> None:
    async with start_gateway(database) as one, start_gateway(database) as two:
        a = await one.subscribe("todos")
        b = await two.subscribe("todos")
        await run_sql(database, "INSERT INTO todos (title) SELECT 'g' || i FROM generate_series(1, 50) i")
        for client in (a, b):
            assert titles(await client.take(50)) == [f"g{i}" for i in range(1, 51)]
            await client.close()


async def test_publish_payload_with_newlines_is_one_data_line(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("chat/room1")
    payload = '{\n  "text": "multi\\nline",\n  "n": 1\n}'
    await gateway.sql("SELECT gateway.publish('chat/room1', %s)", (payload,))
    event = await client.next()
    assert event.json["row"] == json.loads(payload)
    await client.close()


async def test_readyz_is_503_while_listener_is_down_and_it_catches_up_after(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("todos")
    dbname = gateway.dsn_dbname
    admin = dsn_with_db(gateway.dsn, "postgres")  # a database cannot lock itself out
    await run_sql(admin, f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
    try:
        assert await _kill_listener(gateway, via=admin) == 1
        await until(lambda: not gateway.listener.connected, timeout=5, what="the listener noticed")
        async with gateway.http.get(gateway.url + "/readyz") as resp:
            assert resp.status == 503
            assert (await resp.json())["listener"] is False
        async with gateway.http.post(gateway.url + "/api/todos", json={"title": "while down"}) as resp:
            assert resp.status == 201  # the pool's open connection still writes
    finally:
        await run_sql(admin, f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    event = await client.next(timeout=15)
    assert event.json["row"]["title"] == "while down"

    async def ready() -> bool:  # the listener says so once its catch-up read has ended
        async with gateway.http.get(gateway.url + "/readyz") as resp:
            return resp.status == 200

    await until(ready, what="/readyz answers 200 after the listener reconnected")
    await client.close()


def _journal_at_most(gw: RunningGateway, rows: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await gw.sql("SELECT count(*) FROM gateway.journal"))[0][0] <= rows  # type: ignore[operator]

    return check


async def test_gateway_prunes_journal_to_its_retention(database: str) -> None:
    async with start_gateway(database, journal_max_rows=5, prune_interval=0.1) as gw:
        await gw.sql("INSERT INTO todos (title) SELECT 't' || i FROM generate_series(1, 50) i")
        await until(_journal_at_most(gw, 5), what="the journal pruned to 5 rows")
        (kept, pruned_through) = (
            await gw.sql("SELECT count(*), (SELECT pruned_through FROM gateway.retention) FROM gateway.journal")
        )[0]
        assert kept == 5 and pruned_through == 45


async def test_writer_without_notify_is_delivered_by_polling(database: str) -> None:
    async with start_gateway(database, poll_interval=0.1) as gw:
        client = await gw.subscribe("todos")
        async with aiopg.connect(gw.dsn) as spy, spy.cursor() as spy_cur:
            await spy_cur.execute("LISTEN gateway_journal")
            async with aiopg.connect(gw.dsn) as conn, conn.cursor() as cur:
                await cur.execute("SET gateway.notify = off")
                for i in range(3):
                    await cur.execute("INSERT INTO todos (title) VALUES (%s)", (f"quiet {i}",))
            events = await client.take(3, timeout=5)
            assert spy.notifies.empty()  # no NOTIFY was sent, yet everything arrived
        assert titles(events) == ["quiet 0", "quiet 1", "quiet 2"]
        await client.close()
