"""GET /events/<table>?<filter>: a live GET, the changes of the rows that match.

The query is PostgREST's filter grammar for one table (gateway.grammar), as on
``GET /api/<table>``, plus ``select=`` (the columns of ``row`` and ``old``) and
``on=`` (the changes wanted: ``insert``, ``update``, ``delete``, ``truncate``; all by
default). A parameter ``on`` whose value is such a list is the operation filter;
any other ``on=...`` (``on=eq.x``) filters a column named ``on``. The filter is
compiled for the table by gateway.predicate, which refuses, with a 400 naming the
column and the operator, what it cannot evaluate as Postgres does; ``order``,
``limit``, ``offset``, ``on_conflict`` and ``columns`` mean nothing to a stream and
are refused too.

The stream is the same as ``/events?topic=<table>``'s (gateway.stream: preamble,
resume with Last-Event-ID, heartbeat, limits, the token's grant for the table's
topic, its expiry), except that the hub delivers it the view's changes
(gateway.views: moves in and out as inserts and deletes) and a resume replays the
table's events through the same view.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from aiohttp import web

from .auth import Grant, grant_of
from .catalog import Table
from .codes import Code
from .errors import ApiError, error_response_for
from .grammar import Filter, GrammarError, SelectItem, parse_filters, parse_query
from .pgrest_sql import undefined_column
from .predicate import compile_filters
from .state import TABLES
from .stream import MAX_TOPICS, parse_cursor, serve
from .views import ALL_CHANGES, View

# Parameters of the stream, not of the filter (the token, the cursor of a first connection).
STREAM_PARAMS = frozenset({"lastEventId", "access_token"})
_ON = re.compile(r"(insert|update|delete|truncate)(,(insert|update|delete|truncate))*")
_ON_HINT = "on=insert,update,delete,truncate (any of them); a column named on is filtered as on=eq.value"


def rows_claim(grant: Grant, table: Table) -> tuple[Filter, ...]:
    """The token's ``rows`` filter for ``table`` (``{"rows": {"todos": "owner=eq.u1"}}``), () if none.

    It narrows what ``topics`` grant: a stream of the table sees only rows inside it
    (ANDed with the stream's own filter, in replays too; a row an update takes out of
    it arrives as a delete). A claim that is not an object of filter strings, or a
    filter the hub cannot evaluate, refuses the request: the token is at fault, and
    guessing could leak rows.
    """
    rows = grant.claims.get("rows") if grant.claims is not None else None
    if rows is None:
        return ()
    text = rows.get(table.name) if isinstance(rows, dict) else None
    if text is None and isinstance(rows, dict):
        return ()
    if not isinstance(text, str):
        raise ApiError(
            Code.INVALID_CLAIMS, 'the token\'s rows claim must map tables to filters: {"todos": "owner=eq.me"}'
        )
    try:
        filters = parse_filters(text)
        compile_filters(table, filters)
    except GrammarError as error:
        raise ApiError(
            Code.INVALID_CLAIMS,
            f"the token's rows filter for {table.name!r} is not PostgREST's grammar: {error.message}",
        ) from None
    except ApiError as error:
        raise ApiError(
            Code.FORBIDDEN, f"the token's rows filter for {table.name!r} cannot be applied here: {error.message}"
        ) from None
    return filters


def parse_view(
    table: Table, params: list[tuple[str, str]], label: int | None = None, narrowed: tuple[Filter, ...] = ()
) -> View:
    """The view a query string asks for, compiled for ``table`` (ANDed with ``narrowed``,
    the token's rows filter); ApiError for a bad one."""
    on: set[str] | None = None
    rest: list[tuple[str, str]] = []
    for key, value in params:
        if key in STREAM_PARAMS:
            continue
        if key == "on" and _ON.fullmatch(value):
            on = (on or set()) | set(value.split(","))
        elif key == "on" and "." not in value:
            raise ApiError(Code.PARSE_ERROR, f"on={value} names no change", hint=_ON_HINT)
        else:
            rest.append((key, value))
    try:
        query = parse_query(rest)
    except GrammarError as error:
        raise ApiError(Code.PARSE_ERROR, error.message, details=error.details, hint=error.hint) from None
    shaped = [
        name
        for name, present in (
            ("order", bool(query.order)),
            ("limit", query.limit is not None),
            ("offset", query.offset is not None),
            ("on_conflict", query.on_conflict is not None),
            ("columns", query.columns is not None),
        )
        if present
    ]
    if shaped:
        raise ApiError(
            Code.PARSE_ERROR,
            f"{', '.join(shaped)} shape a result, not a stream of changes",
            hint="a stream takes filters, select= and on=; GET /api/<table> takes order, limit and offset",
        )
    select = _select(table, query.select)
    filters = query.filters + narrowed
    compiled = compile_filters(table, filters)
    return View(table.name, filters, compiled, select, frozenset(on) if on else ALL_CHANGES, label)


def _select(table: Table, items: tuple[SelectItem, ...] | None) -> tuple[str, ...] | None:
    if items is None or any(item.field is None for item in items):
        return None  # * (with or without more columns) is every column
    names: list[str] = []
    for item in items:
        assert item.field is not None
        name = item.field.column
        if item.alias is not None or item.cast is not None or item.field.path:
            raise ApiError(
                Code.PARSE_ERROR,
                f"select= on a stream takes column names only, not aliases, casts or JSON paths ({name})",
                hint="select=id,title,done",
            )
        if name not in table.columns:
            raise undefined_column(table, name)
        names.append(name)
    return tuple(dict.fromkeys(names))


def _table(request: web.Request, name: str) -> Table:
    tables: dict[str, Table] = request.app[TABLES]
    table = tables.get(name)
    if table is None:
        exposed = ", ".join(sorted(tables)) or "none"
        raise ApiError(Code.UNKNOWN_TABLE, f"table {name!r} is not exposed; exposed: {exposed}")
    return table


async def events(request: web.Request) -> web.StreamResponse:
    """Open a filtered stream: validate and compile, then stream as /events does."""
    try:
        table = _table(request, request.match_info["table"])
        cursor = parse_cursor(request)
        grant = grant_of(request)
        grant.require_read(table.name)
        view = parse_view(table, list(request.query.items()), narrowed=rows_claim(grant, table))
    except Exception as exc:
        return error_response_for(request, exc)
    return await serve(request, grant, cursor, [], (view,))


async def events_of_views(request: web.Request) -> web.StreamResponse:
    """``GET /events?view=<table>?<query>&view=...``: several filtered views on one connection.

    Each ``view=`` value is what follows ``/events/`` in a filtered stream's URL,
    encoded as one query value (``encodeURIComponent("todos?done=is.false")``). Each
    event's data says which view it is for (``"view": 0`` for the first); an event
    that changes several views comes once per view, in the order of the ``view=``
    parameters, with its one id. Topics and views do not mix on one connection.
    """
    try:
        if "topic" in request.query:
            raise ApiError(
                Code.PARSE_ERROR,
                "a stream holds topics or views, not both",
                hint="open one connection for ?topic=... and one for ?view=...",
            )
        texts = request.query.getall("view")
        if len(texts) > MAX_TOPICS:
            raise ApiError(Code.TOO_MANY_TOPICS, f"at most {MAX_TOPICS} views per connection, got {len(texts)}")
        cursor = parse_cursor(request)
        grant = grant_of(request)
        views = []
        for label, text in enumerate(texts):
            name, _, query = text.partition("?")
            table = _table(request, name)
            grant.require_read(table.name)
            try:
                params = parse_qsl(query, keep_blank_values=True)
            except ValueError as error:  # a bad escape the decoder cannot read
                raise ApiError(Code.PARSE_ERROR, f"view={text} is not a query string: {error}") from None
            views.append(parse_view(table, params, label, rows_claim(grant, table)))
    except Exception as exc:
        return error_response_for(request, exc)
    return await serve(request, grant, cursor, [], tuple(views))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/events/{table}", events)
