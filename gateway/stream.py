"""GET /events: one SSE response per client, fed by the hub.

Order of a connection: validate (400s are JSON, before any stream byte), subscribe
to the hub, then either send a cursor (fresh client) or replay the journal from
the client's cursor while live events wait, then hand the live stream over
(gateway.live): the hub writes to it until the client leaves, the hub closes the
subscriber, or the server stops.

aiohttp-sse's ``EventSourceResponse`` provides the headers, the GET-only check and
the TCP user timeout (through gateway.aiohttp_adapter's HubFedResponse, which holds
the internals that takes); events are written as bytes the hub encoded once for all
subscribers rather than through its per-client ``send()`` formatting.

However a stream ends, StreamEnd ends it, once (gateway.ending says what that does).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time

import psycopg2
from aiohttp import web

from .access_log import stream_ended
from .aiohttp_adapter import HubFedResponse
from .auth import grant_of
from .client_address import client_of
from .codes import Code
from .db import first_line
from .ending import EndReason, Phase, farewell
from .errors import ApiError, error_response_for
from .hub import Hub, Subscriber
from .journal import Replay
from .limits import StreamLimits
from .live import DirectSink, hand_over, say_goodbye
from .sse import encode_event, encode_message, encode_preamble
from .state import HUB, LIMITS, POOL, SETTINGS

log = logging.getLogger(__name__)

MAX_TOPICS = 32
REPLAY_WRITE_TIMEOUT = 10.0
_TOPIC = re.compile(r"^[^\s\x00-\x1f\x7f]{1,200}$")
_CURSOR = re.compile(r"^[0-9]{1,19}$")


def parse_topics(request: web.Request) -> list[str]:
    topics = request.query.getall("topic", [])
    if not topics:
        raise ApiError(Code.MISSING_TOPIC, "name at least one topic", hint="/events?topic=todos[&topic=todos/42]")
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
        raise ApiError(
            Code.BAD_CURSOR,
            f"Last-Event-ID must be an event id from this gateway (digits), got {raw!r}",
            hint="send the id of the last event received, or none to start from now",
        )
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
        limits, client = request.app[LIMITS], client_of(request, request.app[SETTINGS].trusted_proxies)
        limits.admit(client)
    except Exception as exc:
        return error_response_for(request, exc)
    access_path = sys.intern(request.rel_url.raw_path) if request.app[SETTINGS].access_log else None
    done = StreamEnd(request, topics, cursor is not None, limits, client, access_path)
    sub, transport = done.sub, request.transport
    response = HubFedResponse()
    try:
        try:
            writer = await response.prepare(request)
        except web.HTTPException as exc:  # a HEAD request: EventSourceResponse takes GET only
            return error_response_for(request, exc)
        if transport is None or done.ended:
            return response
        # HTTP/1.1 streams are chunked; an HTTP/1.0 one (nginx's default upstream
        # protocol) is not, whatever aiohttp-sse's response object says.
        done.writing(response, transport, chunked=bool(getattr(writer, "chunked", True)))
        if grant.expires_at is not None:  # a stream lives no longer than its token (says so once prepared)
            delay = max(0.0, grant.expires_at - time.time())
            done.expiry = asyncio.get_running_loop().call_later(delay, done, EndReason.TOKEN_EXPIRED)
        retry_ms = request.app[SETTINGS].retry_ms
        if cursor is None:
            await response.write(encode_preamble(retry_ms, sub.start_position))
        else:
            await response.write(encode_preamble(retry_ms, None))
            await _replay(request, response, done, cursor, topics)
        if done.ended or transport.is_closing():
            return response
        response.detach()
        sink = DirectSink(transport, done.chunked, sent=request.writer.output_size)
        done.live(sink)
        hand_over(request, done.hub, sub, sink, done)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        done.handler_returns()
    return response


class StreamEnd:
    """The one owner of a stream's end, however and wherever it ends: runs once.

    It is the subscription's ``on_end`` (the hub closes a slow consumer or a gone
    client through it), the expiry timer's callback, and what the handler and the
    LiveStream call when the connection goes. The first call cancels the expiry,
    unsubscribes, releases the limits slot, says goodbye or cuts the connection
    off as gateway.ending.farewell() decides, and writes the access-log line of a
    stream whose response was prepared (aiohttp logs one that ended before).
    """

    __slots__ = (
        "access_path",
        "chunked",
        "client",
        "expiry",
        "hub",
        "limits",
        "phase",
        "request",
        "response",
        "sink",
        "started",
        "sub",
        "transport",
    )

    def __init__(
        self,
        request: web.Request,
        topics: list[str],
        resuming: bool,
        limits: StreamLimits,
        client: str,
        access_path: str | None = None,
    ) -> None:
        self.hub = request.app[HUB]
        self.request: web.Request | None = request
        self.limits = limits
        self.client = client
        self.expiry: asyncio.TimerHandle | None = None
        self.access_path = access_path
        self.started = time.monotonic()
        self.phase = Phase.OPENING
        self.response: HubFedResponse | None = None
        self.transport: asyncio.Transport | None = None
        self.chunked = True
        self.sink: DirectSink | None = None
        self.sub: Subscriber = self.hub.subscribe(topics, resuming=resuming, on_end=self)

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    def writing(self, response: HubFedResponse, transport: asyncio.Transport, chunked: bool) -> None:
        """The response is prepared: the handler writes the preamble and any replay."""
        if self.phase is Phase.OPENING:
            self.phase, self.response, self.transport, self.chunked = Phase.WRITING, response, transport, chunked

    def live(self, sink: DirectSink) -> None:
        """Handed over: the hub writes through ``sink``; aiohttp's request is let go."""
        if self.phase is Phase.WRITING:
            self.phase, self.sink, self.request, self.response = Phase.LIVE, sink, None, None

    def handler_returns(self) -> None:
        """The handler is done: a stream it did not hand over ends now (its client went)."""
        if self.phase is not Phase.LIVE:
            self(EndReason.CLIENT_GONE)

    def __call__(self, reason: EndReason) -> None:
        plan = farewell(self.phase, reason)
        if plan is None:
            return
        self.phase = Phase.ENDED
        if self.expiry is not None:
            self.expiry.cancel()
        self.sub.close(reason)  # comes back here, and returns: the stream has ended
        self.hub.unsubscribe(self.sub)
        self.limits.release(self.client)
        transport = self.transport
        if transport is None:
            return  # nothing of the stream was written: aiohttp answers and logs
        sink = self.sink
        if sink is None:  # still in the handler: its response writes nothing more, logs nothing
            assert self.response is not None and self.request is not None
            self.response.detach()
            sink = DirectSink(transport, self.chunked, sent=self.request.writer.output_size)
        say_goodbye(sink, plan)
        if self.access_path is not None:
            duration = time.monotonic() - self.started
            stream_ended(self.client, "GET", self.access_path, sink.sent, duration)


