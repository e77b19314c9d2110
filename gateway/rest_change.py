"""PATCH and DELETE on /api/<table>?<filters> and on /api/<table>/<pk>: one statement each.

They change the rows the filters select; without a filter they are refused
(PostgREST would change every row; we choose safety). ``limit``, ``offset`` and
``order`` narrow them, as in PostgREST's limited update and delete. The answer is
204 without a body unless ``Prefer: return=representation`` asks for the rows (see
:mod:`gateway.mutation`); ``/api/<table>/<pk>`` answers the same for its one row, as
an object, and 404 when there is no such row.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import prefer, ranges
from .api_request import key_filter, not_found, query_of, table_of
from .auth import grant_of
from .body import read_json
from .catalog import Table
from .codes import Code
from .errors import ApiError
from .grammar import Filter, Query
from .members import member_texts
from .mutation import answer_headers, returning, run, value, with_returning, writable
from .pgrest_sql import Params, ident, order_by, table_sql, where
from .representation import Media, negotiate, render, response


def _limited(table: Table, query: Query, cond: str, params: Params) -> str:
    """The WHERE clause, narrowed to ``limit`` rows (after ``offset``, in ``order``) when asked.

    PostgREST's limited update and delete: the rows are chosen by their ``ctid`` in a
    subquery, as PostgREST does (a row a concurrent writer moves meanwhile is skipped).
    """
    if query.limit is None and query.offset is None and not query.order:
        return cond
    chosen = f"SELECT t.ctid FROM {table_sql(table)} AS t WHERE {cond}"
    order = order_by(table, query.order, params)
    if order is not None:
        chosen += " ORDER BY " + order
    if query.limit is not None:
        chosen += " LIMIT " + params.add(query.limit)
    if query.offset:
        chosen += " OFFSET " + params.add(query.offset)
    return f"t.ctid = ANY(ARRAY({chosen}))"


async def _change(
    request: web.Request, table: Table, query: Query, filters: tuple[Filter, ...], patch: bool
) -> tuple[list[tuple[Any, ...]], int, list[str], Media, prefer.Preferences]:
    grant_of(request).require_write(table.name)
    prefs = prefer.parse(request.headers.getall("Prefer", ()))
    media = negotiate(request.headers.get("Accept"))
    if not filters:
        raise ApiError(
            Code.UNFILTERED_WRITE,
            f"a {request.method} on /api/{table.name} needs a filter: without one it would change every row",
            hint=f"filter the rows: /api/{table.name}?id=eq.1 (to change all of them on purpose: ?id=not.is.null)",
        )
    params = Params()
    if patch:
        body, text = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(Code.INVALID_BODY, "a PATCH body is one JSON object of column: value")
        names = [n for n in query.columns if n in body] if query.columns is not None else list(body)
        if query.columns is not None:
            for name in query.columns:
                writable(table, name)
        columns = [writable(table, name) for name in names]
        if not columns:
            raise ApiError(Code.EMPTY_UPDATE, "the body names no column to change")
        texts = member_texts(text) if any(c.keeps_text for c in columns) else None
        sets = ", ".join(f"{ident(c.name)} = {params.add(value(c, body, texts))}" for c in columns)
        mutation = f"UPDATE {table_sql(table)} AS t SET {sets}"
    else:
        mutation = f"DELETE FROM {table_sql(table)} AS t"
    cond = where(table, filters, params)
    assert cond is not None
    mutation += " WHERE " + _limited(table, query, cond, params)
    how, names = returning(table, query, prefs, media, inserted=False)
    if media is Media.OBJECT and how == "none":
        how = "keys"
    statement = with_returning(mutation, table, query, how, media, params, upsert=False)
    rows, count = await run(request, statement, params, how, media, prefs)
    return rows, count, names, media, prefs


def _answer(
    table: Table,
    rows: list[tuple[Any, ...]],
    count: int,
    names: list[str],
    media: Media,
    prefs: prefer.Preferences,
    patch: bool,
) -> web.Response:
    # With Prefer: count=, the rows changed are the total, as PostgREST answers
    # (PATCH 0-(N-1)/N, DELETE */N); without it, the total is unknown.
    total = count if prefs.count in ("exact", "planned", "estimated") else None
    if patch:
        content_range = ranges.content_range(0, count, total)
    else:
        content_range = f"*/{'*' if total is None else total}"
    headers = answer_headers(prefs, content_range, "return", "count", "tx", "handling")
    if prefs.return_ != "representation":
        return web.Response(status=204, headers=headers)
    payload, media_type = render(media, rows, names, skip=1 + len(table.primary_key))
    return response(payload, media_type, 200, headers)


async def update_rows(request: web.Request) -> web.Response:
    table = table_of(request)
    query = query_of(request)
    rows, count, names, media, prefs = await _change(request, table, query, query.filters, patch=True)
    return _answer(table, rows, count, names, media, prefs, patch=True)


async def delete_rows(request: web.Request) -> web.Response:
    table = table_of(request)
    query = query_of(request)
    rows, count, names, media, prefs = await _change(request, table, query, query.filters, patch=False)
    return _answer(table, rows, count, names, media, prefs, patch=False)


async def _by_key(request: web.Request, patch: bool) -> web.Response:
    table = table_of(request)
    pk = request.match_info["pk"]
    condition = key_filter(table, pk)
    query = query_of(request)
    rows, count, names, media, prefs = await _change(request, table, query, (condition, *query.filters), patch)
    if count == 0:
        raise not_found(table, pk)
    if prefs.return_ != "representation":
        return web.Response(status=204, headers=answer_headers(prefs, "*/*", "return", "tx", "handling"))
    single = Media.OBJECT if media is Media.JSON else media
    payload, media_type = render(single, rows, names, skip=1 + len(table.primary_key))
    return response(payload, media_type, 200, answer_headers(prefs, "*/*", "return", "tx", "handling"))


async def update_row(request: web.Request) -> web.Response:
    return await _by_key(request, patch=True)


async def delete_row(request: web.Request) -> web.Response:
    return await _by_key(request, patch=False)
