"""The listener against a real Postgres: interrupted reads, and when writers notify."""

from __future__ import annotations

import asyncio

import aiopg

from gateway.db import apply_schema, create_pool
from gateway.hub import Hub
from gateway.journal import PAGE_ROWS, Event, Snapshot
from gateway.listener import BUSY_POLL_MAX, WAKE_LOCK, Listener
from gateway.metrics import Metrics

from .conftest import RunningGateway, run_sql, start_gateway
from .test_e2e_delivery import titles
from .waiting import notifications_before_marker, until


class DropsOnce(Hub):
    """A hub whose second page fails as a dropped connection would, once."""

    def __init__(self) -> None:
        super().__init__(1 << 30)
        self.ids: list[int] = []
        self.pages = 0

    def publish(self, events: list[Event]) -> None:
        self.pages += 1
        if self.pages == 2:
            raise ConnectionResetError("connection dropped in the middle of a read")
        self.ids.extend(e.id for e in events)
        super().publish(events)


async def test_read_broken_off_mid_page_is_finished_without_duplicates(database: str) -> None:
    pool = await create_pool(database, 2)
    await apply_schema(pool, ("todos",), demo=False)
    pool.close()
    await pool.wait_closed()
    hub = DropsOnce()
    counted = Metrics()
    listener = Listener(database, hub, check_interval=0.2, counters=counted)
    task = asyncio.create_task(listener.run())
    await listener.wait_started()
    rows = PAGE_ROWS * 3 + 17
    await run_sql(database, f"INSERT INTO todos (title) SELECT 't' || i FROM generate_series(1, {rows}) i")
    await until(lambda: len(hub.ids) >= rows, timeout=20)
    # A repeat of an earlier page would come before any later row: one more row marks the end.
    await run_sql(database, "INSERT INTO todos (title) VALUES ('marker')")
    [(marker,)] = await run_sql(database, "SELECT max(id) FROM gateway.journal")
    await until(lambda: marker in hub.ids, what="the marker row arrived")
    await listener.stop(task, within=5)
    journal = [r[0] for r in await run_sql(database, "SELECT id FROM gateway.journal ORDER BY id")]
    assert len(journal) == rows + 1
    # Page 2 failed before it reached the hub; the retry finished the read from after
    # page 1: every row once, in order (re-reading from the old snapshot would repeat page 1).
    assert hub.ids == journal
    assert counted.listener_reconnects == 1


async def test_listener_starts_and_ends_its_own_task(database: str) -> None:
    pool = await create_pool(database, 2)
    await apply_schema(pool, ("todos",), demo=False)
    pool.close()
    await pool.wait_closed()
    await run_sql(database, "INSERT INTO todos (title) VALUES ('before the start')")
    [(newest,)] = await run_sql(database, "SELECT max(id) FROM gateway.journal")
    hub = Hub(1 << 20)
    listener = Listener(database, hub, check_interval=0.2)
    listener.start()
    await listener.wait_started()
    assert hub.position == newest  # where the listener starts, set through the hub
    [task] = [t for t in asyncio.all_tasks() if t.get_name() == "gateway-listener"]
    await listener.stop(within=5)
    assert task.done()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "gateway-listener"]


# The wake protocol (listener.py's theory of operation): writers notify only while a
# listener sleeps, and no listener sleeps while a writer that skipped NOTIFY is in flight.
# A long listener_check makes a missed wake-up show as a timeout, not as a slow pass.


async def _writer_notifications(spy: aiopg.Connection, dsn: str) -> list[str]:
    """The writers' notifications ``spy`` got since the last call (a marker ends the wait)."""
    return [p for p in await notifications_before_marker(spy, dsn) if p != "wake"]


async def test_writers_stop_notifying_while_changes_keep_coming(database: str) -> None:
    async with start_gateway(database, listener_check=60.0) as gw, aiopg.connect(database) as spy:
        client = await gw.subscribe("todos")
        await gw.listener_asleep()
        async with spy.cursor() as cur:
            await cur.execute("LISTEN gateway_journal")

        async def write(n: int, tag: str) -> None:
            async with aiopg.connect(database) as conn, conn.cursor() as cur:
                for i in range(n):
                    await cur.execute("INSERT INTO todos (title) VALUES (%s)", (f"{tag}{i}",))

        await asyncio.gather(*(write(100, f"w{k}-") for k in range(4)))
        events = await client.take(400, timeout=10)
        writer_notifications = await _writer_notifications(spy, database)
        assert sorted(titles(events)) == sorted(f"w{k}-{i}" for k in range(4) for i in range(100))
        # The first commit woke the listener; from then on it polled and writers stayed quiet.
        assert 1 <= len(writer_notifications) <= 20, writer_notifications
        await client.close()


