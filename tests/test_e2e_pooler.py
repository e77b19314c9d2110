"""The gateway behind a real PgBouncer: refused in transaction pooling, unless the
listener has its own direct DSN (GATEWAY_LISTEN_URL); accepted in session pooling.
No advisory lock is ever left behind on a server connection."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import psycopg2
import pytest

from gateway.db import apply_schema, create_pool
from gateway.listener import WAKE_LOCK

from .conftest import run_sql, start_gateway
from .pgbouncer import BINARY, MISSING, hold_servers, pgbouncer
from .waiting import until

pytestmark = pytest.mark.skipif(BINARY is None, reason=MISSING)

ADVISORY_LOCKS = """
SELECT pid, classid::bigint << 32 | objid::bigint FROM pg_locks
 WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


async def advisory_locks(database: str) -> list[tuple[object, ...]]:
    """Every advisory lock held on ``database``, asked of Postgres directly: (pid, key)."""
    return await run_sql(database, ADVISORY_LOCKS)


async def serve_until_exit(env: dict[str, str], within: float = 30.0) -> tuple[int, str, str]:
    """Run ``pg-sse-gateway serve`` until it exits: (exit code, stderr, the line that
    says where it listens, if it did). One that starts listening is stopped with SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        env={**os.environ, "GATEWAY_PORT": "0", "GATEWAY_LOG_LEVEL": "warning", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    listened = ""
    async with asyncio.timeout(within):
        while line := await proc.stdout.readline():
            if b"listening on" in line:
                listened = line.decode()
                proc.send_signal(signal.SIGTERM)
        code = await proc.wait()
    return code, (await proc.stderr.read()).decode(errors="replace"), listened


@pytest.mark.parametrize("round_robin", [False, True], ids=["lifo", "round-robin"])
async def test_serve_through_a_transaction_pooler_refuses_with_one_line_and_leaves_no_lock(
    server_dsn: str, database: str, round_robin: bool
) -> None:
    # ignore_options: as configured for gateways that sent options at start-up, which
    # then started and ran behind the pooler, late and leaving the wake lock behind.
    with pgbouncer(server_dsn, "transaction", round_robin=round_robin, ignore_options=True) as bouncer:
        pooled = bouncer.dsn(database)
        if round_robin:
            hold_servers(pooled, 3)  # idle servers to rotate through
        code, stderr, listened = await serve_until_exit({"DATABASE_URL": pooled})
        locks = await advisory_locks(database)
    assert not listened, f"the gateway started behind a transaction pooler; its log:\n{stderr}"
    assert code == 1
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "not a stable Postgres session" in stderr and "GATEWAY_LISTEN_URL" in stderr and "session" in stderr
    assert "Traceback" not in stderr
    assert locks == []


async def test_serve_through_a_transaction_pooler_with_a_direct_listener_url(server_dsn: str, database: str) -> None:
    listen_url = f"{database} password=listen-secret"  # trust auth: accepted, and never to be shown
    with pgbouncer(server_dsn, "transaction") as bouncer:
        env = {"DATABASE_URL": bouncer.dsn(database), "GATEWAY_LISTEN_URL": listen_url}
        code, stderr, listened = await serve_until_exit(env)
    assert listened and code == 0, stderr
    assert "listener: dbname=" in listened and "listen-secret" not in listened + stderr


async def test_http_pool_through_a_transaction_pooler_with_a_direct_listener(server_dsn: str, database: str) -> None:
    with pgbouncer(server_dsn, "transaction", round_robin=True) as bouncer:
        pooled = bouncer.dsn(database)
        hold_servers(pooled, 3)  # consecutive statements of one client land on different servers
        async with start_gateway(pooled, listen_url=database, listener_check=30.0) as gw:
            await gw.listener_asleep()
            client = await gw.subscribe("todos")
            events = []
            for title in ("one", "two", "three"):
                async with gw.http.post(f"{gw.url}/api/todos", json={"title": title}) as resp:
                    assert resp.status == 201, await resp.text()
                # promptly: woken by a notification, not by the 30 s check
                (event,) = await client.take(1, timeout=3.0)
                assert event.json["row"]["title"] == title
                events.append(event)
            # a resume replays in one transaction of the pool: through the pooler too
            resumed = await gw.subscribe("todos", headers={"Last-Event-ID": events[0].id})
            assert [e.id for e in await resumed.take(2)] == [e.id for e in events[1:]]
            await resumed.close()
            async with gw.http.patch(
                f"{gw.url}/api/todos?id=eq.{event.json['row']['id']}", json={"done": True}
            ) as resp:
                assert resp.status == 204, await resp.text()
            (event,) = await client.take(1, timeout=1.0)
            assert event.json["op"] == "update"
            await gw.listener_asleep()
            (listener_backend,) = await run_sql(
                database, "SELECT pid FROM pg_stat_activity WHERE application_name = 'pg-sse-gateway listener'"
            )
            assert await advisory_locks(database) == [(listener_backend[0], WAKE_LOCK)]
            await client.close()
        assert await advisory_locks(database) == []  # none left on a pooled server either


async def test_session_pooling_is_accepted(server_dsn: str, database: str) -> None:
    with pgbouncer(server_dsn, "session") as bouncer:
        pooled = bouncer.dsn(database)
        async with start_gateway(pooled, listener_check=30.0) as gw:
            await gw.listener_asleep()
            assert gw.listener.connected
            client = await gw.subscribe("todos")
            async with gw.http.post(f"{gw.url}/api/todos", json={"title": "through pgbouncer"}) as resp:
                assert resp.status == 201, await resp.text()
            (event,) = await client.take(1, timeout=3.0)
            assert event.json["row"]["title"] == "through pgbouncer"
            await client.close()
        assert await advisory_locks(database) == []  # PgBouncer's DISCARD ALL on release


async def test_statement_pooling_is_refused_with_one_line(server_dsn: str, database: str) -> None:
    """The schema's one transaction is refused by statement pooling: that was a traceback."""
    with pgbouncer(server_dsn, "statement") as bouncer:
        code, stderr, listened = await serve_until_exit({"DATABASE_URL": bouncer.dsn(database)})
    assert not listened and code == 1
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert "cannot apply the gateway's schema" in stderr and "statement pooling" in stderr, stderr


