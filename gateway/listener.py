"""The listener: the one LISTEN connection of a gateway process.

A notification only says "something committed"; what committed is read from the
journal with the snapshot-delta question of :mod:`gateway.journal`. So a lost
notification, a burst folded into one wake-up, or a connection that was down for
a minute all end the same way: the next read returns exactly what the hub has not
seen, in id order, nothing twice.

Theory of operation: asleep or polling. Writers notify only while a listener sleeps
holding the wake lock; while changes keep coming the listener polls the journal
instead, and it goes back to sleep only once no writer that skipped NOTIFY is in
flight. That protocol (polling, backing off, holding the lock, relying on another
gateway's lock, settling) is :mod:`gateway.wake`, a state machine without I/O. This
module is its driver: :meth:`Listener._follow` does each action the machine asks for
(wait for a notification, check the backend, let go of the lock, read, try to take
the lock) on the LISTEN connection and reports how it ended.

A wake-up that never comes costs latency, never an event: every sleeping listener
still reads after ``check_interval`` (a sleeper that relies on another listener's
lock after at most RELIANT_CHECK, in case that holder's connection died).

The connection is dedicated (a pooled one would keep its LISTEN after release)
and has its own DSN (GATEWAY_LISTEN_URL, by default DATABASE_URL), so the HTTP pool
may go through a transaction pooler while the listener connects directly. It must
be a stable session: LISTEN and the wake lock belong to one backend. Before it
LISTENs or takes the lock, :func:`gateway.session.verify_session` proves that: a
second connection through the same DSN, inside a transaction, is never given this
backend, and the backend does not change between transactions. (Asking the pid
alone is not enough: PgBouncer gives a lone idle client the server it has just
released, every time; but it gives that same server to the next client too.) An
unstable session stops the gateway with a message that says what to do. Afterwards every statement
that takes or lets go of the lock, and every quiet check while holding it, states
the backend it expects: the lock is only ever taken on the verified backend, and a
session that turns out unstable later ends the listener for good, once it has
released that backend's lock and LISTEN.

The same connection LISTENs ``gateway_reload`` too, and only hands such a
notification to the ``on_reload`` callback it was built with (and calls it once after
each reconnect, since a NOTIFY sent while it was down is lost): what a reload does is
:mod:`gateway.reload`'s business, never the listener's.

The connection has TCP keepalives so a silent network drop is noticed, and is
checked with the same journal read whenever it has been quiet for
``check_interval`` seconds. On any error it is dropped and reopened with capped
exponential backoff; the drop and the recovery are logged once each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

import aiopg
import psycopg2

from .counters import NO_COUNTERS, Counters
from .db import describe_connect_error, first_line
from .hub import Hub
from .journal import CURRENT_POSITION, Snapshot, begin_read, end_read, newly_visible
from .locks import WAKE_LOCK as WAKE_LOCK  # named here too: tests take it from the listener
from .session import BACKEND_PID, UnstableSession, release_old_session, verify_session
from .wake import BUSY_POLL_MAX as BUSY_POLL_MAX  # likewise
from .wake import Action, Event, Mode, WakeProtocol

log = logging.getLogger(__name__)

CHANNEL = "gateway_journal"
# ``NOTIFY gateway_reload`` (PostgREST's ``NOTIFY pgrst``): the schema changed; the
# listener only passes it on to the ``on_reload`` it was built with (gateway.reload).
RELOAD_CHANNEL = "gateway_reload"

# Try to go to sleep: "held" (ours now), "busy" (writers in flight that skipped
# NOTIFY: keep polling) or "other" (another listener's: writers notify meanwhile),
# the values of gateway.wake.Event. "moved": this transaction is not on the session's
# backend (pid): take nothing.
TRY_SLEEP = f"""
SELECT CASE WHEN pg_backend_pid() <> %(pid)s THEN 'moved'
            WHEN pg_try_advisory_lock({WAKE_LOCK}) THEN 'held'
            WHEN pg_try_advisory_lock_shared({WAKE_LOCK}) AND pg_advisory_unlock_shared({WAKE_LOCK}) THEN 'busy'
            ELSE 'other' END, pg_backend_pid()"""
# Let go of the lock, then wake every other listener that sleeps relying on it.
WAKE_UP = f"""
SELECT CASE WHEN pg_backend_pid() <> %(pid)s THEN 'moved' ELSE pg_advisory_unlock({WAKE_LOCK})::text END,
       pg_backend_pid(), pg_notify('{CHANNEL}', 'wake')"""

# libpq options for the LISTEN connection: named in pg_stat_activity, and TCP
# keepalives on both ends so a dead peer is noticed within ~30 s (Unix sockets
# ignore them).
# The server's side too: a backend whose client vanished releases the wake lock
# within ~30 s instead of after the server default's two hours. Set once the session
# is verified, not as a startup option: PgBouncer refuses startup options.
_SERVER_KEEPALIVES = "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"
# How long a listener whose session moved tries to release its old backend.
RELEASE_WITHIN = 5.0


class Notifications(Protocol):
    """What the listener uses of aiopg's ``conn.notifies`` (a ClosableQueue, not an asyncio.Queue)."""

    def empty(self) -> bool: ...

    def get_nowait(self) -> Any: ...

    async def get(self) -> Any: ...


