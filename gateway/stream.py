"""GET /events: one SSE response per client, fed by the hub.

Order of a connection: validate (400s are JSON, before any stream byte), subscribe
to the hub, then either send a cursor (fresh client) or replay the journal from
the client's cursor while live events wait, then hand the live stream over
(gateway.live): the hub writes to it until the client leaves, the hub closes the
subscriber, or the server stops.

aiohttp-sse's ``EventSourceResponse`` provides the headers, the GET-only check and
the TCP user timeout; events are written as bytes the hub encoded once for all
subscribers rather than through its per-client ``send()`` formatting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from typing import Any

import psycopg2
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp_sse import EventSourceResponse

from .access_log import stream_ended
from .auth import grant_of
from .codes import Code
from .db import first_line
from .errors import ApiError, error_response_for
from .hub import CLIENT_GONE, Hub, Subscriber
from .journal import (
    END_READ,
    PAGE_ROWS,
    REPLAY_AFTER,
    REPLAY_LATE,
    RESUME_POINT,
    ResumePoint,
    event_from_row,
    resume_verdict,
)
from .limits import LIMITS, StreamLimits
from .live import DirectSink, LiveStream, hand_over
from .metrics import METRICS, Metrics
from .sse import encode_event, encode_goodbye, encode_message, encode_preamble
from .state import HUB, POOL, SETTINGS

log = logging.getLogger(__name__)

MAX_TOPICS = 32
REPLAY_WRITE_TIMEOUT = 10.0
BEGIN_REPLAY = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_TOPIC = re.compile(r"^[^\s\x00-\x1f\x7f]{1,200}$")
_CURSOR = re.compile(r"^[0-9]{1,19}$")


def parse_topics(request: web.Request) -> list[str]:
    topics = request.query.getall("topic", [])
    if not topics:
        raise ApiError(Code.MISSING_TOPIC, "name at least one topic: /events?topic=todos[&topic=todos/42]")
    if len(topics) > MAX_TOPICS:
        raise ApiError(Code.TOO_MANY_TOPICS, f"at most {MAX_TOPICS} topics per connection, got {len(topics)}")
    for topic in topics:
        if not _TOPIC.match(topic):
            raise ApiError(
                Code.BAD_TOPIC, f"topic {topic!r} must be 1 to 200 characters without spaces or control characters"
            )
    return list(dict.fromkeys(topics))


def parse_cursor(request: web.Request) -> int | None:
    """The resume cursor: Last-Event-ID (EventSource reconnects) or ?lastEventId=."""
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw == "":
        raw = request.query.get("lastEventId")
    if raw is None or raw == "":
        return None
    if not _CURSOR.match(raw.strip()):
        raise ApiError(Code.BAD_CURSOR, f"Last-Event-ID must be an event id from this gateway (digits), got {raw!r}")
    return int(raw.strip())


async def events(request: web.Request) -> web.StreamResponse:
    """Open a stream: validate, subscribe, write the preamble and any replay, hand over.

    Errors before the first stream byte are answered here as JSON (the app's
    middleware runs this handler without a frame of its own). Once the stream is
    live it is handed over (gateway.live): the handler returns and the hub writes
    to the connection; the stream ends when the client leaves or the hub closes it.
    """
    try:
        topics = parse_topics(request)
        cursor = parse_cursor(request)
        grant = grant_of(request)
        for topic in topics:
            grant.require_read(topic)
        limits, client = request.app[LIMITS], request.remote or "unknown"
        limits.admit(client)
    except Exception as exc:
        return error_response_for(request, exc)
    hub = request.app[HUB]
    sub = hub.subscribe(topics, resuming=cursor is not None)
    transport = request.transport
    if transport is not None:
        sub.abort = transport.abort
    expiry = None
    if grant.expires_at is not None:  # a stream lives no longer than its token
        delay = max(0.0, grant.expires_at - time.time())
        expiry = asyncio.get_running_loop().call_later(delay, sub.close, "the token expired; reconnect with a new one")
    # interned: thousands of streams of /events share one string for their access-log line
    access_path = sys.intern(request.rel_url.raw_path) if request.app[SETTINGS].access_log else None
    done = StreamEnd(hub, sub, limits, client, expiry, access_path)
    response = HubFedResponse()
    try:
        try:
            writer = await response.prepare(request)
        except web.HTTPException as exc:  # a HEAD request: EventSourceResponse takes GET only
            return error_response_for(request, exc)
        # HTTP/1.1 streams are chunked; an HTTP/1.0 one (nginx's default upstream
        # protocol) is not, whatever aiohttp-sse's response object says.
        chunked = bool(getattr(writer, "chunked", True))
        retry_ms = request.app[SETTINGS].retry_ms
        if cursor is None:
            await response.write(encode_preamble(retry_ms, sub.start_position))
        else:
            await response.write(encode_preamble(retry_ms, None))
            if not await _replay(request, response, sub, cursor, topics):
                return response
        if transport is None or transport.is_closing():
            return response
        if sub.closed_reason is not None:  # closed during the replay (server shutting down)
            if not sub.overflowed:
                await _goodbye(response, sub.closed_reason)
            return response
        response.detach()
        done.sink = hand_over(request, hub, sub, chunked, done)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        if transport is None or not isinstance(transport.get_protocol(), LiveStream):
            done()  # else the live stream calls it when the stream ends
    return response


class StreamEnd:
    """What ends a stream however it ends (in the handler or in its LiveStream): runs once.

    A handed-over stream (``sink`` set) writes its access-log line here, when it
    ends, if ``access_path`` is set; one that ends in its handler is logged by aiohttp.
    """

    __slots__ = ("access_path", "client", "expiry", "hub", "limits", "sink", "started", "sub")

    def __init__(
        self,
        hub: Hub,
        sub: Subscriber,
        limits: StreamLimits,
        client: str,
        expiry: asyncio.TimerHandle | None,
        access_path: str | None = None,
    ) -> None:
        self.hub = hub
        self.sub: Subscriber | None = sub
        self.limits = limits
        self.client = client
        self.expiry = expiry
        self.access_path = access_path
        self.started = time.monotonic()
        self.sink: DirectSink | None = None

    def __call__(self) -> None:
        sub, self.sub = self.sub, None
        if sub is None:
            return
        sub.close(CLIENT_GONE)
        self.hub.unsubscribe(sub)
        self.limits.release(self.client)
        if self.expiry is not None:
            self.expiry.cancel()
        if self.sink is not None and self.access_path is not None:
            stream_ended(self.client, "GET", self.access_path, self.sink.sent, time.monotonic() - self.started)


class HubFedResponse(EventSourceResponse):
    """aiohttp-sse's response (SSE headers, TCP user timeout, GET only) without its ping task.

    ``EventSourceResponse`` starts one ping task per stream; with thousands of
    streams that is thousands of tasks and timers doing what one hub-wide heartbeat
    does, so the hub sends the heartbeat and this response does not ping.
    """

    _detached = False

    async def _ping(self) -> None:
        return

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._detached:  # aiohttp finishing the request after the hand-over
            return self._payload_writer
        writer = await super().prepare(request)
        self._ping_task = None  # finished at once (see _ping); do not keep a Task per stream
        return writer

    @property
    def logs_own_end(self) -> bool:
        """True once handed over: the stream's end writes its access-log line (StreamEnd)."""
        return self._detached

    def detach(self) -> None:
        """The stream goes on without this response: its end writes nothing, closes nothing."""
        self._detached = True
        self.force_close()  # aiohttp keeps no keep-alive state for the connection

    async def write_eof(self, data: bytes = b"") -> None:
        if not self._detached:
            await super().write_eof(data)