async def test_schema_applied_through_a_transaction_pooler_leaves_no_lock(server_dsn: str, database: str) -> None:
    """With N idle servers in rotation, the k-th statement of a lone client runs on the
    server of the first iff N divides k: a session lock taken by one statement and
    released by another stays behind for some N in 2..5 whatever k (below 60) is."""
    with pgbouncer(server_dsn, "transaction", round_robin=True) as bouncer:
        pooled = bouncer.dsn(database)
        for servers in (2, 3, 4, 5):
            hold_servers(pooled, servers)
            pool = await create_pool(pooled, 1)
            try:
                await apply_schema(pool, ("todos",), demo=True)
            finally:
                pool.close()
                await pool.wait_closed()
            assert await advisory_locks(database) == [], f"with {servers} servers"


async def test_a_session_that_turns_unstable_stops_the_listener_and_releases_its_backend(
    server_dsn: str, database: str
) -> None:
    with pgbouncer(server_dsn, "session") as bouncer:
        pooled = bouncer.dsn(database)
        async with start_gateway(database, listen_url=pooled, listener_check=0.3) as gw:
            await gw.listener_asleep()
            bouncer.reload("transaction")  # as an operator might; the listener's server is released from now on
            await gw.sql("INSERT INTO todos (title) VALUES ('wake up')")
            await gw.caught_up()
            await gw.listener_asleep()  # the wake lock taken again, on a server that is pooled now
            ((old_backend, _),) = await advisory_locks(database)
            pins = []  # clients of the pooler, each in a transaction, until one has the listener's server
            try:
                for _ in range(10):
                    pins.append(psycopg2.connect(pooled))
                    with pins[-1].cursor() as cur:
                        cur.execute("SELECT pg_backend_pid()")
                        if cur.fetchone() == (old_backend,):
                            break
                else:
                    raise AssertionError("PgBouncer never gave another client the listener's server")
                # the listener's next check lands elsewhere
                await until(lambda: not gw.listener.connected, timeout=10, what="the listener noticed")
            finally:
                for pin in pins:  # the old server is idle again: only the listener may release it
                    pin.rollback()  # (closed mid-transaction, PgBouncer would drop that server itself)
            async with asyncio.timeout(10):
                failure = await gw.listener.wait_failed()
            for pin in pins:
                pin.close()
            assert "not a stable Postgres session" in str(failure) and "GATEWAY_LISTEN_URL" in str(failure)
            assert f"changed from {old_backend}" in str(failure)
            assert await advisory_locks(database) == []
            async with gw.http.get(f"{gw.url}/readyz") as resp:
                assert resp.status == 503
