"""/api in PostgREST's grammar over real HTTP and a real Postgres: every part of issue 11's /api.

Filters, select, order, ranges and counts, bulk writes and upserts, Prefer, the
single-object media type (a write that fails it keeps nothing), CSV, and bad input
in each place. Cases marked "PostgREST:" follow its test suite (test/spec/Feature/
Query/QuerySpec.hs, InsertSpec.hs, UpsertSpec.hs, SingularSpec.hs, RangeSpec.hs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from .conftest import RunningGateway, run_sql, start_gateway
from .problems import error_body

SCHEMA = """
CREATE TABLE people (
    id      int PRIMARY KEY,
    name    text NOT NULL,
    email   text UNIQUE,
    age     int,
    tags    text[] NOT NULL DEFAULT '{}',
    profile jsonb,
    note    text DEFAULT 'none'
);
INSERT INTO people (id, name, email, age, tags, profile) VALUES
  (1, 'Ann',   'ann@x',   30, '{admin,staff}', '{"city": "Oslo", "langs": ["no", "en"]}'),
  (2, 'Bob',   'bob@x',   NULL, '{staff}',     '{"city": "Rome"}'),
  (3, 'Cy, Jr', NULL,     45, '{}',            NULL),
  (4, 'Dee',   'dee@x',   22, '{guest}',       '{"city": "Oslo"}');