async def _replay(
    request: web.Request, response: HubFedResponse, done: StreamEnd, cursor: int, topics: list[str]
) -> None:
    """Send what the client missed since ``cursor``, then let the held live events through.

    The journal reads it (gateway.journal.Replay: one snapshot, so a prune cannot
    delete rows out from under it). A client that stops reading for
    REPLAY_WRITE_TIMEOUT is dropped, so it cannot hold a pool connection and an old
    snapshot for long. A replay that fails ends the stream (REPLAY_FAILED).
    """
    hub = request.app[HUB]
    try:
        async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
            replay = await Replay.begin(cur, cursor, topics)
            if replay.refetch is not None:
                refetch = replay.refetch
                data = json.dumps({"reason": refetch.reason, "cursor": cursor, "resume_from": refetch.resume_from})
                await _replay_write(response, hub, encode_message("refetch", data, event_id=refetch.resume_from))
            else:
                async for page in replay.pages():
                    await _replay_write(response, hub, b"".join(encode_event(event) for event in page))
            await replay.end()
    except (psycopg2.Error, TimeoutError) as exc:
        log.warning("replay from %d failed: %s", cursor, first_line(exc))
        done(EndReason.REPLAY_FAILED)
        return
    done.sub.go_live(replay.snapshot)


async def _replay_write(response: HubFedResponse, hub: Hub, data: bytes) -> None:
    async with asyncio.timeout(REPLAY_WRITE_TIMEOUT):
        await response.write(data)
    hub.count_sent(len(data))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/events", events)