async def _goodbye(response: EventSourceResponse, reason: str) -> None:
    """Best effort: say why the stream ends; a client that does not read gets nothing."""
    try:
        async with asyncio.timeout(1.0):
            await response.write(encode_goodbye(reason))
    except (TimeoutError, ConnectionError):
        pass


async def _replay(
    request: web.Request, response: EventSourceResponse, sub: Subscriber, cursor: int, topics: list[str]
) -> bool:
    """Send what the client missed since ``cursor``, then let the held live events through.

    The whole replay reads one REPEATABLE READ snapshot on one connection, so a prune
    that runs meanwhile cannot delete rows out from under it (its pruned_through check
    and the rows it sends agree). A client that stops reading for REPLAY_WRITE_TIMEOUT
    is dropped, so it cannot hold a pool connection and an old snapshot for long.
    """
    metrics = request.app[METRICS]
    try:
        async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
            await cur.execute(BEGIN_REPLAY)
            await cur.execute(RESUME_POINT, {"cursor": cursor})
            point = ResumePoint.from_row(await cur.fetchone())
            snap = point.snapshot
            verdict = resume_verdict(cursor, point)
            if verdict.refetch is not None:
                data = json.dumps({"reason": verdict.refetch, "cursor": cursor, "resume_from": point.newest})
                await _replay_write(response, metrics, encode_message("refetch", data, event_id=point.newest))
            else:
                params = {"cursor": cursor, "tx_xmin": str(verdict.tx_xmin), "snap": snap.text, "topics": topics}
                await _replay_query(cur, response, metrics, REPLAY_LATE, {**params, "after": 0})
                await _replay_query(cur, response, metrics, REPLAY_AFTER, {**params, "after": cursor})
            await cur.execute(END_READ)
    except (psycopg2.Error, TimeoutError) as exc:
        log.warning("replay from %d failed: %s", cursor, first_line(exc))
        await _goodbye(response, "replay failed; reconnect to resume")
        return False
    sub.go_live(snap)
    return True


async def _replay_write(response: EventSourceResponse, metrics: Metrics, data: bytes) -> None:
    async with asyncio.timeout(REPLAY_WRITE_TIMEOUT):
        await response.write(data)
    metrics.replay_bytes += len(data)


async def _replay_query(
    cur: Any, response: EventSourceResponse, metrics: Metrics, query: str, params: dict[str, object]
) -> None:
    while True:
        await cur.execute(query, params)
        rows = await cur.fetchall()
        if rows:
            events = [event_from_row(row) for row in rows]
            await _replay_write(response, metrics, b"".join(encode_event(event) for event in events))
            params = {**params, "after": events[-1].id}
        if len(rows) < PAGE_ROWS:
            return


def add_routes(app: web.Application) -> None:
    app.router.add_get("/events", events)
