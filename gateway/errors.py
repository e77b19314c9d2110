"""Every failure leaves as JSON in PostgREST's shape: ``{"code", "message", "details", "hint"}``.

Handlers raise :class:`ApiError` for what they detect themselves; database errors
are mapped from their SQLSTATE with PostgREST's statuses (a bad value is the client's
400, a duplicate key a 409, an unreachable server a 503), and keep Postgres' own code,
message, DETAIL (``details``) and HINT (``hint``). Anything else is a bug: it is logged
with its traceback and the client gets a 500 without one. Every code, with its status,
is a member of :class:`gateway.codes.Code`; this module only shapes and maps them.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence

import psycopg2
from aiohttp import web
from aiohttp.typedefs import Middleware

from .codes import Code

log = logging.getLogger(__name__)

# What a 401 says to do when its raise site names no challenge of its own (RFC 9110 11.6.1).
CHALLENGE = 'Bearer realm="pg-sse-gateway"'


class ApiError(Exception):
    """An error the client can act on: a code from the table (which gives the status), a human message."""

    def __init__(
        self,
        code: Code,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        close: bool = False,
        details: str | None = None,
        hint: str | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        assert code.status is not None, f"{code} takes its status from an HTTP error"
        self.status: int = code.status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.close = close  # end the connection after the answer (what is left of the request is not read)
        self.details = details  # PostgREST's error shape: where or what exactly,
        self.hint = hint  # and what to do instead
        self.sqlstate = sqlstate  # Postgres' own code, for a member that stands for a class of them


def error_response(
    code: Code,
    message: str,
    headers: dict[str, str] | None = None,
    status: int | None = None,
    *,
    details: str | None = None,
    hint: str | None = None,
    sqlstate: str | None = None,
) -> web.Response:
    """PostgREST's error body, every key always present; ``status`` only for Code.ERROR.

    ``sqlstate`` replaces the member's code with the one Postgres gave. A 401 always
    carries a WWW-Authenticate challenge, as RFC 9110 and PostgREST do.
    """
    body = json.dumps({"code": sqlstate or code.code, "message": message, "details": details, "hint": hint})
    answer = status if status is not None else code.status
    assert answer is not None, f"{code} needs the status of the HTTP error it stands for"
    if answer == 401 and not any(k.lower() == "www-authenticate" for k in headers or ()):
        headers = {**(headers or {}), "WWW-Authenticate": CHALLENGE}
    return web.Response(status=answer, text=body, content_type="application/json", headers=headers)


def api_error_response(exc: ApiError) -> web.Response:
    """The answer to an ApiError: its code, message, details, hint and headers."""
    response = error_response(
        exc.code, exc.message, exc.headers, details=exc.details, hint=exc.hint, sqlstate=exc.sqlstate
    )
    if exc.close:
        response.force_close()
    return response


def status_error(status: int, message: str) -> web.Response:
    """A JSON error for a bare HTTP status, with the status's code (the protocol layer's refusals)."""
    return error_response(_HTTP_CODES.get(status, Code.ERROR), message, status=status)


# The status of an HTTP error aiohttp raises -> its code; any other status is Code.ERROR.
_HTTP_CODES = {
    400: Code.BAD_REQUEST,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.INVALID_PATH,
    405: Code.METHOD_NOT_ALLOWED,
    413: Code.BODY_TOO_LARGE,
    415: Code.UNSUPPORTED_MEDIA_TYPE,
    417: Code.EXPECTATION_FAILED,
}

# SQLSTATE -> code, with PostgREST's status for it (src/PostgREST/Error.hs, mapSQLtoHTTP).
# Classes are matched by their first two characters. A SQLSTATE in neither table is
# a statement the gateway built wrong or a server fault: a bug, logged, a 500.
_SQLSTATES = {
    "23505": Code.UNIQUE_VIOLATION,
    "23503": Code.FOREIGN_KEY_VIOLATION,
    "23502": Code.NOT_NULL_VIOLATION,
    "23514": Code.CHECK_VIOLATION,
    "23P01": Code.EXCLUSION_VIOLATION,
    "40001": Code.SERIALIZATION_FAILURE,
    "40P01": Code.DEADLOCK_DETECTED,
    "42501": Code.INSUFFICIENT_PRIVILEGE,
    "42804": Code.BAD_VALUE,
    "42725": Code.AMBIGUOUS_OPERATOR,  # cs./cd. on text: Postgres cannot pick an operator (found by schemathesis)
    "42883": Code.UNDEFINED_FUNCTION,  # e.g. an operator the column's type lacks: PostgREST's 404
    # A value's own syntax: tsvector, tsquery and jsonpath input report 42601 (the
    # statements themselves are built from the catalog, and tested).
    "42601": Code.BAD_VALUE,
    "42P10": Code.INVALID_CONFLICT_TARGET,
    "42704": Code.BAD_VALUE,  # undefined object: a select= cast to a type that does not exist
    "428C9": Code.READ_ONLY_COLUMN,
    "53400": None,  # configuration limit exceeded: PostgREST's 500, a server fault
    "57P01": Code.DATABASE_UNAVAILABLE,  # admin shutdown
    "57P02": Code.DATABASE_UNAVAILABLE,  # crash shutdown
    "57P03": Code.DATABASE_UNAVAILABLE,  # cannot connect now (starting, recovering)
}
_SQLSTATE_CLASSES = {
    "22": Code.BAD_VALUE,  # data exception: invalid text, out of range, too long
    "54": Code.BAD_VALUE,  # program limit: a value too big for an index entry, a tsvector word (PostgREST: 500)
    "0A": Code.FEATURE_NOT_SUPPORTED,  # e.g. an xml value on a server built without libxml
    "23": Code.CONSTRAINT_VIOLATION,
    "0L": Code.INSUFFICIENT_PRIVILEGE,  # invalid grantor
    "0P": Code.INSUFFICIENT_PRIVILEGE,  # invalid role specification
    "28": Code.INSUFFICIENT_PRIVILEGE,  # invalid authorization specification
    "08": Code.DATABASE_UNAVAILABLE,
    "53": Code.DATABASE_UNAVAILABLE,  # insufficient resources, too many connections
}


# A body whose Content-Encoding does not decode it (a gzip header that is not gzip),
# or whose chunked framing breaks off, is the client's 400, not a bug.
BODY_UNREADABLE = (
    "the request body cannot be read: it is not in its Content-Encoding (gzip, deflate, br), "
    "or its chunked framing is malformed"
)


def database_error(exc: psycopg2.Error) -> ApiError | None:
    """The ApiError a database error means for the client, or None for a bug.

    Postgres' SQLSTATE, primary message, DETAIL and HINT go through as PostgREST
    passes them; an unavailable server's own words are replaced by what to do.
    """
    state = exc.pgcode or ""
    code = _SQLSTATES[state] if state in _SQLSTATES else _SQLSTATE_CLASSES.get(state[:2])
    diag = exc.diag
    message = (diag.message_primary or str(exc)).strip()
    if state == "22023" and message.startswith("role") and message.endswith("does not exist"):
        code = Code.UNKNOWN_ROLE  # a token's role the database does not have: PostgREST's 401
    if code is None:
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and not state:
            return ApiError(Code.DATABASE_UNAVAILABLE, "the database is unreachable; try again shortly")
        return None
    if code is Code.DATABASE_UNAVAILABLE:
        return ApiError(code, "the database is unavailable; try again shortly", sqlstate=state)
    return ApiError(
        code,
        message,
        details=_text(diag.message_detail),
        hint=_text(diag.message_hint),
        sqlstate=state,
    )


def _text(part: str | None) -> str | None:
    return part.strip() if part else None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A check that runs before the handler: it may answer itself (a response), refuse
# (raise ApiError), let the request through (None), or ask to wait (raise Deferred).
Guard = Callable[[web.Request], web.StreamResponse | None]


class Deferred(Exception):
    """A guard cannot decide yet: the request waits for ``ready``, then that guard runs again.

    For the rare request that needs I/O before it can be judged (a token whose key is
    being fetched: gateway.jwks). A guard that defers a second time gets ``otherwise``
    as its answer, so a request waits once at most. A stream that waited keeps one
    coroutine frame more than the others for its life: the price of the rare case.
    """

    def __init__(self, ready: Awaitable[object], otherwise: Exception) -> None:
        super().__init__("deferred")
        self.ready = ready
        self.otherwise = otherwise


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
        return through(request, handler, 0, False)

    def through(request: web.Request, handler: Handler, first: int, waited: bool) -> Awaitable[web.StreamResponse]:
        index = first
        try:
            for index in range(first, len(guards)):
                early = guards[index](request)
                if early is not None:
                    return _answer(early)
        except Deferred as wait:
            if waited:
                if inspect.iscoroutine(wait.ready):
                    wait.ready.close()  # never awaited: say so to the coroutine, not to the log
                return _answer(error_response_for(request, wait.otherwise))
            return resume(request, handler, index, wait.ready)
        except Exception as exc:
            return _answer(error_response_for(request, exc))
        if handler in streams:
            return handler(request)
        return _guarded(request, handler)

    async def resume(
        request: web.Request, handler: Handler, index: int, ready: Awaitable[object]
    ) -> web.StreamResponse:
        await ready
        return await through(request, handler, index, True)

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
    return error_response(_HTTP_CODES.get(exc.status, Code.ERROR), message, headers, status=exc.status)


def _error(request: web.Request, exc: Exception) -> web.Response:
    if isinstance(exc, ApiError):
        return api_error_response(exc)
    if isinstance(exc, psycopg2.Error):
        mapped = database_error(exc)
        if mapped is not None:
            return api_error_response(mapped)
    elif isinstance(exc, web.RequestPayloadError):  # its text may quote the body's bytes
        return error_response(Code.BAD_REQUEST, BODY_UNREADABLE)
    elif isinstance(exc, TimeoutError):
        return error_response(Code.DATABASE_TIMEOUT, "the database did not answer in time; try again")
    # The path as sent (percent-encoded, no query string): a decoded %0A could forge a log line.
    log.error("unhandled error on %s %s", request.method, request.rel_url.raw_path, exc_info=exc)
    return error_response(Code.INTERNAL, "internal error; see the gateway log")
