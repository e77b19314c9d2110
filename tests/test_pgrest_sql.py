"""The compiler from the grammar's tree to SQL, run against a real Postgres: which rows each filter selects.

Each case is a query string as a client sends it; the compiled WHERE clause runs on a
table whose rows are chosen so that every operator has rows on both sides. Cases
follow PostgREST's docs and its test suite (test/spec/Feature/Query/QuerySpec.hs,
AndOrParamsSpec.hs, JsonOperatorSpec.hs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import aiopg
import pytest

from gateway.catalog import Table, load_table
from gateway.db import apply_schema, create_pool
from gateway.errors import ApiError
from gateway.grammar import parse_query
from gateway.pgrest_sql import Params, as_json, default_order, ident, order_by, projection, table_sql, where

from .conftest import run_sql

SCHEMA = """
CREATE TABLE items (
    id    int PRIMARY KEY,
    name  text,
    n     int,
    flag  boolean,
    doc   jsonb,
    tags  text[],
    span  int4range,
    words tsvector,
    "a.b" text
);
INSERT INTO items VALUES
  (1, 'apple',  10,   true,  '{"k": "x", "n": 1, "arr": [1, 2]}', '{red,green}', '[1,5)',  NULL, 'dot'),
  (2, 'Banana', 20,   false, '{"k": "y", "n": 2, "arr": [3]}',    '{yellow}',    '[5,10)', NULL, NULL),
  (3, 'cherry', NULL, NULL,  '{"k": "x,y", "n": 3}',              '{red}',       '[20,30)', NULL, NULL),
  (4, 'a,b(c)', 40,   true,  NULL,                                '{}',          NULL,     NULL, 'q"uote');
UPDATE items SET words = to_tsvector('english', CASE id WHEN 1 THEN 'the quick fox'
    WHEN 2 THEN 'lazy dogs sleep' WHEN 3 THEN 'quick brown dogs' END);  -- stemmed, as to_tsquery's words are
