"""The access log: one line per request at info, on the ``gateway.access`` logger.

A line reads ``127.0.0.1 "GET /api/todos" 200 312B 0.004s``: the client's address
(behind a trusted proxy, the one it forwarded for: gateway.client_address),
the method and the path *without* the query string (a browser's token travels in
``?access_token=``), the status, the bytes written to the connection (headers
included) and the time from the request to its last byte. No header value is
ever logged. An SSE stream is logged when it ends, not when it goes live (its
line ends with ``stream``): its handler returns at the hand-over (gateway.live),
so the stream's one end (gateway.stream's StreamEnd) writes the line
(``stream_ended``), for a stream that ends before its hand-over too. A request aiohttp
could not parse has no trustworthy method or path: its line shows ``"- -"``.
GATEWAY_ACCESS_LOG=off turns the log off.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .aiohttp_adapter import is_malformed
from .client_address import client_of
from .state import SETTINGS

ACCESS_LOGGER = logging.getLogger("gateway.access")


def _line(remote: str | None, method: str, path: str, status: int, sent: int, seconds: float) -> str:
    return f'{remote or "-"} "{method} {path}" {status} {sent}B {seconds:.3f}s'


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access-log hook (``access_log_class``), writing the lines described above."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if getattr(response, "logs_own_end", False):
            return  # a handed-over stream: stream_ended() logs it
        if is_malformed(request) or not isinstance(request, web.Request):
            method, path, remote = "-", "-", request.remote
        else:
            method, path = request.method, request.rel_url.raw_path
            remote = client_of(request, request.app[SETTINGS].trusted_proxies)
        self.logger.info(_line(remote, method, path, response.status, response.body_length, time))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def stream_ended(remote: str | None, method: str, path: str, sent: int, seconds: float) -> None:
    """The line of a live stream, written when it ends (however it ends)."""
    if ACCESS_LOGGER.isEnabledFor(logging.INFO):
        ACCESS_LOGGER.info(_line(remote, method, path, 200, sent, seconds) + " stream")
