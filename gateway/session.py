"""Is the listener's connection a stable Postgres session? Checked before it LISTENs.

LISTEN and the wake lock (a session-level advisory lock) belong to one backend.
Through a transaction-pooling PgBouncer, every transaction may run on a different
server connection: notifications go to whichever client holds that server at the
time (PgBouncer drops them), and a lock taken there stays behind on an idle pooled
server, after the gateway has gone, for whoever gets it next. So the listener
proves its session first and refuses to start on one that is not stable.

Theory of operation. A stable session has one backend for its whole life, and no
other connection is ever given it. The check asks ``pg_backend_pid()`` on the
listener's connection, then:

* if that equals the pid Postgres announced when the connection started (libpq's
  ``PQbackendPID``), the client talks to the backend that started the session
  itself, with no pooler owning the session: direct, done (no extra connection,
  which matters when ``max_connections`` is nearly used up). PgBouncer, in any
  pool mode, announces a random key of its own, so it never takes this path;
* otherwise a second connection through the same DSN opens a transaction (which
  pins a server to it in transaction pooling) and asks its pid, and the listener
  asks again. In a real session (direct or session pooling) the second connection
  can never be given the listener's backend and the listener's pid never changes.
  In transaction pooling an idle lone client's server is the most recently released
  one, and PgBouncer hands exactly that one to the next client (LIFO, its default):
  the probe gets the listener's backend. With round-robin servers, or other clients
  taking it meanwhile, the listener's pid changes instead. Three rounds of: the
  probe's transaction, the listener's pid twice, the probe's rollback, the
  listener's pid once more (so no rotation of servers keeps the listener on one).

The check only ever runs ``SELECT pg_backend_pid()``: nothing is left on a pooled
server whatever it finds. A pooler that still fools it (it would have to keep
giving the listener the same server while never giving it to a concurrent client)
is caught later: every statement of the listener that takes or lets go of the wake
lock states the pid it expects, and the quiet checks ask it too (listener.py); the
lock is only ever taken on the backend this check verified, and when a statement
lands on another one the listener stops for good and ends that old backend
(:data:`RELEASE_OLD_SESSION`), which releases its lock and its LISTEN.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiopg

from .db import DatabaseError, redact

BACKEND_PID = "SELECT pg_backend_pid()"
_PROBE = "BEGIN; SELECT pg_backend_pid()"
ROUNDS = 3

# Release what the listener's old backend holds, from whichever backend of the
# pooler this runs on (both statements on the same one: one implicit transaction):
# "gone" (it has ended), "here" (this is it: its LISTEN and advisory locks are let
# go), "ending" (it was idle: told to end, which releases both) or "busy" (another
# client of the pooler is in a transaction on it: try again). UNLISTEN on another
# server of a transaction pool drops nothing anyone can rely on.
RELEASE_OLD_SESSION = """UNLISTEN *;
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %(pid)s) THEN 'gone'
            WHEN pg_backend_pid() = %(pid)s THEN 'here' || pg_advisory_unlock_all()::text
            WHEN coalesce((SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                            WHERE pid = %(pid)s AND state = 'idle'), false) THEN 'ending'
            ELSE 'busy' END"""


class UnstableSession(DatabaseError):
    """The listener's connection does not keep one backend; the message says what to do."""

    def __init__(self, dsn: str, detail: str) -> None:
        super().__init__(
            f"the listener's connection ({redact(dsn)}) is not a stable Postgres session ({detail}): "
            "a transaction pooler such as PgBouncer in pool_mode=transaction is in between; "
            "point GATEWAY_LISTEN_URL at Postgres directly, or at a pooler in session mode"
        )


async def verify_session(conn: aiopg.Connection, dsn: str) -> int:
    """The backend pid of ``conn``'s session; UnstableSession if it is not stable.

    ``dsn`` is the one ``conn`` was opened with: the probe goes the same way.
    """
    async with conn.cursor() as cur:
        pid = await _pid(cur)
        if await conn.get_backend_pid() == pid:
            return pid
        probe = await aiopg.connect(dsn, timeout=10.0, application_name="pg-sse-gateway session check")
        try:
            async with probe.cursor() as probe_cur:
                for _ in range(ROUNDS):
                    await probe_cur.execute(_PROBE)
                    (other,) = await probe_cur.fetchone()
                    seen = [await _pid(cur), await _pid(cur)]
                    await probe_cur.execute("ROLLBACK")
                    seen.append(await _pid(cur))
                    if other == pid:
                        raise UnstableSession(dsn, f"another connection was given its backend {pid}")
                    for again in seen:
                        if again != pid:
                            raise UnstableSession(
                                dsn, f"its backend changed from {pid} to {again} between transactions"
                            )
        finally:
            probe.close()
    return pid


async def _pid(cur: Any) -> int:
    await cur.execute(BACKEND_PID)
    (pid,) = await cur.fetchone()
    return int(pid)


async def release_old_session(cur: Any, pid: int, within: float) -> bool:
    """Release what backend ``pid`` holds for the listener (see RELEASE_OLD_SESSION),
    trying for up to ``within`` seconds; whether it is released."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        await cur.execute(RELEASE_OLD_SESSION, {"pid": pid})
        (state,) = await cur.fetchone()
        if state in ("gone", "here"):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.1)
