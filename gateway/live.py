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

From then on a LiveStream ends its stream in one of two ways:

* the client goes away (or the hub aborts a slow consumer): connection_lost()
  unsubscribes and releases the stream's limits slot;
* the hub closes the subscription (server shutdown, token expiry): it writes a
  goodbye comment and the end of the chunked body, and closes the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from .aiohttp_adapter import take_over
from .hub import CLIENT_GONE, SLOW_CONSUMER, Hub, Subscriber
from .sse import encode_goodbye

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
    """The protocol of a handed-over stream's transport: its end, whoever ends it."""

    __slots__ = ("_done", "_sink", "_sub")

    def __init__(self, sink: DirectSink, sub: Subscriber, done: Callable[[], None]) -> None:
        self._sink = sink
        self._sub = sub
        self._done = done  # unsubscribes and releases the stream's slot (runs once however often called)

    def data_received(self, data: bytes) -> None:
        """Ignored: an SSE client sends nothing after its request."""

    def eof_received(self) -> bool:
        return False  # the client closed its side: close ours, which ends the stream

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()

    def subscription_closed(self, reason: str) -> None:
        """The hub (or a timer) ended the subscription: say why, then hang up."""
        transport = self._sink.transport
        if reason in (CLIENT_GONE, SLOW_CONSUMER) or transport.is_closing():
            return  # the connection is already going (a slow consumer was aborted)
        self._sink(encode_goodbye(reason))
        if self._sink.chunked:
            transport.write(b"0\r\n\r\n")  # the end of the chunked body
            self._sink.sent += 5
        transport.close()
        asyncio.get_running_loop().call_later(GOODBYE_GRACE, transport.abort)


def hand_over(request: web.Request, hub: Hub, sub: Subscriber, chunked: bool, done: Callable[[], None]) -> DirectSink:
    """Make the stream of ``request`` a LiveStream fed by ``hub``; the handler returns next.

    The response must be prepared, with nothing to write at its end (see
    HubFedResponse.detach). ``done`` runs when the stream ends, however it ends.
    Returns the stream's sink, whose ``sent`` counts the bytes of the whole response.
    """
    transport = request.transport
    aiohttp_protocol = request.protocol
    start_task = request.task
    assert transport is not None
    sink = DirectSink(transport, chunked, sent=request.writer.output_size)
    live = LiveStream(sink, sub, done)
    sub.on_close = live.subscription_closed
    hub.attach(sub, sink)  # what queued up since subscribing goes first
    take_over(aiohttp_protocol, start_task, live)
    return sink
