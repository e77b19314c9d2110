"""The gateway's hooks into aiohttp's protocol layer and aiohttp-sse: the only internals of either it uses.

Why: aiohttp's ``RequestHandler`` (web_protocol.py) answers a request it cannot
parse before any application code runs. It logs the request line or the header at
ERROR with a traceback (a token in a query string or an Authorization header
reaches the log, and any client can write one such entry per request), and it
answers text/plain, echoing the request. An ``HTTPException`` raised below the
app's middleware (``Expect: x`` gives 417) is answered as text/plain too. And it
has no request-head timeout: a socket that trickles its headers a byte a second
is kept open for ever. aiohttp has no public hook for any of that, so:

* :class:`GatewayRequestHandler` subclasses ``RequestHandler``: ``handle_error``
  answers with the gateway's JSON error body and logs at most one line, never the
  request's bytes; a timer closes a connection that has not sent a complete
  request head within ``head_timeout`` seconds of opening, or of the first byte
  of its next request (a keep-alive connection idle *between* requests is left to
  aiohttp's keep-alive timeout, and a handed-over stream has no timer at all);
* :class:`GatewayServer` makes those handlers and answers HTTPExceptions that
  escape the application as JSON;
* :class:`GatewayRunner` is an ``AppRunner`` whose server is a GatewayServer.

Internals used (tests/test_aiohttp_adapter.py fails loudly when an upgrade
changes one): ``RequestHandler.handle_error``, ``log_exception``, ``finish_response``,
``data_received``, ``connection_made``, ``connection_lost``, ``close``,
``force_close``, its ``transport``, ``_task_handler`` and ``_request_count``
(heads parsed so far, errors included), and setting its ``transport`` to None
to take a connection over (:func:`take_over`, also the live streams' hand-over);
``web_protocol.ERROR``
(the request message of an unparsable request); ``web.Server._kwargs`` and
``_loop`` (what the server passes each handler); ``AppRunner._make_server``.

aiohttp-sse 3.0's ``EventSourceResponse`` always starts a ping task in
``prepare()`` and refuses ``ping_interval <= 0``; the gateway sends one heartbeat
for all streams instead (gateway.app). :class:`HubFedResponse` uses, of it:
``_ping`` (overridden to return at once), ``_ping_task`` (set to None after
``prepare``: no Task kept per stream) and the response's ``_payload_writer``
(returned by a prepare after the hand-over); ``aiohttp_sse_problems()`` says
which of them an upgrade changed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import aiohttp_sse
from aiohttp import base_protocol, http_exceptions, web, web_protocol
from aiohttp.abc import AbstractStreamWriter
from aiohttp_sse import EventSourceResponse

from .errors import error_response_for, status_error

log = logging.getLogger(__name__)

TESTED_AIOHTTP = ("3.14",)  # minor versions whose internals this module was checked against
TESTED_AIOHTTP_SSE = ("3.0",)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def is_malformed(request: web.BaseRequest) -> bool:
    """True for the stand-in request aiohttp makes for bytes it could not parse."""
    return request.message is web_protocol.ERROR


class GatewayRequestHandler(web_protocol.RequestHandler):
    """aiohttp's HTTP/1 protocol, with JSON errors, quiet rejections and a head timeout."""

    __slots__ = ("_finished", "_head_timeout", "_head_timer")

    def __init__(self, manager: web.Server, *, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._finished = 0  # requests answered; equal to _request_count while awaiting a head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_timer()  # a connection that never sends a byte is held no longer

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        if data and self._head_timer is None and self._finished == heads:
            self._start_head_timer()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if self._request_count != heads:
            self._stop_head_timer()  # a complete head (or a parse error, answered at once)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            result = await super().finish_response(request, resp, start_time)
        finally:
            self._finished += 1
        if is_malformed(request):
            self._linger()
        return result

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The JSON answer to an unparsable request (400) or a handler's escaped exception (500/504).

        aiohttp's own ``message`` and the exception's text quote the request's bytes,
        so neither is used: the client gets a fixed description of what was wrong.
        """
        if request.writer.output_size > 0:  # as aiohttp: a started response cannot become an error
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        if status < 500:
            self.close()  # parse nothing more: the connection ends after this answer (see _linger)
            reason = self._describe(exc)
            if self.access_logger is None or not self.access_logger.enabled:
                log.debug("refused a malformed request from %s: %d %s", request.remote, status, reason)
            # else the access log writes its one line for it
            response: web.StreamResponse = status_error(status, reason)
        else:
            if isinstance(exc, Exception):
                failure: Exception = exc
            else:  # aiohttp passes no exception with its 504 for a handler's TimeoutError
                failure = TimeoutError() if status == 504 else RuntimeError(f"HTTP {status} below the application")
            # logs a bug with its traceback, as the app does (it reads only method and path)
            response = error_response_for(request, failure)  # type: ignore[arg-type]
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's ERROR with a traceback, except for a body that cannot be read.

        After an answer that left the body unread (a 401, a 404), aiohttp reads the
        rest to discard it; a body that is not in its Content-Encoding then raised
        from there, and any client could write an ERROR with a traceback per request.
        The request's access-log line is enough (or one debug line when the access log
        is off), without the exception's text, which can quote the request's bytes.
        """
        exc = kw.get("exc_info")
        if isinstance(exc, web.RequestPayloadError):
            if self.access_logger is None or not self.access_logger.enabled:
                log.debug("discarded the unreadable body of a request from %s", self.peername)
            return
        super().log_exception(*args, **kw)

    def _describe(self, exc: BaseException | None) -> str:
        if isinstance(exc, http_exceptions.LineTooLong):
            return f"the URL or a header is longer than {self.max_line_size} bytes"
        if isinstance(exc, http_exceptions.InvalidURLError):
            return "the URL is malformed: percent-encode non-ASCII characters, spaces and control characters"
        if isinstance(exc, http_exceptions.BadHttpMethod):
            return "unknown HTTP method (or TLS sent to a plain-HTTP port)"
        if isinstance(exc, http_exceptions.PayloadEncodingError):
            return "the request body's framing (Content-Length or chunked encoding) is malformed"
        if isinstance(exc, http_exceptions.BadHttpMessage) and exc.message == "Too many headers received":
            return f"more than {self.max_headers} headers"
        return "the request line or a header is malformed (a control character, a raw non-ASCII byte, a bad name)"

    def _linger(self) -> None:
        """End the connection of a refused request without losing the answer.

        A socket closed while the client is still sending (the rest of a 100 kB
        header) is reset, and a reset makes the client's kernel drop the answer it
        had not read yet. So, as nginx's lingering close does: send FIN after the
        answer, read and discard what still comes, close at the client's EOF or after
        LINGER seconds. aiohttp's handler is retired as at a stream's hand-over.
        """
        transport, task = self.transport, self._task_handler
        if transport is None or transport.is_closing() or task is None:
            return
        take_over(self, task, _Drain(transport))
        if transport.can_write_eof():
            transport.write_eof()

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self._loop.call_later(self._head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or self._finished != self._request_count:
            return  # gone, or a head arrived meanwhile
        log.debug(
            "closed a connection from %s: no complete request head within %g s", self.peername, self._head_timeout
        )
        self.force_close()


def take_over(
    protocol: web_protocol.RequestHandler, task: asyncio.Task[None], new_protocol: asyncio.Protocol
) -> asyncio.Transport:
    """Give the connection of aiohttp's ``protocol`` to ``new_protocol``; return its transport.

    From now on aiohttp neither writes to nor closes the connection, nor keeps it for
    another request; when ``task`` (the request's, ``request.task``) is over, aiohttp's
    connection object is retired as if the peer had gone, which also takes it off the
    server's list. A live stream's hand-over (gateway.live) and a refused request's
    lingering close use it.
    """
    transport = protocol.transport
    assert transport is not None
    transport.set_protocol(new_protocol)
    transport.resume_reading()  # aiohttp may have paused it; a client's close must be seen
    protocol.transport = None
    protocol.force_close()
    task.add_done_callback(lambda _: protocol.connection_lost(None))
    return transport


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
        """True once detached: the stream's end writes its access-log line (gateway.stream)."""
        return self._detached

    def detach(self) -> None:
        """The stream goes on (or ends) without this response: it writes nothing more, closes nothing."""
        self._detached = True
        self.force_close()  # aiohttp keeps no keep-alive state for the connection

    async def write_eof(self, data: bytes = b"") -> None:
        if not self._detached:
            await super().write_eof(data)


def aiohttp_sse_problems() -> list[str]:
    """What of aiohttp-sse's internals HubFedResponse uses the installed version lacks."""
    problems = []
    ping = getattr(EventSourceResponse, "_ping", None)
    if not inspect.iscoroutinefunction(ping) or list(inspect.signature(ping).parameters) != ["self"]:
        problems.append("EventSourceResponse._ping()")
    if "_ping_task" not in inspect.getsource(EventSourceResponse.prepare):
        problems.append("EventSourceResponse.prepare() starting _ping_task")
    if "_payload_writer" not in getattr(web.StreamResponse, "__slots__", ()) and not hasattr(
        web.StreamResponse(), "_payload_writer"
    ):
        problems.append("StreamResponse._payload_writer")
    if not hasattr(aiohttp_sse, "EventSourceResponse"):
        problems.append("aiohttp_sse.EventSourceResponse")
    return problems


LINGER = 2.0  # seconds a refused request's connection drains the client's bytes before it closes


class _Drain(asyncio.Protocol):
    """A refused request's connection after its answer: discards input until EOF or LINGER."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._timer = asyncio.get_running_loop().call_later(LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        """Discarded: the request was refused."""

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()


def json_http_errors(handler: Handler) -> Handler:
    """Answer an HTTPException raised below the app's middleware (417 for ``Expect: x``) as JSON."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_response_for(request, exc)  # type: ignore[arg-type]

    return handle


class GatewayServer(web.Server):
    """aiohttp's low-level server, making GatewayRequestHandlers."""

    def __init__(self, handler: Handler, *, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(json_http_errors(handler), **kwargs)
        self._head_timeout = head_timeout

    def __call__(self) -> web_protocol.RequestHandler:
        return GatewayRequestHandler(self, loop=self._loop, head_timeout=self._head_timeout, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose connections are GatewayRequestHandlers (``request_head_timeout`` in seconds)."""

    def __init__(self, app: web.Application, *, request_head_timeout: float, **kwargs: Any) -> None:
        problems = aiohttp_problems()
        if problems:
            raise RuntimeError(
                f"aiohttp {aiohttp.__version__} changed what gateway/aiohttp_adapter.py relies on "
                f"({'; '.join(problems)}); install aiohttp {' or '.join(TESTED_AIOHTTP)}.x"
            )
        problems = aiohttp_sse_problems()
        if problems:
            raise RuntimeError(
                f"this aiohttp-sse changed what gateway/aiohttp_adapter.py relies on "
                f"({'; '.join(problems)}); install aiohttp-sse {' or '.join(TESTED_AIOHTTP_SSE)}.x"
            )
        super().__init__(app, **kwargs)
        self._head_timeout = request_head_timeout

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # starts the app and makes aiohttp's own server
        if not isinstance(getattr(made, "_kwargs", None), dict) or getattr(made, "_loop", None) is None:
            raise RuntimeError(
                f"aiohttp {aiohttp.__version__}'s web.Server no longer keeps _kwargs and _loop, which "
                f"gateway/aiohttp_adapter.py relies on; install aiohttp {' or '.join(TESTED_AIOHTTP)}.x"
            )
        return GatewayServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            head_timeout=self._head_timeout,
            **made._kwargs,
        )


def aiohttp_problems() -> list[str]:
    """What of the internals above the installed aiohttp lacks (empty when all is there)."""
    problems = []
    expected = {
        "handle_error": ["self", "request", "status", "exc", "message"],
        "finish_response": ["self", "request", "resp", "start_time"],
        "data_received": ["self", "data"],
        "connection_made": ["self", "transport"],
        "connection_lost": ["self", "exc"],
    }
    for name, params in expected.items():
        method = getattr(web_protocol.RequestHandler, name, None)
        if method is None or list(inspect.signature(method).parameters) != params:
            problems.append(f"RequestHandler.{name}({', '.join(params[1:])})")
    for name in ("close", "force_close", "log_exception"):
        if not callable(getattr(web_protocol.RequestHandler, name, None)):
            problems.append(f"RequestHandler.{name}()")
    for name in ("_request_count", "_task_handler"):
        if name not in web_protocol.RequestHandler.__slots__:
            problems.append(f"RequestHandler.{name}")
    if "transport" not in base_protocol.BaseProtocol.__slots__:
        problems.append("RequestHandler.transport")
    if not isinstance(getattr(web_protocol, "ERROR", None), aiohttp.http.RawRequestMessage):
        problems.append("web_protocol.ERROR")
    if not inspect.iscoroutinefunction(getattr(web.AppRunner, "_make_server", None)):
        problems.append("AppRunner._make_server()")
    return problems  # web.Server's _kwargs and _loop are checked when the server is made
