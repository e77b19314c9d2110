"""A request's JSON body, for /api and /api/rpc: read within a time bound, said to be JSON, parsed exactly.

The body is read whole within GATEWAY_REQUEST_BODY_TIMEOUT, must carry a JSON
``Content-Type``, and is parsed by :mod:`gateway.exactjson` (numbers kept as sent,
no ``NaN``, no key twice). The text is kept next to the value, so a ``json`` column
can store a member's text exactly as sent (:mod:`gateway.members`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from . import exactjson
from .codes import Code
from .errors import ApiError
from .members import decode_body
from .state import SETTINGS


def is_json(media_type: str) -> bool:
    """``application/json`` or a ``+json`` type such as ``application/merge-patch+json``."""
    if media_type == "application/json":
        return True
    subtype = media_type.removeprefix("application/")
    return subtype != media_type and subtype.endswith("+json") and len(subtype) > len("+json")


def require_json(request: web.Request) -> None:
    """A body must say it is JSON; a missing Content-Type is refused too.

    Stricter than PostgREST (which reads a missing one as JSON) on purpose: ``curl -d``
    sends ``application/x-www-form-urlencoded`` unless told otherwise, and a body
    whose sender did not say what it is should not be guessed at.
    """
    header = request.headers.get("Content-Type")
    if header is not None and is_json(header.split(";", 1)[0].strip().lower()):
        return
    got = f"got {header[:100]!r}" if header is not None else "the request has none"
    raise ApiError(
        Code.UNSUPPORTED_MEDIA_TYPE,
        f"send the body as JSON with the header Content-Type: application/json ({got}); "
        "curl -d sends application/x-www-form-urlencoded unless you add -H 'Content-Type: application/json'",
    )


async def read_body(request: web.Request) -> bytes:
    """The whole body, within GATEWAY_REQUEST_BODY_TIMEOUT: a client that trickles it is refused.

    Without a bound, a body sent a byte a second (or chunked framing that stops
    short) holds a connection and a handler for as long as the client likes. aiohttp
    raises 413 itself past client_max_size (GATEWAY_MAX_BODY).
    """
    seconds = request.app[SETTINGS].request_body_timeout
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise ApiError(
            Code.REQUEST_TIMEOUT,
            f"the request body did not arrive within {seconds:g} s (GATEWAY_REQUEST_BODY_TIMEOUT); send it whole",
            close=True,
        ) from None


async def read_json(request: web.Request) -> tuple[Any, str]:
    """The JSON body's value and text; an empty body is refused (PostgREST reads it as ``{}``... for
    PATCH only; here a write says what it writes)."""
    require_json(request)
    raw = await read_body(request)
    if not raw.strip():
        raise ApiError(Code.BAD_JSON, "the body is empty; send a JSON object (or an array of objects for POST)")
    try:
        value = exactjson.loads(raw)
    except exactjson.JSONError as exc:
        raise ApiError(Code.BAD_JSON, f"the body is not valid JSON: {exc}") from None
    return value, decode_body(raw)