"""
ROWS = {"Prefer": "return=representation"}
OBJECT = {"Accept": "application/vnd.pgrst.object+json"}


@pytest.fixture
async def gw(database: str) -> AsyncIterator[RunningGateway]:
    await run_sql(database, SCHEMA)
    async with start_gateway(database, expose=("people",), page_limit=3) as running:
        yield running


async def _get(gw: RunningGateway, query: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with gw.http.get(gw.url + "/api/people" + query, headers=headers) as resp:
        body = await resp.json() if resp.content_type.endswith("json") else await resp.text()
        return resp.status, body, resp.headers


async def _ids(gw: RunningGateway, query: str) -> list[int]:
    status, body, _ = await _get(gw, query)
    assert status in (200, 206), body
    return [row["id"] for row in body]


async def _table(gw: RunningGateway) -> list[tuple[object, ...]]:
    return await gw.sql("SELECT id, name, email, age, note FROM people ORDER BY id")


FILTERS = [
    ("?name=eq.Ann", [1]),
    ("?name=eq.Cy,%20Jr", [3]),  # a top-level value is taken whole, commas and all
    ("?age=not.eq.30", [3, 4]),  # NULL is neither equal nor not equal
    ("?age=is.null", [2]),
    ("?age=is.NULL", [2]),  # PostgREST: is. values are case-insensitive
    ("?age=not.is.null&order=age.desc", [3, 1, 4]),
    ("?id=not.in.(1,2)", [3, 4]),
    ('?name=in.("Cy, Jr",Bob)', [2, 3]),
    ("?name=like.*e*", [4]),
    ("?name=ilike.*E*", [4]),
    ("?name=match.^[AB]", [1, 2]),
    ("?tags=cs.{staff}", [1, 2]),
    ("?tags=ov.{guest,admin}", [1, 4]),
    ("?or=(age.lt.25,age.gt.40)", [3, 4]),
    ("?or=(name.eq.Ann,and(age.gt.20,age.lt.25))", [1, 4]),
    ("?not.or=(age.is.null,age.gt.29)", [4]),
    ('?or=(name.eq."Cy, Jr",name.eq.Bob)', [2, 3]),
    ("?and=(age.gte.22,or(name.eq.Ann,name.eq.Dee))", [1, 4]),
    ("?profile->>city=eq.Oslo", [1, 4]),
    ("?profile->langs->>0=eq.no", [1]),
    ("?profile->langs=cs.[%22en%22]", [1]),
    ("?email=isdistinct.ann@x", [2, 3, 4]),
    ("?id=gt.1&id=lt.4", [2, 3]),
    ("?access_token=anything", [1, 2, 3]),  # a token in the query is no filter
]


@pytest.mark.parametrize(("query", "expected"), FILTERS, ids=[q for q, _ in FILTERS])
async def test_filters_select_the_rows_they_name(gw: RunningGateway, query: str, expected: list[int]) -> None:
    assert await _ids(gw, query) == expected


async def test_select_aliases_casts_and_json_paths(gw: RunningGateway) -> None:
    status, body, _ = await _get(gw, "?select=id,who:name,age::text,city:profile->>city,profile->langs&id=eq.1")
    assert status == 200
    assert body == [{"id": 1, "who": "Ann", "age": "30", "city": "Oslo", "langs": ["no", "en"]}]
    status, body, _ = await _get(gw, "?select=&id=eq.1")  # PostgREST: an empty select is rows with no columns
    assert (status, body) == (200, [{}])


async def test_order_with_nulls_and_json_paths(gw: RunningGateway) -> None:
    assert await _ids(gw, "?order=age.desc") == [2, 3, 1]  # NULLs first when descending, as in Postgres
    assert await _ids(gw, "?order=age.desc.nullslast") == [3, 1, 4]
    assert await _ids(gw, "?order=age.asc.nullsfirst") == [2, 4, 1]
    assert await _ids(gw, "?order=profile->>city.desc.nullslast,id.desc") == [2, 4, 1]


async def test_content_range_on_every_read_and_the_page_cap(gw: RunningGateway) -> None:
    status, body, headers = await _get(gw, "")
    assert (status, len(body), headers["Content-Range"]) == (200, 3, "0-2/*")  # capped at page_limit=3
    status, body, headers = await _get(gw, "?offset=3")
    assert (status, [r["id"] for r in body], headers["Content-Range"]) == (200, [4], "3-3/*")
    status, body, headers = await _get(gw, "?id=gt.100")
    assert (status, body, headers["Content-Range"]) == (200, [], "*/*")
    status, body, headers = await _get(gw, "?id=gt.100", {"Prefer": "count=exact"})
    assert (status, body, headers["Content-Range"]) == (200, [], "*/0")


async def test_count_exact_planned_and_estimated(gw: RunningGateway) -> None:
    status, body, headers = await _get(gw, "?limit=2", {"Prefer": "count=exact"})
    assert (status, len(body), headers["Content-Range"]) == (206, 2, "0-1/4")  # PostgREST: partial is 206
    assert headers["Preference-Applied"] == "count=exact"
    status, body, headers = await _get(gw, "?age=is.null", {"Prefer": "count=exact"})
    assert (status, headers["Content-Range"]) == (200, "0-0/1")
    for kind in ("planned", "estimated"):
        status, body, headers = await _get(gw, "?limit=1", {"Prefer": f"count={kind}"})
        assert status in (200, 206), body
        shown, total = headers["Content-Range"].split("/")
        assert shown == "0-0" and int(total) >= 1, headers["Content-Range"]
        assert headers["Preference-Applied"] == f"count={kind}"


async def test_range_headers(gw: RunningGateway) -> None:
    status, body, headers = await _get(gw, "", {"Range": "1-2", "Range-Unit": "items"})
    assert (status, [r["id"] for r in body], headers["Content-Range"]) == (200, [2, 3], "1-2/*")
    status, body, headers = await _get(gw, "", {"Range": "1-", "Prefer": "count=exact"})
    assert (status, [r["id"] for r in body], headers["Content-Range"]) == (206, [2, 3, 4], "1-3/4")
    status, body, headers = await _get(gw, "?limit=1", {"Range": "0-2"})  # limit within the Range
    assert [r["id"] for r in body] == [1]
    status, body, _ = await _get(gw, "", {"Range": "3-1"})
    assert status == 416 and body["code"] == "PGRST103"
    status, body, _ = await _get(gw, "?offset=10", {"Prefer": "count=exact"})
    assert status == 416 and body["details"] == "An offset of 10 was requested, but there are only 4 rows."


async def test_single_object_and_csv_reads(gw: RunningGateway) -> None:
    status, body, headers = await _get(gw, "?id=eq.2&select=id,name", OBJECT)
    assert (status, body) == (200, {"id": 2, "name": "Bob"})
    assert headers["Content-Type"].startswith("application/vnd.pgrst.object+json")
    for query in ("?id=eq.99", "?tags=cs.{staff}"):
        status, body, _ = await _get(gw, query, OBJECT)
        assert status == 406 and body["code"] == "PGRST116", body
    status, text, headers = await _get(gw, "?select=id,name,age&id=lt.4", {"Accept": "text/csv"})
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert text == 'id,name,age\n1,Ann,30\n2,Bob,\n3,"Cy, Jr",45'
    status, body, _ = await _get(gw, "", {"Accept": "application/xml"})
    assert status == 406 and body["code"] == "PGRST107"


async def test_a_bulk_insert_is_one_statement_all_or_nothing(gw: RunningGateway) -> None:
    people = [{"id": 10, "name": "Eve"}, {"id": 11, "name": "Fay"}]
    async with gw.http.post(gw.url + "/api/people", json=people, headers=ROWS) as resp:
        assert resp.status == 201
        assert "Location" not in resp.headers  # a Location names one row
        assert [r["name"] for r in await resp.json()] == ["Eve", "Fay"]
    before = await _table(gw)
    bad = [{"id": 20, "name": "Gus"}, {"id": 21, "name": None}]  # the second breaks NOT NULL
    async with gw.http.post(gw.url + "/api/people", json=bad) as resp:
        assert resp.status == 400 and (await error_body(resp))["code"] == "23502"
    async with gw.http.post(gw.url + "/api/people", json=[{"id": 22, "name": "H"}, {"id": 1, "name": "I"}]) as resp:
        assert resp.status == 409 and (await error_body(resp))["code"] == "23505"
    assert await _table(gw) == before  # nothing half-written
    async with gw.http.post(gw.url + "/api/people", json=[]) as resp:
        assert resp.status == 201  # PostgREST: an empty array inserts nothing


async def test_the_keys_of_a_bulk_insert_must_match_unless_columns_names_them(gw: RunningGateway) -> None:
    mixed = [{"id": 30, "name": "J", "age": 1}, {"id": 31, "name": "K"}]
    async with gw.http.post(gw.url + "/api/people", json=mixed) as resp:
        assert resp.status == 400
        error = await error_body(resp)
    assert (error["code"], error["message"]) == ("PGRST102", "All object keys must match")
    assert "'age'" in error["details"] and "columns=" in error["hint"]
    # With columns=: only those columns; a key outside them is ignored, one missing is NULL...
    extra = [{"id": 30, "name": "J", "age": 1, "ignored": "x"}, {"id": 31, "name": "K"}]
    async with gw.http.post(gw.url + "/api/people?columns=id,name,age,note", json=extra) as resp:
        assert resp.status == 201, await resp.text()
    assert await gw.sql("SELECT id, age, note FROM people WHERE id >= 30 ORDER BY id") == [
        (30, 1, None),
        (31, None, None),
    ]
    # ...or the column's default with Prefer: missing=default.
    headers = {"Prefer": "missing=default, return=representation"}
    async with gw.http.post(
        gw.url + "/api/people?columns=id,name,note", json=[{"id": 32, "name": "L"}], headers=headers
    ) as resp:
        assert resp.status == 201
        assert resp.headers["Preference-Applied"] == "missing=default, return=representation"
        assert [(r["note"], r["tags"]) for r in await resp.json()] == [("none", [])]


async def test_upsert_merges_or_ignores_duplicates(gw: RunningGateway) -> None:
    merge = {"Prefer": "resolution=merge-duplicates, return=representation"}
    body = [{"id": 1, "name": "Ann B"}, {"id": 5, "name": "New"}]
    async with gw.http.post(gw.url + "/api/people", json=body, headers=merge) as resp:
        assert resp.status == 201  # a row was inserted
        assert resp.headers["Preference-Applied"] == "resolution=merge-duplicates, return=representation"
        assert [(r["id"], r["name"], r["email"]) for r in await resp.json()] == [
            (1, "Ann B", "ann@x"),
            (5, "New", None),
        ]
    async with gw.http.post(gw.url + "/api/people", json={"id": 1, "name": "Ann C"}, headers=merge) as resp:
        assert resp.status == 200  # PostgREST: every row was there already
    ignore = {"Prefer": "resolution=ignore-duplicates, return=representation"}
    async with gw.http.post(
        gw.url + "/api/people", json=[{"id": 2, "name": "X"}, {"id": 6, "name": "Six"}], headers=ignore
    ) as resp:
        assert resp.status == 201 and [r["id"] for r in await resp.json()] == [6]
    # on_conflict= names a unique column other than the key.
    async with gw.http.post(
        gw.url + "/api/people?on_conflict=email", json={"id": 40, "name": "Dee D", "email": "dee@x"}, headers=merge
    ) as resp:
        assert resp.status == 200, await resp.text()
    assert await gw.sql("SELECT id, name FROM people WHERE email = 'dee@x'") == [(40, "Dee D")]
    assert await gw.sql("SELECT name FROM people WHERE id IN (1, 2) ORDER BY id") == [("Ann C",), ("Bob",)]
    async with gw.http.post(
        gw.url + "/api/people?on_conflict=name", json={"id": 41, "name": "Bob"}, headers=merge
    ) as resp:
        assert resp.status == 400 and (await error_body(resp))["code"] == "42P10"  # no unique constraint on name


async def test_a_write_that_asks_for_one_object_keeps_nothing_unless_it_is_one(gw: RunningGateway) -> None:
    before = await _table(gw)
    headers = {**OBJECT, **ROWS}
    async with gw.http.patch(gw.url + "/api/people?tags=cs.{staff}", json={"note": "two"}, headers=headers) as resp:
        assert resp.status == 406
        error = await error_body(resp)
    assert (error["code"], error["details"]) == ("PGRST116", "The result contains 2 rows")
    async with gw.http.delete(gw.url + "/api/people?age=gt.1", headers=OBJECT) as resp:
        assert resp.status == 406
    async with gw.http.post(
        gw.url + "/api/people", json=[{"id": 8, "name": "a"}, {"id": 9, "name": "b"}], headers=headers
    ) as resp:
        assert resp.status == 406
    assert await _table(gw) == before  # each was rolled back
    async with gw.http.patch(gw.url + "/api/people?id=eq.2", json={"note": "one"}, headers=headers) as resp:
        assert resp.status == 200 and (await resp.json())["note"] == "one"
    async with gw.http.post(gw.url + "/api/people", json={"id": 9, "name": "b"}, headers=headers) as resp:
        assert resp.status == 201 and (await resp.json())["name"] == "b"


async def test_tx_rollback_answers_as_if_written_and_keeps_nothing(gw: RunningGateway) -> None:
    before = await _table(gw)
    headers = {"Prefer": "tx=rollback, return=representation"}
    async with gw.http.post(gw.url + "/api/people", json={"id": 50, "name": "Tmp"}, headers=headers) as resp:
        assert resp.status == 201 and (await resp.json())[0]["name"] == "Tmp"
        assert resp.headers["Preference-Applied"] == "return=representation, tx=rollback"
    async with gw.http.delete(gw.url + "/api/people?id=eq.1", headers=headers) as resp:
        assert resp.status == 200 and len(await resp.json()) == 1
    assert await _table(gw) == before


async def test_unknown_preferences_are_refused_only_when_strict(gw: RunningGateway) -> None:
    status, body, _ = await _get(gw, "?id=eq.1", {"Prefer": "nonsense, count=none"})
    assert status == 200
    status, body, _ = await _get(gw, "?id=eq.1", {"Prefer": "handling=strict, count=none"})
    assert status == 400 and body["code"] == "PGRST122" and body["details"] == "Invalid preferences: count=none"


async def test_patch_by_filter_with_select_and_csv_representation(gw: RunningGateway) -> None:
    headers = {**ROWS, "Accept": "text/csv"}
    async with gw.http.patch(
        gw.url + "/api/people?profile->>city=eq.Oslo&select=id,note", json={"note": "north"}, headers=headers
    ) as resp:
        assert resp.status == 200 and resp.headers["Content-Range"] == "0-1/*"
        assert await resp.text() == "id,note\n1,north\n4,north"


async def test_limited_update_and_delete_change_the_first_rows_in_order(gw: RunningGateway) -> None:
    """PostgREST's limited update/delete: limit, offset and order narrow the filtered rows."""
    url = gw.url + "/api/people?id=gt.0&order=id.desc&limit=2"
    async with gw.http.patch(url, json={"note": "last two"}, headers=ROWS) as resp:
        assert resp.status == 200 and sorted(r["id"] for r in await resp.json()) == [3, 4]
    async with gw.http.delete(gw.url + "/api/people?age=not.is.null&order=age&limit=1&offset=1") as resp:
        assert resp.status == 204
    assert await gw.sql("SELECT id, note FROM people ORDER BY id") == [
        (2, "none"),
        (3, "last two"),
        (4, "last two"),
    ]  # ages 22 (4), 30 (1), 45 (3): the second youngest, 1, is gone


