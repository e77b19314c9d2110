"""Every failure leaves as JSON: ``{"error": {"code": "...", "message": "..."}}``.

Handlers raise :class:`ApiError` for what they detect themselves; database errors
are mapped from their SQLSTATE class (a bad value is the client's 400, a broken
constraint its 409/422, an unreachable server a 503). Anything else is a bug: it
is logged with its traceback and the client gets a 500 without one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence

import psycopg2
from aiohttp import web

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client can act on: HTTP status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def status_error(status: int, message: str) -> web.Response:
    """A JSON error for a bare HTTP status, with the status's code (the protocol layer's refusals)."""
    return error_response(status, _HTTP_CODES.get(status, "error"), message)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    417: "expectation_failed",
    422: "constraint_violation",
    429: "too_many_requests",
    503: "unavailable",
}

# SQLSTATE -> (status, code). Classes are matched by their first two characters.
_SQLSTATES = {
    "23505": (409, "unique_violation"),
    "23P01": (409, "exclusion_violation"),
    "40001": (409, "serialization_failure"),
    "40P01": (409, "deadlock_detected"),
    "23503": (422, "foreign_key_violation"),
    "23502": (422, "not_null_violation"),
    "23514": (422, "check_violation"),
    "42804": (400, "bad_value"),
    "42883": (400, "bad_value"),  # e.g. comparing a column with a value of another type
}
_SQLSTATE_CLASSES = {
    "22": (400, "bad_value"),  # data exception: invalid text, out of range, too long
    "23": (422, "constraint_violation"),
    "08": (503, "database_unavailable"),
    "57": (503, "database_unavailable"),  # admin shutdown, cannot connect now
    "53": (503, "database_unavailable"),  # insufficient resources, too many connections
}


def database_error(exc: psycopg2.Error) -> ApiError | None:
    """The ApiError a database error means for the client, or None for a bug."""
    state = exc.pgcode or ""
    mapped = _SQLSTATES.get(state) or _SQLSTATE_CLASSES.get(state[:2])
    if mapped is None:
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and not state:
            return ApiError(503, "database_unavailable", "the database is unreachable; try again shortly")
        return None
    status, code = mapped
    diag = exc.diag
    message = (diag.message_primary or str(exc)).strip()
    if diag.message_detail:
        message = f"{message}: {diag.message_detail.strip()}"
    if status == 503:
        message = "the database is unavailable; try again shortly"
    return ApiError(status, code, message)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A check that runs before the handler: it may answer itself (a response), refuse
# (raise ApiError), or let the request through (None).
Guard = Callable[[web.Request], web.StreamResponse | None]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def json_errors(guards: Sequence[Guard] = (), streams: Collection[Handler] = ()) -> Middleware:
    """The app's one middleware: run the guards, then the handler; every failure becomes JSON.

    Guards are plain functions rather than middlewares of their own because a
    middleware's frame stays alive for as long as its request: an SSE stream lives
    for hours, and thousands of them each kept a frame per middleware. For the same
    reason this middleware is a plain function too: it hands aiohttp the handler's
    own coroutine for the handlers in ``streams`` (they answer their errors with
    :func:`error_response_for` themselves), and wraps every other handler in a
    coroutine that maps its errors.
    """

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        try:
            for guard in guards:
                early = guard(request)
                if early is not None:
                    return _answer(early)
        except Exception as exc:
            return _answer(error_response_for(request, exc))
        if handler in streams:
            return handler(request)
        return _guarded(request, handler)

    return middleware


async def _answer(response: web.StreamResponse) -> web.StreamResponse:
    return response


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:
        return error_response_for(request, exc)


def error_response_for(request: web.Request, exc: Exception) -> web.Response:
    """The JSON answer to ``exc``; an HTTPException below 400 (a redirect) is raised again."""
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc  # redirects are answers, not errors
        return _http_error(request, exc)
    return _error(request, exc)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    message = exc.reason if exc.status != 413 else str(exc.text or exc.reason)
    if exc.status == 404:
        message = f"no such endpoint: {request.method} {request.path}"
    elif exc.status == 417:
        message = "the only Expect header this server meets is Expect: 100-continue"
    elif exc.status == 405:
        message = f"{request.method} is not allowed on {request.path}; allowed: {headers.get('Allow', '')}"
    return error_response(exc.status, _HTTP_CODES.get(exc.status, "error"), message, headers)


def _error(request: web.Request, exc: Exception) -> web.Response:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    if isinstance(exc, psycopg2.Error):
        mapped = database_error(exc)
        if mapped is not None:
            return error_response(mapped.status, mapped.code, mapped.message)
    elif isinstance(exc, TimeoutError):
        return error_response(503, "database_unavailable", "the database did not answer in time; try again")
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal", "internal error; see the gateway log")
