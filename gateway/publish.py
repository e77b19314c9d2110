"""POST /events/publish: ``gateway.publish(topic, payload)`` over HTTP, as Mercure's hub takes a POST.

The body is one JSON object, ``{"topic": "chat/room-1", "data": <any JSON>}`` (``data``
may be left out: the payload is then ``null``), sent as ``application/json``. The
handler calls the SQL function itself, so an event published here is one journal
row like any other: delivered in commit order, resumable by its id, pruned by the
same retention. The answer is a 201 with ``{"id": <event id>, "topic": ...}``: the
row is committed when it is sent, so a subscriber that resumes from any earlier
cursor will get it.

What may be published:

* only custom topics. A topic that is an exposed table's (``todos``) or one of its
  rows' (``todos/42``) is refused: on those topics a subscriber expects row changes
  captured by the table's triggers (with ``table``, ``op`` and ``row`` of that table),
  and a token's ``rows`` filter for the table could not hold for a payload it cannot read.
* with auth on, the topics the token's ``publish`` claim grants (patterns matched as
  ``topics`` grants are, :func:`gateway.auth.topic_matches`); a token without the
  claim publishes nothing. ``topics`` (what it may read) and ``write`` (which tables
  it may change) grant no publishing. With auth off anyone may publish, as anyone may
  write rows through /api then.
* a payload of at most GATEWAY_SUBSCRIBER_BUFFER bytes less the event's framing:
  a larger event would end the stream of every subscriber that receives it while
  replaying (a held subscriber's queue past its bound is a slow consumer). The body
  as a whole is bounded by GATEWAY_MAX_BODY first (aiohttp's 413).

``data`` is stored as the exact text the client sent for it (the function's argument
is ``json``, which keeps text), so its digits and key order arrive as they were sent.
The statement runs as the gateway's own database role: the journal is the gateway's
table, and the ``publish`` claim, not a database grant, is what allows a publish.
"""

from __future__ import annotations

from typing import Any

import psycopg2
from aiohttp import web

from . import exactjson
from .auth import grant_of
from .body import read_body, require_json
from .codes import Code
from .errors import ApiError
from .members import decode_body, member_texts
from .state import POOL, SETTINGS, TABLES
from .stream import is_topic

PATH = "/events/publish"
PUBLISH = "SELECT gateway.publish(%(topic)s, %(payload)s::json)"
# The bytes an event adds around its payload besides the topic (id, event and data
# lines, the data object's other members): generous, so the bound is never passed.
FRAMING = 200
_KEYS = frozenset({"topic", "data"})


async def publish(request: web.Request) -> web.Response:
    """Publish one event; answer 201 with its id once its journal row is committed."""
    require_json(request)
    raw = await read_body(request)
    topic, payload = _parse(raw)
    check_topic(request, topic)
    grant_of(request).require_publish(topic)
    bound = request.app[SETTINGS].subscriber_buffer
    size = len(payload.encode()) + len(topic.encode()) + FRAMING if payload is not None else 0
    if size > bound:
        raise ApiError(
            Code.PAYLOAD_TOO_LARGE,
            f"the event would be about {size} bytes; a subscriber holds at most {bound} "
            "(GATEWAY_SUBSCRIBER_BUFFER), so it could not be delivered to one that is resuming",
        )
    try:
        async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
            await cur.execute(PUBLISH, {"topic": topic, "payload": payload})
            (event_id,) = await cur.fetchone()
    except psycopg2.Error as exc:
        if exc.pgcode == "22023" and (exc.diag.message_primary or "").startswith("invalid topic"):
            raise _bad_topic(topic) from None  # a character only the SQL rule refuses (a C1 control)
        raise
    body = exactjson.dumps({"id": int(event_id), "topic": topic})
    return web.Response(status=201, text=body, content_type="application/json")


def _parse(raw: bytes) -> tuple[str, str | None]:
    """The body's topic, and its ``data`` member's JSON text exactly as sent (None if absent)."""
    try:
        body: Any = exactjson.loads(raw or b"null")
    except exactjson.JSONError as exc:
        raise ApiError(Code.BAD_JSON, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(Code.BAD_PUBLISH, "the body must be a JSON object", hint=_SHAPE)
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise ApiError(Code.BAD_PUBLISH, f"the body has unknown key {unknown[0]!r}", hint=_SHAPE)
    topic = body.get("topic")
    if not isinstance(topic, str) or isinstance(topic, exactjson.Number):  # a Number is its literal's text
        raise ApiError(Code.BAD_PUBLISH, "the body's 'topic' must be a string", hint=_SHAPE)
    if "data" not in body:
        return topic, None
    return topic, member_texts(decode_body(raw))["data"]


_SHAPE = '{"topic": "chat/room-1", "data": {"text": "hi"}}'


def check_topic(request: web.Request, topic: str) -> None:
    """Refuse a malformed topic, and a table's or a row's topic (only triggers write those)."""
    if not is_topic(topic):
        raise _bad_topic(topic)
    table = request.app[TABLES].get(topic) or request.app[TABLES].get(topic.partition("/")[0])
    if table is not None:
        raise ApiError(
            Code.TABLE_TOPIC,
            f"topic {topic!r} is table {table.name!r}'s: its events are the table's row changes",
            hint=f"publish to a topic of your own, such as {table.name}-notes/1 or chat/room-1",
        )


def _bad_topic(topic: str) -> ApiError:
    return ApiError(Code.BAD_TOPIC, f"topic {topic!r} must be 1 to 200 characters without spaces or control characters")


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, publish)
