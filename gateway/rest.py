"""JSON CRUD over the exposed tables: /api/<table> and /api/<table>/<pk>.

Every request is a single statement, so it either changes one row completely or
changes nothing; with auth on it runs in a transaction as the token's database role
(:func:`gateway.request_role.role_cursor`), otherwise it autocommits. Values travel
as quoted literals without a cast (see :mod:`gateway.literals`), so Postgres
applies the column's type as it does to any hand-written statement: it alone
decides what a valid value is, and its message reaches the client as a 400. A row
leaves as ``row_to_json(t.*)``: ``t.*`` always means the whole row, where ``t``
alone would be the table's column of that name, if it has one. The capture
trigger, not this module, turns the write into an event.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

from aiohttp import web
from psycopg2 import sql

from . import exactjson
from .auth import grant_of
from .catalog import Column, Identifier, Table, placeholder_safe
from .codes import Code
from .errors import ApiError
from .literals import to_param
from .members import decode_body, member_texts
from .request_role import role_cursor
from .state import POOL, SETTINGS, TABLES

RESERVED_PARAMS = frozenset({"limit", "offset", "order", "access_token"})


def _table(request: web.Request) -> Table:
    tables: dict[str, Table] = request.app[TABLES]
    name = request.match_info["table"]
    table = tables.get(name)
    if table is None:
        exposed = ", ".join(sorted(tables)) or "none"
        raise ApiError(Code.UNKNOWN_TABLE, f"table {name!r} is not exposed; exposed: {exposed}")
    return table


def _column(table: Table, name: str) -> Column:
    column = table.columns.get(name)
    if column is None:
        raise ApiError(
            Code.UNKNOWN_COLUMN,
            f"table {table.name!r} has no column {name!r}; columns: {', '.join(table.columns)}",
        )
    return column


def _key(table: Table, raw: str) -> tuple[Column, str]:
    key = table.key
    if key is None:
        raise ApiError(
            Code.NO_SINGLE_KEY,
            f"table {table.name!r} has no single-column primary key; use GET /api/{table.name}?col=value",
        )
    return key, raw


def _is_json(media_type: str) -> bool:
    """``application/json`` or a ``+json`` type such as ``application/merge-patch+json``."""
    if media_type == "application/json":
        return True
    subtype = media_type.removeprefix("application/")
    return subtype != media_type and subtype.endswith("+json") and len(subtype) > len("+json")


def _require_json(request: web.Request) -> None:
    """A body must say it is JSON; a missing Content-Type is refused too.

    Stricter than PostgREST (which reads a missing one as JSON) on purpose: ``curl -d``
    sends ``application/x-www-form-urlencoded`` unless told otherwise, and a body
    whose sender did not say what it is should not be guessed at.
    """
    header = request.headers.get("Content-Type")
    if header is not None and _is_json(header.split(";", 1)[0].strip().lower()):
        return
    got = f"got {header[:100]!r}" if header is not None else "the request has none"
    raise ApiError(
        Code.UNSUPPORTED_MEDIA_TYPE,
        f"send the body as JSON with the header Content-Type: application/json ({got}); "
        "curl -d sends application/x-www-form-urlencoded unless you add -H 'Content-Type: application/json'",
    )


async def _read_object(request: web.Request) -> tuple[dict[str, Any], str]:
    """The body's JSON object, and the body's text (a ``json`` column keeps its member's text)."""
    _require_json(request)
    raw = await _read_body(request)
    try:
        body = exactjson.loads(raw or b"null")
    except exactjson.JSONError as exc:
        raise ApiError(Code.BAD_JSON, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(Code.BAD_JSON, "the body must be a JSON object of column: value")
    return body, decode_body(raw)


async def _read_body(request: web.Request) -> bytes:
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


def _writable(table: Table, body: tuple[dict[str, Any], str]) -> list[tuple[Column, Any]]:
    """(column, parameter) for each member; a ``json`` column gets the member's text as sent."""
    values, text = body
    pairs: list[tuple[Column, Any]] = []
    texts: dict[str, str] | None = None
    for name, value in values.items():
        column = _column(table, name)
        if column.generated:
            raise ApiError(Code.READ_ONLY_COLUMN, f"column {name!r} is generated by the database; leave it out")
        if column.keeps_text and value is not None:
            texts = member_texts(text) if texts is None else texts
            pairs.append((column, texts[name]))
        else:
            pairs.append((column, to_param(column, value)))
    return pairs


def _comparand(column: Column) -> sql.Composable:
    """The value a column is compared with: an untyped literal, as in plain SQL.

    Except for a composite column: its ``=`` takes any record, and Postgres cannot
    read an untyped literal as a record of no known type, so the value is cast to
    the column's type (a row type has no modifier that a cast could apply).
    """
    if column.is_composite:
        return sql.SQL("%s::") + sql.SQL(placeholder_safe(column.type_sql))
    return sql.Placeholder()


def _row_response(row_json: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=row_json, content_type="application/json", headers=headers)


async def _execute(cur: Any, query: sql.Composable, params: list[Any]) -> None:
    """Run one statement; a value the driver cannot send at all is the client's 400."""
    try:
        await cur.execute(query, params)
    except (ValueError, UnicodeEncodeError) as exc:  # NUL bytes, lone surrogates
        raise ApiError(Code.BAD_VALUE, f"a value cannot be stored as text: {exc}") from None


async def _one(request: web.Request, query: sql.Composable, params: list[Any]) -> tuple[Any, ...] | None:
    async with role_cursor(request.app[POOL], grant_of(request)) as cur:
        await _execute(cur, query, params)
        row: tuple[Any, ...] | None = await cur.fetchone()
        return row


def _not_found(table: Table, pk: str) -> ApiError:
    return ApiError(Code.NOT_FOUND, f"no row in {table.name!r} with {table.primary_key[0]} = {pk!r}")


_DIGITS = re.compile(r"[0-9]{1,18}")


def _int_param(request: web.Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw):  # int() would also take "1_0", " 5" and other scripts' digits
        raise ApiError(Code.BAD_PARAMETER, f"?{name}= takes a whole number (digits 0-9), got {raw[:40]!r}")
    value = int(raw)
    if maximum is not None and value > maximum:
        raise ApiError(Code.BAD_PARAMETER, f"?{name}= must be 0 to {maximum}, got {value}")
    return value


def _order(table: Table, raw: str | None) -> sql.Composable:
    if not raw:
        keys = table.primary_key or tuple(table.columns)[:1]
        return sql.SQL(", ").join(sql.SQL("t.{}").format(Identifier(k)) for k in keys)
    terms = []
    for part in raw.split(","):
        part = part.strip()
        descending = part.startswith("-")
        name = part.lstrip("-+")
        if "." in name:
            name, _, direction = name.rpartition(".")
            if direction not in ("asc", "desc"):
                raise ApiError(Code.BAD_PARAMETER, f"?order= direction must be asc or desc, got {direction!r}")
            descending = direction == "desc"
        column = _column(table, name)
        terms.append(sql.SQL("t.{} {}").format(Identifier(column.name), sql.SQL("DESC" if descending else "ASC")))
    return sql.SQL(", ").join(terms)


async def list_rows(request: web.Request) -> web.Response:
    table = _table(request)
    grant_of(request).require_read(table.name)
    limit = _int_param(request, "limit", request.app[SETTINGS].page_limit, request.app[SETTINGS].page_limit)
    offset = _int_param(request, "offset", 0)
    order = _order(table, request.query.get("order"))
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    for name, value in request.query.items():
        if name in RESERVED_PARAMS:
            continue
        column = _column(table, name)
        conditions.append(sql.SQL("t.{} = ").format(Identifier(column.name)) + _comparand(column))
        params.append(value)
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    query = sql.SQL("SELECT row_to_json(t.*)::text FROM {} AS t{} ORDER BY {} LIMIT %s OFFSET %s").format(
        table.ident, where, order
    )
    params += [limit, offset]
    async with role_cursor(request.app[POOL], grant_of(request)) as cur:
        await _execute(cur, query, params)
        rows = await cur.fetchall()
    return web.Response(text="[" + ",".join(row[0] for row in rows) + "]", content_type="application/json")


async def create_row(request: web.Request) -> web.Response:
    table = _table(request)
    grant_of(request).require_write(table.name)
    pairs = _writable(table, await _read_object(request))
    returning = sql.SQL(" RETURNING row_to_json(t.*)::text, {}::text").format(
        sql.SQL("t.{}").format(Identifier(table.key.name)) if table.key else sql.SQL("NULL")
    )
    if pairs:
        query = sql.SQL("INSERT INTO {} AS t ({}) VALUES ({})").format(
            table.ident,
            sql.SQL(", ").join(Identifier(column.name) for column, _ in pairs),
            sql.SQL(", ").join(sql.Placeholder() for _ in pairs),
        )
    else:
        query = sql.SQL("INSERT INTO {} AS t DEFAULT VALUES").format(table.ident)
    row = await _one(request, query + returning, [value for _, value in pairs])
    assert row is not None  # INSERT ... RETURNING always returns the row
    row_json, key = row
    headers = {"Location": f"/api/{table.name}/{quote(key, safe='')}"} if key is not None else None
    return _row_response(row_json, status=201, headers=headers)


async def get_row(request: web.Request) -> web.Response:
    table = _table(request)
    key, pk = _key(table, request.match_info["pk"])
    grant_of(request).require_read(f"{table.name}/{pk}")
    query = sql.SQL("SELECT row_to_json(t.*)::text FROM {} AS t WHERE t.{} = {}").format(
        table.ident, Identifier(key.name), _comparand(key)
    )
    row = await _one(request, query, [pk])
    if row is None:
        raise _not_found(table, pk)
    return _row_response(row[0])


async def update_row(request: web.Request) -> web.Response:
    table = _table(request)
    grant_of(request).require_write(table.name)
    key, pk = _key(table, request.match_info["pk"])
    pairs = _writable(table, await _read_object(request))
    if not pairs:
        raise ApiError(Code.EMPTY_UPDATE, "the body names no column to change")
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = ").format(Identifier(column.name)) + sql.Placeholder() for column, _ in pairs
    )
    query = (
        sql.SQL("UPDATE {} AS t SET {} WHERE t.{} = ").format(table.ident, assignments, Identifier(key.name))
        + _comparand(key)
        + sql.SQL(" RETURNING row_to_json(t.*)::text")
    )
    row = await _one(request, query, [value for _, value in pairs] + [pk])
    if row is None:
        raise _not_found(table, pk)
    return _row_response(row[0])


async def delete_row(request: web.Request) -> web.Response:
    table = _table(request)
    grant_of(request).require_write(table.name)
    key, pk = _key(table, request.match_info["pk"])
    query = (
        sql.SQL("DELETE FROM {} AS t WHERE t.{} = ").format(table.ident, Identifier(key.name))
        + _comparand(key)
        + sql.SQL(" RETURNING row_to_json(t.*)::text")
    )
    row = await _one(request, query, [pk])
    if row is None:
        raise _not_found(table, pk)
    return _row_response(row[0])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/{table}", list_rows)
    app.router.add_post("/api/{table}", create_row)
    app.router.add_get("/api/{table}/{pk}", get_row)
    app.router.add_patch("/api/{table}/{pk}", update_row)
    app.router.add_delete("/api/{table}/{pk}", delete_row)
