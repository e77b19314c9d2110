"""Every failure leaves as JSON: ``{"error": {"code": "...", "message": "..."}}``.

Handlers raise :class:`ApiError` for what they detect themselves; database errors
are mapped from their SQLSTATE class (a bad value is the client's 400, a broken
constraint its 409/422, an unreachable server a 503). Anything else is a bug: it
is logged with its traceback and the client gets a 500 without one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

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


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
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


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every exception into a JSON error response (unless the stream already began)."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        message = exc.reason if exc.status != 413 else str(exc.text or exc.reason)
        if exc.status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}; allowed: {headers.get('Allow', '')}"
        return error_response(exc.status, _HTTP_CODES.get(exc.status, "error"), message, headers)
    except psycopg2.Error as exc:
        mapped = database_error(exc)
        if mapped is None:
            log.exception("unexpected database error on %s %s", request.method, request.path)
            return error_response(500, "internal", "internal error; see the gateway log")
        return error_response(mapped.status, mapped.code, mapped.message)
    except TimeoutError:
        return error_response(503, "database_unavailable", "the database did not answer in time; try again")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the gateway log")
