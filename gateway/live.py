"""A live SSE connection, after aiohttp has handed it over.

Why: a stream idles for hours, and while its request handler runs aiohttp keeps,
per connection, the parsed request, the parser, its message queue, two tasks and
their frames, a keep-alive timer and the response: about 9 KiB, most of an idle
stream's cost. Once the headers, the preamble and any replay are written, the
hub writes the stream's events straight to its transport anyway, so nothing of
aiohttp is needed any more. hand_over() gives the transport a small protocol of
ours, lets the handler return without ending the response, and retires aiohttp's
connection object as if the peer had gone; what is left per stream is the
transport, a LiveStream and the hub's Subscriber.

A LiveStream only reports that its connection went (connection_lost): the
stream's one end (gateway.stream's StreamEnd) does the rest, and say_goodbye()
is how that end leaves the connection, whether the stream is live or still in
its handler: a goodbye comment, the end of the chunked body and a close, or an
abort for a client that does not read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from .aiohttp_adapter import take_over
from .ending import EndReason, Farewell
from .hub import Hub, Subscriber

# A client that does not read its goodbye is cut off after this many seconds.
GOODBYE_GRACE = 1.0


class DirectSink:
    """Writes SSE bytes straight to ``transport``, framed as HTTP chunks when ``chunked``.

    The hub calls it once per page for each live subscriber; no task wakes up and no
    coroutine runs per write. Returns the bytes the connection still had to send
    before this write (-1 once it is closing): the subscriber's bound is checked
    against that backlog. ``sent`` counts the bytes written to the connection, HTTP
    framing included (for the access log). A slotted object rather than a closure:
    one lives as long as its stream.
    """

    __slots__ = ("chunked", "sent", "transport")

    def __init__(self, transport: asyncio.Transport, chunked: bool, sent: int = 0) -> None:
        self.transport = transport
        self.chunked = chunked
        self.sent = sent

    def __call__(self, data: bytes) -> int:
        transport = self.transport
        if transport.is_closing():
            return -1
        backlog = transport.get_write_buffer_size()
        wire = b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data
        transport.write(wire)
        self.sent += len(wire)
        return backlog


class LiveStream(asyncio.Protocol):
    """The protocol of a handed-over stream's transport: tells the stream's end when it goes."""

    __slots__ = ("_end",)

    def __init__(self, end: Callable[[EndReason], None]) -> None:
        self._end = end  # the stream's one end (runs once however often called)

    def data_received(self, data: bytes) -> None:
        """Ignored: an SSE client sends nothing after its request."""

    def eof_received(self) -> bool:
        return False  # the client closed its side: close ours, which ends the stream

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(EndReason.CLIENT_GONE)


def say_goodbye(sink: DirectSink, farewell: Farewell) -> None:
    """Leave the connection as ``farewell`` says: goodbye and close, abort, or just close."""
    transport = sink.transport
    if transport.is_closing():
        return  # already going: nothing more can be said
    if farewell.cut_off:
        transport.abort()  # it is not reading: a goodbye would never arrive
        return
    if farewell.goodbye is not None:
        sink(farewell.goodbye)
        if sink.chunked:
            transport.write(b"0\r\n\r\n")  # the end of the chunked body
            sink.sent += 5
        asyncio.get_running_loop().call_later(GOODBYE_GRACE, transport.abort)
    transport.close()


def hand_over(
    request: web.Request, hub: Hub, sub: Subscriber, sink: DirectSink, end: Callable[[EndReason], None]
) -> None:
    """Make the stream of ``request`` a LiveStream that ``hub`` feeds through ``sink``.

    The response must be prepared, with nothing to write at its end (see
    HubFedResponse.detach); the handler returns next. ``end`` runs when the
    connection goes.
    """
    transport = request.transport
    aiohttp_protocol = request.protocol
    start_task = request.task
    assert transport is not None
    hub.attach(sub, sink)  # what queued up since subscribing goes first
    take_over(aiohttp_protocol, start_task, LiveStream(end))
