"""The listener: the one LISTEN connection of a gateway process.

A notification only says "something committed"; what committed is read from the
journal with the snapshot-delta question of :mod:`gateway.journal`. So a lost
notification, a burst folded into one wake-up, or a connection that was down for
a minute all end the same way: the next read returns exactly what the hub has not
seen, in id order, nothing twice.

The connection is dedicated (a pooled one would keep its LISTEN after release),
has TCP keepalives so a silent network drop is noticed, and is checked with the
same journal read whenever it has been quiet for ``check_interval`` seconds. On
any error it is dropped and reopened with capped exponential backoff; the drop
and the recovery are logged once each.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiopg
import psycopg2

from .db import describe_connect_error
from .hub import Hub
from .journal import CURRENT_POSITION, Snapshot, begin_read, end_read, newly_visible

log = logging.getLogger(__name__)

CHANNEL = "gateway_journal"

# libpq options for the LISTEN connection: named in pg_stat_activity, and TCP
# keepalives so a dead peer is noticed within ~30 s (Unix sockets ignore them).
_CONNECT_OPTIONS = {
    "application_name": "pg-sse-gateway listener",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


class Listener:
    """Feeds the hub from Postgres; ``connected`` says whether it is live right now."""

    def __init__(
        self, dsn: str, hub: Hub, check_interval: float, poll_interval: float = 0.0, query_timeout: float = 30.0
    ) -> None:
        self._dsn = dsn
        self._hub = hub
        # Read the journal after this much silence: a health check, and the delivery
        # path for writers that set gateway.notify = off.
        self._check_interval = min(check_interval, poll_interval) if poll_interval > 0 else check_interval
        self._query_timeout = query_timeout
        self._snapshot: Snapshot | None = None
        self.connected = False
        self.reconnects = 0
        self._started = asyncio.Event()
        self._down = False  # a drop was logged and no recovery yet
        self._stopping = False
        self._conn: aiopg.Connection | None = None
        # A read that broke off part-way: the snapshot it was reading up to and the last
        # id it handed the hub. The next read finishes exactly that slice first, so a
        # dropped connection never makes live subscribers see an event twice.
        self._unfinished: tuple[Snapshot, int] | None = None

    async def wait_started(self) -> None:
        """Wait until the first connection has set the hub's position."""
        await self._started.wait()

    async def stop(self, task: asyncio.Task[None], within: float) -> None:
        """End ``task`` (running run()) for good, within ``within`` seconds.

        Cancelling once is not enough on Python 3.11: asyncio.wait_for (used inside
        aiopg) can swallow a cancel that lands as its inner future completes. So the
        flag stops the loop, closing the connection fails any pending operation, and
        the cancel is repeated until the task is done or the time is up.
        """
        self._stopping = True
        deadline = asyncio.get_running_loop().time() + within
        while not task.done() and asyncio.get_running_loop().time() < deadline:
            if self._conn is not None:
                self._conn.close()
            task.cancel()
            await asyncio.wait({task}, timeout=0.2)

    async def run(self) -> None:
        """Run until stopped, reconnecting as often as needed."""
        backoff = 0.1
        while not self._stopping:
            try:
                await self._session()
            except (psycopg2.Error, OSError, TimeoutError, RuntimeError) as exc:
                if self._stopping:
                    return
                if self.connected:
                    self.reconnects += 1
                    log.warning("listener lost its database connection (%s); reconnecting", _first_line(exc))
                    backoff = 0.1
                elif not self._down:
                    log.warning("listener cannot connect: %s; retrying", describe_connect_error(self._dsn, exc))
                self.connected = False
                self._down = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _session(self) -> None:
        """One connection's life: LISTEN, catch up, then follow notifications."""
        conn = await aiopg.connect(self._dsn, timeout=10.0, **_CONNECT_OPTIONS)
        self._conn = conn
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"LISTEN {CHANNEL}")
                if self._snapshot is None:
                    await cur.execute(CURRENT_POSITION)
                    snap_text, position = await cur.fetchone()
                    self._snapshot = Snapshot.parse(snap_text)
                    self._hub.position = int(position)
                    self._started.set()
                else:
                    await self._read(cur)
                if self._down:
                    log.info("listener connected and caught up (position %d)", self._hub.position)
                    self._down = False
                self.connected = True
                notifies = conn.notifies
                while not self._stopping:
                    try:
                        async with asyncio.timeout(self._check_interval):
                            await notifies.get()
                    except TimeoutError:
                        pass  # quiet for a while: the read below doubles as a health check
                    while not notifies.empty():
                        await notifies.get()
                    await self._read(cur)
        finally:
            self._conn = None
            conn.close()

    async def _read(self, cur: Any) -> None:
        """Hand the hub everything committed since the last read, page by page."""
        assert self._snapshot is not None
        async with asyncio.timeout(self._query_timeout):
            snap = await begin_read(cur)
            if self._unfinished is not None:
                upto, after = self._unfinished
                await self._deliver(cur, self._snapshot, upto, after)
                self._snapshot = upto
            self._unfinished = (snap, 0)
            await self._deliver(cur, self._snapshot, snap, 0)
            await end_read(cur)
        self._snapshot = snap
        self._unfinished = None
        self._hub.advance(snap)

    async def _deliver(self, cur: Any, prev: Snapshot, upto: Snapshot, after: int) -> None:
        async for page in newly_visible(cur, prev, upto, after):
            self._hub.publish(page)
            self._unfinished = (upto, page[-1].id)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
