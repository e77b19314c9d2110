"""POST /api/<table>: one object or an array of them, in one ``INSERT ... VALUES (...), (...)``.

So a bulk insert is all or nothing. The columns are ``?columns=`` if given (keys
outside it are ignored; a missing key is NULL, or the column's default with ``Prefer:
missing=default``), else the first object's keys, and then every object must have
exactly those keys (PostgREST's "All object keys must match"): a key left out of a
later object would otherwise become NULL where the client may have meant the default.
``Prefer: resolution=merge-duplicates|ignore-duplicates`` makes it an upsert on
``?on_conflict=`` or the primary key. The answer is 201 without a body unless
``Prefer: return=representation`` (the rows) or ``return=headers-only`` (the
``Location`` of a single row, as in PostgREST only then) asks; see :mod:`gateway.mutation` for what it returns.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from . import prefer
from .api_request import query_of, table_of
from .auth import grant_of
from .body import read_json
from .catalog import Column, Table
from .codes import Code
from .errors import ApiError
from .grammar import Query
from .members import element_member_texts, member_texts
from .mutation import answer_headers, returning, run, value, with_returning, writable
from .pgrest_sql import Params, column, ident, projection, table_sql
from .representation import Media, negotiate, one, render, response


def _objects(body: Any) -> tuple[list[dict[str, Any]], bool]:
    """The body's objects, and whether it was one object rather than an array."""
    if isinstance(body, dict):
        return [body], True
    if isinstance(body, list) and all(isinstance(item, dict) for item in body):
        return body, False
    raise ApiError(
        Code.INVALID_BODY,
        "the body must be a JSON object of column: value, or an array of such objects",
        hint='[{"title": "a"}, {"title": "b"}]',
    )


def _insert_columns(table: Table, query: Query, objects: list[dict[str, Any]]) -> list[Column]:
    if query.columns is not None:
        return [writable(table, name) for name in query.columns]
    if not objects:
        return []
    keys = list(objects[0])
    first = set(keys)
    for index, item in enumerate(objects[1:], start=1):
        if set(item) != first:
            differ = sorted(first ^ set(item))
            raise ApiError(
                Code.INVALID_BODY,
                "All object keys must match",
                details=f"object {index} differs from the first in {', '.join(map(repr, differ))}",
                hint="send every object with the same keys, or name the columns: ?columns=a,b",
            )
    return [writable(table, name) for name in keys]


def _values_rows(
    columns: list[Column], objects: list[dict[str, Any]], text: str, single: bool, params: Params, defaults: bool
) -> str:
    texts: list[dict[str, str]] | None = None
    if any(col.keeps_text for col in columns):
        texts = [member_texts(text)] if single else element_member_texts(text)
    rows = []
    for index, item in enumerate(objects):
        cells: list[str] = []
        for col in columns:
            if col.name not in item:
                cells.append("DEFAULT" if defaults else "NULL")
            else:
                cells.append(params.add(value(col, item, texts[index] if texts else None)))
        rows.append("(" + ", ".join(cells) + ")")
    return ", ".join(rows)


def _location(table: Table, row: tuple[Any, ...]) -> str | None:
    """``/api/<table>/<pk>`` for a single-column key, else the filtered form ``?a=eq.1&b=eq.2``."""
    keys = row[1 : 1 + len(table.primary_key)]
    if not keys or any(k is None for k in keys):
        return None
    if len(keys) == 1:
        return f"/api/{table.name}/{quote(keys[0], safe='')}"
    pairs = "&".join(
        f"{quote(k, safe='')}=eq.{quote(v, safe='')}" for k, v in zip(table.primary_key, keys, strict=True)
    )
    return f"/api/{table.name}?{pairs}"


async def create_rows(request: web.Request) -> web.Response:
    table = table_of(request)
    grant_of(request).require_write(table.name)
    query = query_of(request)
    prefs = prefer.parse(request.headers.getall("Prefer", ()))
    media = negotiate(request.headers.get("Accept"))
    if query.filters or query.limit is not None or query.offset is not None or query.order:
        raise ApiError(
            Code.PARSE_ERROR,
            "a POST takes no filters, limit, offset or order",
            hint="POST /api/<table>?columns=a,b&on_conflict=a&select=a,b",
        )
    body, text = await read_json(request)
    objects, single = _objects(body)
    columns = _insert_columns(table, query, objects)
    params = Params()
    upsert = prefs.resolution is not None and bool(query.on_conflict or table.primary_key)
    if not objects:
        rows: list[tuple[Any, ...]] = []
        if media is Media.OBJECT:
            one(rows)
        headers = answer_headers(prefs, "*/*", "return", "tx", "handling")
        if prefs.return_ == "representation":
            payload, media_type = render(media, rows, [n for _, n in projection(table, query.select, Params())])
            return response(payload, media_type, 201, headers)
        return web.Response(status=201, headers=headers)
    if columns:
        targets_sql = ", ".join(ident(c.name) for c in columns)
        values = _values_rows(columns, objects, text, single, params, prefs.missing == "default")
    else:  # every object is {}: each row all defaults
        targets_sql = ident(next(iter(table.columns)))
        values = ", ".join("(DEFAULT)" for _ in objects)
    mutation = f"INSERT INTO {table_sql(table)} AS t ({targets_sql}) VALUES {values}"
    if upsert:
        targets = [column(table, name) for name in query.on_conflict or table.primary_key]
        mutation += " ON CONFLICT (" + ", ".join(ident(c.name) for c in targets)
        updates = columns
        if prefs.resolution == "ignore-duplicates" or not updates:
            mutation += ") DO NOTHING"
        else:
            sets = ", ".join(f"{ident(c.name)} = EXCLUDED.{ident(c.name)}" for c in updates)
            mutation += ") DO UPDATE SET " + sets
    how, names = returning(table, query, prefs, media, inserted=True)
    if media is Media.OBJECT and how == "none":
        how = "keys"  # the count decides, so the statement must return its rows
    statement = with_returning(mutation, table, query, how, media, params, upsert)
    rows, count = await run(request, statement, params, how, media, prefs)
    status = 201
    if upsert and how != "none" and prefs.resolution == "merge-duplicates" and not any(r[0] for r in rows):
        status = 200  # every row was there already: PostgREST's 200
    kinds = ("return", "count", "tx", "handling", "missing") + (("resolution",) if upsert else ())
    headers = answer_headers(prefs, f"*/{count}" if prefs.count in ("exact", "estimated") else "*/*", *kinds)
    if prefs.return_ == "headers-only" and count == 1 and table.primary_key:
        location = _location(table, rows[0])
        if location is not None:
            headers["Location"] = location
    if prefs.return_ != "representation":
        return web.Response(status=status, headers=headers)
    payload, media_type = render(media, rows, names, skip=1 + len(table.primary_key))
    return response(payload, media_type, status, headers)