BAD = [
    ("GET", "?name=Ann", None, 400, "PGRST100"),
    ("GET", "?name=eqq.Ann", None, 400, "PGRST100"),
    ("GET", "?nope=eq.1", None, 400, "42703"),
    ("GET", "?select=id,nope", None, 400, "42703"),
    ("GET", "?order=nope.desc", None, 400, "42703"),
    ("GET", "?order=id.up", None, 400, "PGRST100"),
    ("GET", "?select=other(*)", None, 400, "PGRST100"),  # no resource embedding here
    ("GET", "?age=eq.old", None, 400, "22P02"),
    ("GET", "?or=id.eq.1", None, 400, "PGRST100"),
    ("GET", "?limit=x", None, 400, "PGRST100"),
    ("PATCH", "?id=eq.1", b"{bad", 400, "PGRST102"),
    ("PATCH", "?id=eq.1&columns=nope", {"name": "x"}, 400, "PGRST204"),
    ("PATCH", "?id=eq.1", {"age": "old"}, 400, "22P02"),
    ("PATCH", "?id=gt.0&order=nope&limit=1", {"age": 1}, 400, "42703"),
    ("DELETE", "?id=gt.0&limit=x", None, 400, "PGRST100"),
    ("PATCH", "", {"age": 1}, 400, "unfiltered_write"),
    ("DELETE", "", None, 400, "unfiltered_write"),
    ("POST", "", [{"id": 60, "name": "a"}, {"id": 61}], 400, "PGRST102"),
    ("POST", "", [[1]], 400, "PGRST102"),
    ("POST", "", "a string", 400, "PGRST102"),
    ("POST", "?on_conflict=id,", {"id": 60, "name": "a"}, 400, "PGRST100"),
]


@pytest.mark.parametrize(
    ("method", "query", "body", "status", "code"), BAD, ids=[f"{m} {q} -> {c}" for m, q, _, _, c in BAD]
)
async def test_bad_input_in_each_place_is_a_4xx_in_the_error_shape_and_changes_nothing(
    gw: RunningGateway, method: str, query: str, body: object, status: int, code: str
) -> None:
    before = await _table(gw)
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs = {"data": body, "headers": {"Content-Type": "application/json"}}
    elif body is not None:
        kwargs = {"json": body}
    async with gw.http.request(method, gw.url + "/api/people" + query, **kwargs) as resp:
        assert resp.status == status, await resp.text()
        error = await error_body(resp)
    assert error["code"] == code
    assert await _table(gw) == before