async def test_listener_does_not_sleep_while_a_quiet_writer_is_in_flight(database: str) -> None:
    async with start_gateway(database, listener_check=60.0, busy_poll_interval=0.1) as gw:
        client = await gw.subscribe("todos")
        await gw.listener_asleep()
        async with aiopg.connect(database) as spy, spy.cursor() as spy_cur:
            await spy_cur.execute("LISTEN gateway_journal")
            await gw.sql("INSERT INTO todos (title) VALUES ('wakes it')")
            assert titles([await client.next()]) == ["wakes it"]
            assert gw.listener.mode == "polling"
            async with aiopg.connect(database) as conn, conn.cursor() as cur:
                await cur.execute("BEGIN")
                await cur.execute("INSERT INTO todos (title) VALUES ('late')")  # skips NOTIFY: nobody sleeps
                # Past its settle time (10 empty polls) it tried to sleep, could not take the wake
                # lock, and polls less and less often: it would be HOLDING (and wait 60 s) had it slept.
                await until(lambda: gw.listener._wait_time() == BUSY_POLL_MAX, what="polling at BUSY_POLL_MAX")
                assert gw.listener.mode == "polling"
                await cur.execute("COMMIT")
            assert titles([await client.next(timeout=3)]) == ["late"]
            assert len(await _writer_notifications(spy, database)) == 1  # 'wakes it' only
        await gw.listener_asleep()
        await client.close()


async def test_polling_gauge_follows_the_listener_mode(database: str) -> None:
    async def polling_gauge(gw: RunningGateway) -> str:
        async with gw.http.get(gw.url + "/metrics") as resp:
            lines = (await resp.text()).splitlines()
        [value] = [line.split()[1] for line in lines if line.startswith("gateway_listener_polling ")]
        return value

    async with start_gateway(database, listener_check=60.0, busy_poll_interval=0.1) as gw:
        client = await gw.subscribe("todos")
        await gw.listener_asleep()
        assert await polling_gauge(gw) == "0"
        async with aiopg.connect(database) as conn, conn.cursor() as cur:
            await cur.execute("BEGIN")
            await cur.execute("INSERT INTO todos (title) VALUES ('first')")  # nobody polls: it notifies
            await cur.execute("COMMIT")
            assert titles([await client.next()]) == ["first"]
            await cur.execute("BEGIN")
            await cur.execute("INSERT INTO todos (title) VALUES ('in flight')")  # keeps it polling
            await until(lambda: gw.listener._wait_time() == BUSY_POLL_MAX, what="polling at BUSY_POLL_MAX")
            assert await polling_gauge(gw) == "1"
            await cur.execute("COMMIT")
        await gw.listener_asleep()
        assert await polling_gauge(gw) == "0"
        await client.close()


async def test_listener_sleeping_on_another_gateways_lock_is_woken(database: str) -> None:
    async with start_gateway(database, listener_check=60.0) as one, start_gateway(database, listener_check=60.0) as two:
        a, b = await one.subscribe("todos"), await two.subscribe("todos")
        await until(lambda: {one.listener.mode, two.listener.mode} == {"holding", "relying"}, what="both asleep")
        for round_ in range(3):
            await run_sql(database, f"INSERT INTO todos (title) VALUES ('r{round_}')")
            for client in (a, b):
                assert titles([await client.next(timeout=3)]) == [f"r{round_}"]
            await until(  # both go back to sleep in between
                lambda: {one.listener.mode, two.listener.mode} == {"holding", "relying"}, what="both asleep again"
            )
        # The holder's connection dies without a word: the other finds the lock free
        # within RELIANT_CHECK and takes over, so writers go on waking someone.
        holder = one if one.listener.mode == "holding" else two
        await run_sql(
            database,
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND objid = %s AND mode = 'ExclusiveLock'",
            (WAKE_LOCK,),
        )
        await asyncio.sleep(0.05)
        await run_sql(database, "INSERT INTO todos (title) VALUES ('after the holder died')")
        for client in (a, b):
            assert titles([await client.next(timeout=5)]) == ["after the holder died"]
        assert holder.metrics.listener_reconnects == 1
        await a.close()
        await b.close()


async def test_notify_always_and_off_override_the_wake_lock(database: str) -> None:
    async with start_gateway(database, listener_check=60.0, poll_interval=0.2) as gw, aiopg.connect(database) as spy:
        client = await gw.subscribe("todos")
        async with spy.cursor() as cur:
            await cur.execute("LISTEN gateway_journal")
        for mode, expected in (("always", 5), ("off", 0)):
            await gw.listener_asleep()
            await _writer_notifications(spy, database)
            async with aiopg.connect(database) as conn, conn.cursor() as cur:
                await cur.execute(f"SET gateway.notify = {mode}")
                for i in range(5):  # always: each notifies though the listener polls after the first
                    await cur.execute("INSERT INTO todos (title) VALUES (%s)", (f"{mode}{i}",))
            assert titles(await client.take(5, timeout=5)) == [f"{mode}{i}" for i in range(5)]
            assert len(await _writer_notifications(spy, database)) == expected
        await client.close()


