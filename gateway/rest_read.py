"""GET /api/<table> and GET /api/<table>/<pk>: one SELECT, the rows as the client asked for them.

The statement is ``SELECT row_to_json(t.*)::text FROM <table> AS t WHERE ... ORDER BY
... LIMIT ... OFFSET ...`` for the common read (``row_to_json(t.*)``: ``t.*`` is always
the whole row, where ``t`` alone would be a column of that name), with ``select=``
a subquery of the listed columns, and for CSV one text per column. The order is the
primary key unless ``order=`` says otherwise, so pages are stable. ``Prefer:
count=exact`` adds the count to the same statement (one round trip); ``planned``
asks the planner (``EXPLAIN``), ``estimated`` counts up to the page cap and asks the
planner past it, as PostgREST does.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from . import prefer, ranges
from .api_db import Session, session
from .api_request import key_filter, not_found, query_of, table_of
from .auth import grant_of
from .catalog import Table
from .grammar import Filter, Query
from .pgrest_sql import Params, as_json, as_text, default_order, order_by, projection, table_sql, where
from .representation import Media, negotiate, render, response
from .state import SETTINGS


def select_statement(
    table: Table, query: Query, filters: tuple[Filter, ...], media: Media, page: ranges.Page, params: Params
) -> tuple[str, str | None, list[str]]:
    """The page's statement, the WHERE clause (for a count), and the output names (for CSV)."""
    cond = where(table, filters, params)
    order = order_by(table, query.order, params) or default_order(table)
    source = table_sql(table) + " AS t"
    if cond is not None:
        source += " WHERE " + cond
    if order is not None:
        source += " ORDER BY " + order
    source += " LIMIT " + params.add(page.limit)
    if page.offset:
        source += " OFFSET " + params.add(page.offset)
    if media is Media.CSV:
        columns = projection(table, query.select, params)
        return f"SELECT {as_text(columns)} FROM {source}", cond, [n for _, n in columns]
    if query.select is None:
        return "SELECT row_to_json(t.*)::text FROM " + source, cond, []
    return as_json(projection(table, query.select, params), source), cond, []


def _counted(table: Table, cond: str | None) -> str:
    return table_sql(table) + " AS t" + (" WHERE " + cond if cond is not None else "")


async def _planned(s: Session, table: Table, cond: str | None, params: Params) -> int:
    await s.execute("EXPLAIN (FORMAT JSON) SELECT 1 FROM " + _counted(table, cond), params.values)
    (plan,) = (await s.fetchall())[0]
    document = plan if isinstance(plan, list) else json.loads(plan)
    return int(document[0]["Plan"]["Plan Rows"])


async def read(
    request: web.Request, table: Table, query: Query, filters: tuple[Filter, ...], media: Media
) -> tuple[list[tuple[Any, ...]], list[str], ranges.Page, int | None, prefer.Preferences]:
    """Run the read; the page's rows (payload first), the CSV names, the page and the total if asked."""
    prefs = prefer.parse(request.headers.getall("Prefer", ())) if "Prefer" in request.headers else prefer.NONE
    cap = request.app[SETTINGS].page_limit
    page = ranges.page(query.limit, query.offset, request.headers.get("Range"), cap)
    params = Params()
    statement, cond, names = select_statement(table, query, filters, media, page, params)
    total: int | None = None
    async with session(request) as s:
        if prefs.count is None:
            await s.execute(statement, params.values)
            return await s.fetchall(), names, page, None, prefs
        if prefs.count == "planned":
            total = await _planned(s, table, cond, params)
            await s.execute(statement, params.values)
            return await s.fetchall(), names, page, total, prefs
        limit = " LIMIT " + params.add(cap + 1) if prefs.count == "estimated" else ""
        both = (
            f"SELECT c.n, p.* FROM (SELECT count(*) AS n FROM (SELECT 1 FROM {_counted(table, cond)}{limit}) AS x) AS c"
            f" LEFT JOIN LATERAL (SELECT true AS pgrst_row, q.* FROM ({statement}) AS q) AS p ON true"
        )
        await s.execute(both, params.values)
        rows = await s.fetchall()
        total = int(rows[0][0])
        if prefs.count == "estimated" and total > cap:
            total = max(total, await _planned(s, table, cond, params))
    return [row[2:] for row in rows if row[1] is not None], names, page, total, prefs


async def list_rows(request: web.Request) -> web.Response:
    table = table_of(request)
    grant_of(request).require_read(table.name)
    query = query_of(request)
    media = negotiate(request.headers.get("Accept"))
    rows, names, page, total, prefs = await read(request, table, query, query.filters, media)
    if total is not None and page.offset > total:
        raise ranges.out_of_bounds(page.offset, total)
    body, media_type = render(media, rows, names)
    headers = {"Content-Range": ranges.content_range(page.offset, len(rows), total)}
    applied = prefs.applied("count", "handling")
    if applied:
        headers["Preference-Applied"] = applied
    return response(body, media_type, ranges.status(page.offset, len(rows), total), headers)


async def get_row(request: web.Request) -> web.Response:
    """The row as an object (404 if there is none): ``?<pk>=eq.<pk>`` with the single-object media type."""
    table = table_of(request)
    pk = request.match_info["pk"]
    condition = key_filter(table, pk)
    grant_of(request).require_read(f"{table.name}/{pk}")
    query = query_of(request)
    media = negotiate(request.headers.get("Accept"))
    rows, names, _, _, _ = await read(request, table, query, (condition, *query.filters), media)
    if not rows:
        raise not_found(table, pk)
    body, media_type = render(Media.OBJECT if media is Media.JSON else media, rows, names)
    return response(body, media_type)