_CONNECT_OPTIONS: dict[str, Any] = {
    "application_name": "pg-sse-gateway listener",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


class Listener:
    """Feeds the hub from Postgres; ``connected`` says whether it is live right now."""

    def __init__(
        self,
        dsn: str,
        hub: Hub,
        check_interval: float,
        poll_interval: float = 0.0,
        busy_poll: float = 0.01,
        query_timeout: float = 30.0,
        counters: Counters = NO_COUNTERS,
        on_reload: Callable[[], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._on_reload = on_reload
        self._hub = hub
        self._counters = counters
        self._wake = WakeProtocol(check_interval, poll_interval, busy_poll)
        self._query_timeout = query_timeout
        self._snapshot: Snapshot | None = None
        self.connected = False
        self._reported_mode: Mode | None = None
        self._started = asyncio.Event()
        self._down = False  # a drop was logged and no recovery yet
        self._stopping = False
        self._task: asyncio.Task[None] | None = None  # start()'s, running run()
        self._conn: aiopg.Connection | None = None
        self._pid = 0  # the session's backend, as verified when it connected
        self.failure: UnstableSession | None = None  # why it stopped for good
        self._failed = asyncio.Event()
        # A read that broke off part-way: the snapshot it was reading up to and the last
        # id it handed the hub. The next read finishes exactly that slice first, so a
        # dropped connection never makes live subscribers see an event twice.
        self._unfinished: tuple[Snapshot, int] | None = None

    @property
    def mode(self) -> Mode:
        """Polling, or asleep holding the wake lock, or asleep relying on another's."""
        return self._wake.mode

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        self._counters.listener_connected(connected)

    def _wait_time(self) -> float:
        """How long the listener waits for a notification next (tests watch the back-off)."""
        return self._wake.wait_time

    async def wait_started(self) -> None:
        """Wait until the first connection has set the hub's position; raises the
        UnstableSession that stopped the listener if it never got there."""
        await self._started.wait()
        if self.failure is not None:
            raise self.failure

    async def wait_failed(self) -> UnstableSession:
        """Wait until the listener stops for good (its session is not stable); why."""
        await self._failed.wait()
        assert self.failure is not None
        return self.failure

    def start(self) -> None:
        """Run the listener in a task of its own, until stop()."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="gateway-listener")

    async def stop(self, task: asyncio.Task[None] | None = None, within: float = 5.0) -> None:
        """End the task running run() for good, within ``within`` seconds: start()'s,
        or ``task`` for a caller that runs run() in a task of its own.

        Cancelling once is not enough on Python 3.11: asyncio.wait_for (used inside
        aiopg) can swallow a cancel that lands as its inner future completes. So the
        flag stops the loop, closing the connection fails any pending operation, and
        the cancel is repeated until the task is done or the time is up.
        """
        self._stopping = True
        task = task or self._task
        if task is None:
            return
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
            except UnstableSession as exc:
                if self._started.is_set():  # at start-up, the caller says it (one line)
                    log.error("listener stopped: %s", exc)
                self.failure = exc
                self._set_connected(False)
                self._started.set()
                self._failed.set()
                return
            except (psycopg2.Error, OSError, TimeoutError, RuntimeError) as exc:
                if self._stopping:
                    return
                if self.connected:
                    self._counters.listener_reconnected()
                    log.warning("listener lost its database connection (%s); reconnecting", first_line(exc))
                    backoff = 0.1
                elif not self._down:
                    log.warning("listener cannot connect: %s; retrying", describe_connect_error(self._dsn, exc))
                self._set_connected(False)
                self._down = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _session(self) -> None:
        """One connection's life: LISTEN, catch up, then follow notifications."""
        conn = await aiopg.connect(self._dsn, timeout=10.0, **_CONNECT_OPTIONS)
        self._conn = conn
        try:
            self._pid = await verify_session(conn, self._dsn)  # before anything stays on the backend
            async with conn.cursor() as cur:
                await cur.execute(_SERVER_KEEPALIVES)
                await cur.execute(f"LISTEN {CHANNEL}; LISTEN {RELOAD_CHANNEL}")
                if self._snapshot is None:
                    await cur.execute(CURRENT_POSITION)
                    snap_text, position = await cur.fetchone()
                    self._snapshot = Snapshot.parse(snap_text)
                    self._hub.start_at(int(position))
                    self._started.set()
                else:
                    await self._read(cur)
                    self._reload()  # a NOTIFY gateway_reload sent while disconnected was lost
                if self._down:
                    log.info("listener connected and caught up (position %d)", self._hub.position)
                    self._down = False
                self._set_connected(True)
                await self._follow(cur, conn.notifies)
        finally:
            self._conn = None
            conn.close()

    async def _follow(self, cur: Any, notifies: Notifications) -> None:
        """Drive the wake protocol (gateway.wake): do each action it asks for, say how it ended."""
        waiter = NotificationWaiter(notifies)
        try:
            await self._drive(cur, waiter)
        finally:
            waiter.close()

    async def _drive(self, cur: Any, waiter: NotificationWaiter) -> None:
        wake = self._wake
        action = wake.connected()  # a new session holds no lock: it polls
        while not self._stopping:
            if wake.mode is not self._reported_mode:
                self._reported_mode = wake.mode
                self._counters.listener_mode(wake.mode)
            if action is Action.WAIT:
                first = await waiter.next(wake.wait_time)
                if first is not None:
                    rest = waiter.drain()  # one read answers them all
                    if any(_channel(n) == RELOAD_CHANNEL for n in (first, *rest)):
                        self._reload()
                action = wake.handle(Event.QUIET if first is None else Event.NOTIFIED)
            elif action is Action.CHECK_BACKEND:
                await self._check_backend(cur)
                action = wake.handle(Event.CHECKED)
            elif action is Action.LET_GO:
                await cur.execute(WAKE_UP, {"pid": self._pid})
                outcome, backend, _ = await cur.fetchone()
                if outcome == "moved":
                    await self._moved(cur, backend)
                action = wake.handle(Event.LET_GO)
            elif action is Action.READ:
                found = await self._read(cur)
                action = wake.handle(Event.FOUND if found else Event.EMPTY)
            else:  # Action.TRY_SLEEP: go to sleep if no writer that skipped NOTIFY is in flight
                await cur.execute(TRY_SLEEP, {"pid": self._pid})
                outcome, backend = await cur.fetchone()
                if outcome == "moved":
                    await self._moved(cur, backend)
                action = wake.handle(Event(outcome))

    def _reload(self) -> None:
        """Pass a reload request on; the callback only schedules it, so it never holds up delivery."""
        if self._on_reload is not None:
            self._on_reload()

    async def _check_backend(self, cur: Any) -> None:
        """A quiet check while holding the lock: is this still the session's backend?"""
        await cur.execute(BACKEND_PID)
        (backend,) = await cur.fetchone()
        if backend != self._pid:
            await self._moved(cur, backend)

    async def _moved(self, cur: Any, backend: int) -> NoReturn:
        """The session turned out unstable: release the old backend's lock and LISTEN, stop."""
        self._set_connected(False)
        try:
            released = await release_old_session(cur, self._pid, RELEASE_WITHIN)
        except (psycopg2.Error, OSError, TimeoutError, RuntimeError):
            released = False
        if not released:
            log.error(
                "listener: backend %d may hold the wake lock until that server connection closes "
                "(SELECT pg_terminate_backend(%d) ends it)",
                self._pid,
                self._pid,
            )
        raise UnstableSession(self._dsn, f"its backend changed from {self._pid} to {backend} between transactions")

    async def _read(self, cur: Any) -> int:
        """Hand the hub everything committed since the last read, page by page; how many events."""
        assert self._snapshot is not None
        async with asyncio.timeout(self._query_timeout):
            snap = await begin_read(cur)
            if snap == self._snapshot and self._unfinished is None:
                await end_read(cur)  # no transaction ended anywhere since the last read
                return 0
            delivered = 0
            if self._unfinished is not None:
                upto, after = self._unfinished
                delivered += await self._deliver(cur, self._snapshot, upto, after)
                self._snapshot = upto
            self._unfinished = (snap, 0)
            delivered += await self._deliver(cur, self._snapshot, snap, 0)
            await end_read(cur)
        self._snapshot = snap
        self._unfinished = None
        self._hub.advance(snap)
        return delivered

    async def _deliver(self, cur: Any, prev: Snapshot, upto: Snapshot, after: int) -> int:
        delivered = 0
        async for page in newly_visible(cur, prev, upto, after):
            self._hub.publish(page)
            self._unfinished = (upto, page[-1].id)
            delivered += len(page)
        return delivered


class NotificationWaiter:
    """Waits for the LISTEN connection's next notification, and never loses one.

    aiopg's queue hands an item to a task of its own; a wait cancelled (by a timeout)
    in the loop iteration where that task took the item loses it: at 1 ms timeouts a
    quarter of the notifications were lost, a NOTIFY gateway_reload among them. So a
    timeout never cancels the get: it stays pending into the next wait, and only
    :meth:`close` (the session's end) cancels it.
    """

    def __init__(self, notifies: Notifications) -> None:
        self._notifies = notifies
        self._get: asyncio.Future[Any] | None = None

    async def next(self, seconds: float) -> Any | None:
        """The next notification within ``seconds``, or None; raises as the queue does once closed."""
        if self._get is None:
            if not self._notifies.empty():
                return self._notifies.get_nowait()
            self._get = asyncio.ensure_future(self._notifies.get())
        done, _ = await asyncio.wait((self._get,), timeout=seconds)
        if not done:
            return None
        get, self._get = self._get, None
        return get.result()

    def drain(self) -> list[Any]:
        """Every notification already queued (after :meth:`next` returned one: no get is pending)."""
        found = []
        while self._get is None and not self._notifies.empty():
            found.append(self._notifies.get_nowait())
        return found

    def close(self) -> None:
        get, self._get = self._get, None
        if get is None:
            return
        if not get.done():
            get.cancel()
        elif not get.cancelled():
            get.exception()  # a closed queue's error, seen: the session ends anyway


def _channel(notification: Any) -> str:
    """A notification's channel (psycopg2's Notify; anything else counts as the journal's)."""
    return str(getattr(notification, "channel", CHANNEL))