"""


@pytest.fixture
async def items(database: str) -> AsyncIterator[tuple[aiopg.Connection, Table]]:
    await run_sql(database, SCHEMA)
    pool = await create_pool(database, 1)
    try:
        await apply_schema(pool, ("items",), demo=False)  # the catalog asks triggers.sql's functions
    finally:
        pool.close()
        await pool.wait_closed()
    async with aiopg.connect(database) as conn:
        async with conn.cursor() as cur:
            table = await load_table(cur, "items")
        yield conn, table


async def _ids(conn: aiopg.Connection, table: Table, query: str) -> list[int]:
    tree = parse_query(parse_qsl(query, keep_blank_values=True))
    params = Params()
    cond = where(table, tree.filters, params)
    order = order_by(table, tree.order, params) or default_order(table)
    statement = f"SELECT t.id FROM {table_sql(table)} AS t"
    if cond is not None:
        statement += " WHERE " + cond
    assert order is not None
    statement += " ORDER BY " + order
    async with conn.cursor() as cur:
        await cur.execute(statement, params.values)
        return [row[0] for row in await cur.fetchall()]


FILTERS = [
    ("id=eq.1", [1]),
    ("id=neq.1", [2, 3, 4]),
    ("n=gt.10", [2, 4]),
    ("n=gte.20", [2, 4]),
    ("n=lt.20", [1]),
    ("n=lte.20", [1, 2]),
    ("name=like.*an*", [2]),
    ("name=like.a*", [1, 4]),
    ("name=ilike.b*", [2]),
    ("name=match.^[ab]", [1, 4]),
    ("name=imatch.^B", [2]),
    ("id=in.(1,3)", [1, 3]),
    ("id=in.()", []),
    ("id=not.in.()", [1, 2, 3, 4]),
    ('name=in.("a,b(c)",apple)', [1, 4]),
    ("n=is.null", [3]),
    ("n=not.is.null", [1, 2, 4]),
    ("n=is.not_null", [1, 2, 4]),
    ("flag=is.true", [1, 4]),
    ("flag=is.false", [2]),
    ("flag=is.unknown", [3]),
    ("flag=not.is.true", [2, 3]),
    ("n=isdistinct.10", [2, 3, 4]),
    ("n=not.isdistinct.10", [1]),
    ("tags=cs.{red}", [1, 3]),
    ("tags=cd.{red,green,blue}", [1, 3, 4]),
    ("tags=ov.{yellow,green}", [1, 2]),
    ("span=sl.[10,15)", [1, 2]),
    ("span=sr.[10,15)", [3]),
    ("span=nxr.[1,6)", [1]),
    ("span=nxl.[5,6)", [2, 3]),
    ("span=adj.[10,20)", [2, 3]),
    ("span=ov.[4,6)", [1, 2]),
    ("words=fts.quick", [1, 3]),
    ("words=fts.quick %26 dogs", [3]),
    ("words=plfts.brown dogs", [3]),
    ("words=phfts.lazy dogs", [2]),
    ("words=wfts.quick -fox", [3]),
    ("words=fts(english).sleeping", [2]),
    ("words=not.fts.quick", [2]),
    ("n=eq(any).{10,40}", [1, 4]),
    ("name=like(any).{a*,c*}", [1, 3, 4]),
    ("n=gt(all).{5,15}", [2, 4]),
    ("or=(id.eq.1,id.eq.3)", [1, 3]),
    ("or=(n.gt.30,flag.is.false)", [2, 4]),
    ("and=(n.gte.10,n.lte.20)", [1, 2]),
    ("not.or=(id.eq.1,id.eq.2)", [3, 4]),
    ("not.and=(n.gte.10,flag.is.true)", [2, 3]),
    ("or=(id.eq.1,and(n.gt.10,flag.is.true))", [1, 4]),
    ("or=(id.eq.1,not.and(n.gt.10,flag.is.true))", [1, 2, 3]),
    ('or=(name.eq."a,b(c)",name.eq.apple)', [1, 4]),
    ("or=(name.in.(apple,cherry),id.eq.2)", [1, 2, 3]),
    ("or=(n.is.null,n.eq.40)", [3, 4]),
    ("id=gt.1&id=lt.4", [2, 3]),
    ("doc->>k=eq.x", [1]),
    ("doc->>k=eq.x,y", [3]),
    ("doc->n=eq.2", [2]),
    ("doc->n=gt.1", [2, 3]),
    ("doc->arr->0=eq.3", [2]),
    ("doc->arr->>-1=eq.2", [1]),
    ("doc->arr=cs.[3]", [2]),
    ("or=(doc->>k.eq.y,doc->n.eq.3)", [2, 3]),
    ('"a.b"=eq.dot', [1]),
    ('"a.b"=eq.q"uote', [4]),
    ("name=eq.apple&order=id", [1]),
    ("order=n.desc.nullslast", [4, 2, 1, 3]),
    ("order=n.desc", [3, 4, 2, 1]),
    ("order=n.asc.nullsfirst", [3, 1, 2, 4]),
    ("order=flag,id.desc", [2, 4, 1, 3]),
    ("order=doc->>k.desc,id", [4, 2, 3, 1]),  # DESC puts NULLs first, as in Postgres
]


@pytest.mark.parametrize(("query", "expected"), FILTERS, ids=[q for q, _ in FILTERS])
async def test_each_filter_selects_the_rows_postgrest_selects(
    items: tuple[aiopg.Connection, Table], query: str, expected: list[int]
) -> None:
    conn, table = items
    assert await _ids(conn, table, query) == expected


async def test_values_are_parameters_never_sql(items: tuple[aiopg.Connection, Table]) -> None:
    conn, table = items
    for value in ("1' OR '1'='1", "1; DROP TABLE items; --", "%(p0)s", "%s", "\\", "' )"):
        params = Params()
        tree = parse_query([("name", f"eq.{value}")])
        cond = where(table, tree.filters, params)
        assert params.values == {"p0": value}
        async with conn.cursor() as cur:
            assert cond == 't."name" = %(p0)s'
            await cur.execute("SELECT count(*) FROM items AS t WHERE " + cond, params.values)
            assert await cur.fetchone() == (0,)
    assert await _ids(conn, table, "") == [1, 2, 3, 4]  # still there


async def test_a_column_the_table_lacks_is_a_400_before_any_sql(items: tuple[aiopg.Connection, Table]) -> None:
    _, table = items
    for query in ("nope=eq.1", "or=(id.eq.1,nope.eq.2)", "order=nope", "nope->a=eq.1"):
        tree = parse_query(parse_qsl(query))
        with pytest.raises(ApiError) as raised:
            params = Params()
            where(table, tree.filters, params)
            order_by(table, tree.order, params)
        assert raised.value.code.code == "42703" and "nope" in raised.value.message


SELECTS = [
    ("select=id,name&id=eq.1", {"id": 1, "name": "apple"}),
    ("select=fruit:name&id=eq.1", {"fruit": "apple"}),
    ("select=id::text,n::text&id=eq.1", {"id": "1", "n": "10"}),
    ("select=doc->>k,doc->n&id=eq.1", {"k": "x", "n": 1}),
    ("select=key:doc->>k,num:doc->n::int&id=eq.2", {"key": "y", "num": 2}),
    ("select=first:doc->arr->0&id=eq.1", {"first": 1}),
    ('select="a.b"&id=eq.1', {"a.b": "dot"}),
    ("select=*,label:name&id=eq.1", None),
    ("select=n::double precision&id=eq.1", {"n": 10}),
]


@pytest.mark.parametrize(("query", "expected"), SELECTS, ids=[q for q, _ in SELECTS])
async def test_select_names_and_casts_the_columns(
    items: tuple[aiopg.Connection, Table], query: str, expected: dict[str, object] | None
) -> None:
    import json

    conn, table = items
    tree = parse_query(parse_qsl(query))
    params = Params()
    cond = where(table, tree.filters, params)
    assert cond is not None
    source = f"{table_sql(table)} AS t WHERE {cond}"
    statement = as_json(projection(table, tree.select, params), source)
    async with conn.cursor() as cur:
        await cur.execute(statement, params.values)
        (text,) = await cur.fetchone()
    row = json.loads(text)
    if expected is None:  # * and an alias: every column, then the alias
        assert list(row) == [*table.columns, "label"] and row["label"] == "apple"
    else:
        assert row == expected


async def test_a_cast_is_a_type_name_or_refused(items: tuple[aiopg.Connection, Table]) -> None:
    _, table = items
    for select in ("id::text", "id::int4", "n::double precision", "n::character varying"):
        projection(table, parse_query([("select", select)]).select, Params())
    for bad in ("n::int or true", "n::text as x", "n::tim$e"):
        tree = parse_query([("select", bad)])
        with pytest.raises(ApiError) as raised:
            projection(table, tree.select, Params())
        assert raised.value.code.code == "PGRST100"


def test_identifiers_are_quoted_as_quote_ident_quotes_them_with_percent_doubled() -> None:
    assert ident("id") == '"id"'
    assert ident('a"b') == '"a""b"'
    assert ident("rate%") == '"rate%%"'  # the statement runs with parameters
    assert ident("a.b; DROP TABLE x") == '"a.b; DROP TABLE x"'