async def test_listener_that_never_polls_takes_the_lock_when_its_holder_lets_go(database: str) -> None:
    async with start_gateway(database, listener_check=60.0) as polling:
        await polling.listener_asleep()
        async with start_gateway(database, listener_check=60.0, busy_poll_interval=0) as sleepy:
            client = await sleepy.subscribe("todos")
            await until(lambda: sleepy.listener.mode == "relying", what="it sleeps on the other's lock")
            # The first commit wakes both; the polling gateway lets go of the lock, and
            # the one that never polls must take it over at once, so that the second
            # commit (which finds the lock free or held by it) still reaches it promptly.
            await run_sql(database, "INSERT INTO todos (title) VALUES ('first')")
            assert titles([await client.next(timeout=3)]) == ["first"]
            await asyncio.sleep(0.05)
            await run_sql(database, "INSERT INTO todos (title) VALUES ('second')")
            assert titles([await client.next(timeout=0.5)]) == ["second"]
            await client.close()


async def test_publish_wakes_a_sleeping_listener_like_a_captured_change(database: str) -> None:
    async with start_gateway(database, listener_check=60.0) as gw, aiopg.connect(database) as spy:
        client = await gw.subscribe("chat/room1")
        async with spy.cursor() as cur:
            await cur.execute("LISTEN gateway_journal")
        await gw.listener_asleep()
        await run_sql(database, "SELECT gateway.publish('chat/room1', '{\"n\": 1}')")
        assert (await client.next(timeout=3)).json["row"] == {"n": 1}
        assert len(await _writer_notifications(spy, database)) == 1
        await client.close()


class PageSink:
    """A live subscriber's connection: every bytes object the hub writes to it, in order."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def __call__(self, data: bytes) -> int:
        self.writes.append(data)
        return 0


async def test_a_resumed_subscriber_shares_page_bytes_once_the_listener_passed_its_replay(database: str) -> None:
    """A resumed stream checks live events against its replay's snapshot only until the
    listener's reads have moved past that snapshot (the listener tells the hub where it
    is after each read). From then on it takes each page's bytes as every other
    subscriber of its topic does: one bytes object for all, joined once."""
    pool = await create_pool(database, 2)
    await apply_schema(pool, ("todos",), demo=False)
    pool.close()
    await pool.wait_closed()
    hub = Hub(1 << 30)
    listener = Listener(database, hub, check_interval=0.2)
    task = asyncio.create_task(listener.run())
    await listener.wait_started()
    fresh, resumed = PageSink(), PageSink()
    hub.attach(hub.subscribe(["todos"], resuming=False), fresh)
    sub = hub.subscribe(["todos"], resuming=True)
    hub.attach(sub, resumed)
    [(replayed,)] = await run_sql(database, "SELECT pg_current_snapshot()::text")
    sub.go_live(Snapshot.parse(str(replayed)))  # the replay (of nothing) ends here

    await run_sql(database, "INSERT INTO todos (title) VALUES ('first')")  # committed after the replay
    await until(lambda: len(resumed.writes) == 1, what="the first row reached the resumed subscriber")
    await run_sql(database, "INSERT INTO todos (title) VALUES ('a'), ('b')")  # one page of two events
    await until(lambda: len(resumed.writes) == 2 and len(fresh.writes) == 2, what="the page reached both")
    await listener.stop(task, within=5)
    assert resumed.writes == fresh.writes
    assert resumed.writes[1] is fresh.writes[1], "the resumed subscriber still filters the listener's pages"


async def test_a_wait_that_times_out_loses_no_notification() -> None:
    # aiopg's queue hands an item to a task of its own: cancelling the wait in the
    # iteration where that task took it lost it (a quarter of them at 1 ms timeouts,
    # NOTIFY gateway_reload among them). Notifications arrive while short waits time out.
    from aiopg.utils import ClosableQueue

    from gateway.listener import NotificationWaiter

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[int] = asyncio.Queue()
    waiter = NotificationWaiter(ClosableQueue(queue, loop))
    sent = 1000
    for i in range(sent):
        loop.call_later(i * 0.0003, queue.put_nowait, i)
    received: list[int] = []
    deadline = loop.time() + 10  # the last one is put at 0.3 s; the old wait lost about 1 in 6
    while len(received) < sent and loop.time() < deadline:
        first = await waiter.next(0.0002)
        if first is not None:
            received += [first, *waiter.drain()]
    assert received == list(range(sent))
    assert await waiter.next(0) is None
    waiter.close()
