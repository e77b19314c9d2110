"""Values are stored exactly as sent, or refused: never changed on the way to Postgres.

Each check compares the gateway with plain SQL on the same server: what a hand-written
statement stores, /api stores; what it refuses, /api refuses with the same message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import psycopg2
import pytest

from .conftest import RunningGateway, run_sql, start_gateway
from .problems import error_body, error_of

SCHEMA = """
CREATE DOMAIN short_text AS varchar(5);
CREATE DOMAIN doc AS jsonb;
CREATE DOMAIN doc_of_doc AS doc;
CREATE TYPE xy AS (x int, label varchar(3));
CREATE TABLE vals (
    id  int PRIMARY KEY,
    v   varchar(5),
    c   char(3),
    b   bit(3),
    vb  varbit(3),
    d   short_text,
    a   varchar(2)[],
    n   numeric,
    n52 numeric(5,2),
    i   bigint,
    f   float8,
    j   json,
    jb  jsonb,
    na  numeric[],
    p   xy,
    dj  doc_of_doc,
    ja  jsonb[],
    da  doc[],
    bx  box[],
    m   int[],
    tv  tsvector,
    tq  tsquery,
    jp  jsonpath
);
CREATE TABLE codes (code varchar(5) PRIMARY KEY, note text);
"""


@pytest.fixture
async def gw(database: str) -> AsyncIterator[RunningGateway]:
    await run_sql(database, SCHEMA)
    async with start_gateway(database, expose=("vals", "codes")) as running:
        yield running


WITH_ROWS = {"Content-Type": "application/json", "Prefer": "return=representation"}


async def _post(gw: RunningGateway, path: str, body: bytes) -> tuple[int, Any]:
    """The status and the row created (or the error)."""
    async with gw.http.post(gw.url + path, data=body, headers=WITH_ROWS) as resp:
        answer = await resp.json()
        return resp.status, answer[0] if resp.status == 201 else answer


async def _patch(gw: RunningGateway, path: str, body: bytes) -> tuple[int, Any]:
    """PATCH /api/<table>/<pk>: the status and the row as an object (or the error)."""
    async with gw.http.patch(gw.url + path, data=body, headers=WITH_ROWS) as resp:
        return resp.status, await resp.json()


async def _get(gw: RunningGateway, path: str) -> tuple[int, Any]:
    async with gw.http.get(gw.url + path) as resp:
        return resp.status, await resp.json()


async def _plain_sql(
    gw: RunningGateway, column: str, literal: str
) -> tuple[str | None, tuple[str, str, str | None] | None]:
    """What a hand-written INSERT of ``literal`` stores (as text), or its error (SQLSTATE, message, DETAIL)."""
    try:
        await gw.sql(f"INSERT INTO vals (id, {column}) VALUES (1, %s)", (literal,))
    except psycopg2.Error as exc:
        return None, (exc.pgcode or "", exc.diag.message_primary or "", exc.diag.message_detail)
    (stored,) = (await gw.sql(f"SELECT {column}::text FROM vals WHERE id = 1"))[0]
    return str(stored), None


# (column, the value as JSON text, the same value as a SQL literal)
TOO_LONG = [
    ("v", '"abcdefgh"', "abcdefgh"),
    ("c", '"abcd"', "abcd"),
    ("b", '"1010"', "1010"),
    ("vb", '"1010"', "1010"),
    ("d", '"abcdefgh"', "abcdefgh"),
    ("a", '["ab", "abc"]', "{ab,abc}"),
    ("p", '"(1,abcd)"', "(1,abcd)"),
]
FITS = [
    ("v", '"abcde"', "abcde"),
    ("c", '"ab"', "ab"),
    ("b", '"101"', "101"),
    ("d", '"abc  "', "abc  "),
    ("a", '["ab", "a\\"", "\\\\", null]', '{ab,"a\\"","\\\\",NULL}'),
    ("n52", "1.005", "1.005"),
]
# A domain is written as its base type; an element of a json array is JSON text; box
# elements are separated by ";"; a nested array is a dimension.
SHAPES = [
    ("dj", '"123"', '"123"'),  # a domain over jsonb keeps a string a string
    ("dj", '{"a": [1, "x"]}', '{"a": [1, "x"]}'),
    ("ja", '["1", {"a": 1}, [2], true]', '{"\\"1\\"","{\\"a\\": 1}","[2]",true}'),
    ("da", '["x", 1.50]', '{"\\"x\\"",1.50}'),
    ("bx", '["(1,1),(0,0)", "(3,3),(2,2)"]', "{(1,1),(0,0);(3,3),(2,2)}"),
    ("m", "[[1, 2], [3, 4]]", "{{1,2},{3,4}}"),
    ("m", "[[1], [2, 3]]", '{{"1"},{"2","3"}}'),  # refused, as by plain SQL
    # refused with Postgres' syntax error (SQLSTATE 42601), which was a 500
    ("tv", '"\\\\"', "\\"),
    ("tq", '"a &"', "a &"),
    ("jp", '"$.a["', "$.a["),
    ("tv", '"' + "a" * 3000 + '"', "a" * 3000),  # a word too long: SQLSTATE 54000, which was a 500
]


@pytest.mark.parametrize(
    ("column", "body", "literal"),
    TOO_LONG + FITS + SHAPES,
    ids=[f"{c}={b[:40]}" for c, b, _ in TOO_LONG + FITS + SHAPES],
)
async def test_post_stores_or_refuses_a_value_as_plain_sql_does(
    gw: RunningGateway, column: str, body: str, literal: str
) -> None:
    stored, error = await _plain_sql(gw, column, literal)
    status, answer = await _post(gw, "/api/vals", f'{{"id": 2, "{column}": {body}}}'.encode())
    if error is not None:
        assert status == 400 and error_of(answer)["code"] == error[0], answer  # Postgres' own SQLSTATE
        assert (answer["message"], answer["details"]) == error[1:]
        assert await gw.sql("SELECT count(*) FROM vals WHERE id = 2") == [(0,)]
    else:
        assert status == 201, answer
        assert await gw.sql(f"SELECT {column}::text FROM vals WHERE id = 2") == [(stored,)]


@pytest.mark.parametrize(("column", "body", "literal"), TOO_LONG, ids=[f"{c}={b}" for c, b, _ in TOO_LONG])
async def test_patch_refuses_a_value_too_long_and_keeps_the_row(
    gw: RunningGateway, column: str, body: str, literal: str
) -> None:
    await gw.sql("INSERT INTO vals (id) VALUES (1)")
    status, answer = await _patch(gw, "/api/vals/1", f'{{"{column}": {body}}}'.encode())
    assert status == 400 and error_of(answer)["code"] in ("22001", "22026"), answer
    assert "too long" in answer["message"] or "does not match" in answer["message"]
    assert await gw.sql(f"SELECT {column} IS NULL FROM vals WHERE id = 1") == [(True,)]


# (column, the stored value as a SQL literal, a longer value whose first characters it is)
CUT = [
    ("v", "abcde", "abcdefgh"),
    ("c", "abc", "abcd"),
    ("b", "101", "1010"),
    ("vb", "101", "1010"),
    ("d", "abcde", "abcdefgh"),
    ("a", "{ab,ab}", "{ab,abc}"),
]


@pytest.mark.parametrize(("column", "stored", "longer"), CUT, ids=[c for c, _, _ in CUT])
async def test_a_filter_with_a_longer_value_does_not_match_the_shorter_row(
    gw: RunningGateway, column: str, stored: str, longer: str
) -> None:
    await gw.sql(f"INSERT INTO vals (id, {column}) VALUES (1, %s)", (stored,))
    assert await _get(gw, f"/api/vals?{column}=eq.{longer}") == (200, [])
    status, rows = await _get(gw, f"/api/vals?{column}=eq.{stored}")
    assert status == 200 and [row["id"] for row in rows] == [1]


async def test_a_filter_on_a_composite_column_compares_whole_values(gw: RunningGateway) -> None:
    await gw.sql("INSERT INTO vals (id, p) VALUES (1, '(1,abc)')")
    status, rows = await _get(gw, "/api/vals?p=eq.(1,abc)")
    assert status == 200 and [row["p"] for row in rows] == [{"x": 1, "label": "abc"}]
    assert await _get(gw, "/api/vals?p=eq.(1,abd)") == (200, [])
    status, answer = await _get(gw, "/api/vals?p=eq.(1,abcd)")  # a field too long is refused, not cut
    assert status == 400 and "character varying(3)" in error_of(answer)["message"]


async def test_a_longer_key_in_the_path_addresses_no_row(gw: RunningGateway) -> None:
    await gw.sql("INSERT INTO codes (code, note) VALUES ('abcde', 'keep')")
    assert (await _get(gw, "/api/codes/abcdefgh"))[0] == 404
    assert (await _patch(gw, "/api/codes/abcdefgh", b'{"note": "changed"}'))[0] == 404
    async with gw.http.delete(gw.url + "/api/codes/abcdefgh") as resp:
        assert resp.status == 404
    assert await gw.sql("SELECT code, note FROM codes") == [("abcde", "keep")]
    status, answer = await _post(gw, "/api/codes", b'{"code": "abcdefgh"}')
    assert status == 400 and "character varying(5)" in error_of(answer)["message"]


# (column, the value as JSON text, the same value as a SQL literal, digits it must keep)
NUMBERS = [
    ("n", "1182751036259450098810.880", "1182751036259450098810.880", "1182751036259450098810.880"),
    ("n", "0.1000000000000000055511151231257827", "0.1000000000000000055511151231257827", "055511151231257827"),
    ("n", "-1.50e-3", "-1.50e-3", "-0.00150"),
    ("n", "1e400", "1e400", "1" + "0" * 400),
    ("i", "9223372036854775807", "9223372036854775807", "9223372036854775807"),
    ("f", "0.1000000000000000055511151231257827", "0.1000000000000000055511151231257827", "0.1"),
    ("f", "4.9e-324", "4.9e-324", "e-324"),
    ("j", '{"x": 123456789012345678901234567890.123456789}', '{"x": 123456789012345678901234567890.123456789}', ""),
    ("jb", '{"x": 123456789012345678901234567890.123456789}', '{"x":123456789012345678901234567890.123456789}', ""),
    ("jb", "[1e400, -0.0, 100]", "[1e400, -0.0, 100]", "1" + "0" * 400),
    ("na", "[0.10, 1e-400, 12]", "{0.10,1e-400,12}", "{0.10,0.0000"),
]


@pytest.mark.parametrize(
    ("column", "body", "literal", "digits"), NUMBERS, ids=[f"{c}={b[:40]}" for c, b, _, _ in NUMBERS]
)
async def test_a_number_reaches_postgres_digit_for_digit(
    gw: RunningGateway, column: str, body: str, literal: str, digits: str
) -> None:
    stored, error = await _plain_sql(gw, column, literal)
    assert error is None and stored is not None and (digits or "123456789012345678901234567890.123456789") in stored
    client = await gw.subscribe("vals/2")
    status, _ = await _post(gw, "/api/vals", f'{{"id": 2, "{column}": {body}}}'.encode())
    assert status == 201
    assert await gw.sql(f"SELECT {column}::text FROM vals WHERE id = 2") == [(stored,)]
    event = await client.next()
    (row_json,) = (await gw.sql("SELECT row_to_json(x.*)::text FROM vals x WHERE id = 2"))[0]
    assert f'"row":{row_json}' in event.data  # the event carries Postgres' text, not a re-encoding
    await client.close()


async def test_a_number_in_a_patch_and_a_filter_keeps_its_digits(gw: RunningGateway) -> None:
    await gw.sql("INSERT INTO vals (id) VALUES (1), (2)")
    body = b'{"n": 1182751036259450098810.880, "jb": {"x": 0.1000000000000000055511151231257827}}'
    async with gw.http.patch(gw.url + "/api/vals/1", data=body, headers=WITH_ROWS) as resp:
        assert resp.status == 200 and '"n":1182751036259450098810.880' in await resp.text()
    assert await gw.sql("SELECT n::text, jb::text FROM vals WHERE id = 1") == [
        ("1182751036259450098810.880", '{"x": 0.1000000000000000055511151231257827}')
    ]
    status, rows = await _get(gw, "/api/vals?n=eq.1182751036259450098810.880")
    assert status == 200 and [r["id"] for r in rows] == [1]
    status, rows = await _get(gw, "/api/vals?n=eq.1182751036259450098810.88")  # numeric equality, not text
    assert status == 200 and [r["id"] for r in rows] == [1]
    assert await _get(gw, "/api/vals?n=eq.1182751036259450200000") == (200, [])  # what a float made of it


@pytest.mark.parametrize(
    ("column", "body", "message"),
    [
        ("f", "1e400", "is out of range for type double precision"),
        ("i", "9223372036854775808", "out of range for type bigint"),
        ("i", "1.5", "invalid input syntax for type bigint"),
        ("na", "[1, 1e999999999]", "value overflows numeric format"),
    ],
)
async def test_a_number_the_column_cannot_hold_is_a_400_with_postgres_message(
    gw: RunningGateway, column: str, body: str, message: str
) -> None:
    status, answer = await _post(gw, "/api/vals", f'{{"id": 1, "{column}": {body}}}'.encode())
    assert status == 400 and error_of(answer)["code"].startswith("22"), answer
    assert message in answer["message"]
    assert await gw.sql("SELECT count(*) FROM vals") == [(0,)]


NOT_JSON = [
    '{"id": 1, "f": NaN}',
    '{"id": 1, "f": Infinity}',
    '{"id": 1, "n": -Infinity}',
    '{"id": 1, "jb": {"x": [NaN]}}',
    '{"id": 1, "j": Infinity}',
    '{"id": 1, "na": [1, -Infinity]}',
    '{"id": 1, "id": 2}',
    '{"id": 1, "j": {"x": 1, "x": 2}}',
    "[" * 20_000,
    "[" * 20_000 + "]" * 20_000,
    '{"id": 1, "jb": ' + "[" * 257 + "]" * 257 + "}",
    '{"id": 1, "v": ' + '{"a":' * 1_000 + "1" + "}" * 1_000 + "}",
]


@pytest.mark.parametrize("body", NOT_JSON, ids=[b[:30] + f"... ({len(b)} chars)" for b in NOT_JSON])
async def test_not_json_a_key_twice_or_nested_too_deep_is_a_400_bad_json(
    gw: RunningGateway, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    for method, path in (("POST", "/api/vals"), ("PATCH", "/api/vals/1")):
        headers = {"Content-Type": "application/json"}
        async with gw.http.request(method, gw.url + path, data=body.encode(), headers=headers) as resp:
            assert resp.status == 400, await resp.text()
            error = await error_body(resp)
        assert error["code"] == "PGRST102"
    assert await gw.sql("SELECT count(*) FROM vals") == [(0,)]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_json_nested_to_the_limit_is_stored_exactly(gw: RunningGateway) -> None:
    document = "[" * 255 + "0.10" + "]" * 255  # 256 levels with the body's object
    status, _ = await _post(gw, "/api/vals", f'{{"id": 1, "jb": {document}, "j": {document}}}'.encode())
    assert status == 201
    assert await gw.sql("SELECT j::text, jb::text FROM vals") == [(document, document)]


# Columns named after every alias, transition table, subquery column and plpgsql
# variable the generated SQL (capture trigger, /api) has, and after the journal's columns.
CLASH_SCHEMA = """
CREATE TYPE pair AS (a int, k text);
CREATE TABLE clash_text (
    id int PRIMARY KEY, t text, n text, o text, k text, r text, ord int, c text,
    gateway_new text, gateway_old text, new text, old text, tg_op text, found text,
    topic text, table_name text, op text, pk text, "row" text, tx text, created_at text
);
CREATE TABLE clash_row (id int PRIMARY KEY, t pair, n pair, o pair, k pair, r pair);
CREATE TABLE clash_key (t text, k int, n text, PRIMARY KEY (t, k));
"""
CLASH_NAMES = "t n o k r c gateway_new gateway_old new old tg_op found topic table_name op pk row tx created_at"
CLASH_TEXT = {"id": 1, "ord": 7} | {name: f"{name}!" for name in CLASH_NAMES.split()}
CLASH_ROW = {"id": 1} | {name: {"a": i, "k": name} for i, name in enumerate("t n o k r".split())}
CLASH_KEY = {"t": "x", "k": 1, "n": "first"}


@pytest.fixture
async def clash(database: str) -> AsyncIterator[RunningGateway]:
    await run_sql(database, CLASH_SCHEMA)
    async with start_gateway(database, expose=("clash_text", "clash_row", "clash_key")) as running:
        yield running


async def _sql_row(gw: RunningGateway, table: str, row: dict[str, Any], action: str) -> None:
    """INSERT, UPDATE (every column, the key included) or DELETE ``row`` by plain SQL."""
    columns = ", ".join(f'"{name}"' for name in row)
    source = f"SELECT {columns} FROM json_populate_record(NULL::{table}, %s)"
    if action == "insert":
        await gw.sql(f"INSERT INTO {table} ({columns}) {source}", (json.dumps(row),))
    elif action == "update":
        await gw.sql(f"UPDATE {table} SET ({columns}) = ({source})", (json.dumps(row),))
    else:
        await gw.sql(f"DELETE FROM {table}")


@pytest.mark.parametrize(
    ("table", "row", "change"),
    [
        ("clash_text", CLASH_TEXT, {"t": "changed", "n": "changed"}),
        ("clash_row", CLASH_ROW, {"t": {"a": 9, "k": "changed"}}),
        ("clash_key", CLASH_KEY, {"n": "second"}),
    ],
)
async def test_columns_named_like_the_capture_sql_names_journal_plain_sql_writes(
    clash: RunningGateway, table: str, row: dict[str, Any], change: dict[str, Any]
) -> None:
    client = await clash.subscribe(table)
    changed = row | change
    moved = changed | ({"id": 2} if "id" in row else {"k": 2})
    await _sql_row(clash, table, row, "insert")
    await _sql_row(clash, table, changed, "update")
    await _sql_row(clash, table, moved, "update")  # the key changes: a delete and an insert
    await _sql_row(clash, table, moved, "delete")
    events = [(e.type, e.json["row"], e.json.get("old")) for e in await client.take(5)]
    assert events == [
        ("insert", row, None),
        ("update", changed, row),
        ("insert", moved, None),
        ("delete", None, changed),
        ("delete", None, moved),
    ]
    await client.close()


def _as_body(row: dict[str, Any]) -> dict[str, Any]:
    """A composite value goes to /api as its text form, ``(a,k)``."""
    return {name: f"({v['a']},{v['k']})" if isinstance(v, dict) else v for name, v in row.items()}


@pytest.mark.parametrize(
    ("table", "row", "change"),
    [("clash_text", CLASH_TEXT, {"t": "changed", "ord": 8}), ("clash_row", CLASH_ROW, {"t": {"a": 9, "k": "changed"}})],
)
async def test_columns_named_like_the_sql_names_work_through_the_api(
    clash: RunningGateway, table: str, row: dict[str, Any], change: dict[str, Any]
) -> None:
    gw = clash
    client = await gw.subscribe(table)
    changed = row | change
    rows = {"Prefer": "return=representation"}
    async with gw.http.post(f"{gw.url}/api/{table}", json=_as_body(row), headers=rows) as resp:
        assert resp.status == 201, await resp.text()
        assert await resp.json() == [row]
    assert await _get(gw, f"/api/{table}") == (200, [row])
    assert await _get(gw, f"/api/{table}?t=eq.{_as_body(row)['t']}") == (200, [row])
    assert await _get(gw, f"/api/{table}/1") == (200, row)
    async with gw.http.patch(f"{gw.url}/api/{table}/1", json=_as_body(change), headers=rows) as resp:
        assert resp.status == 200 and await resp.json() == changed
    async with gw.http.delete(f"{gw.url}/api/{table}/1", headers=rows) as resp:
        assert resp.status == 200 and await resp.json() == changed
    events = [(e.type, e.json["row"], e.json.get("old")) for e in await client.take(3)]
    assert events == [("insert", row, None), ("update", changed, row), ("delete", None, changed)]
    await client.close()


async def test_a_composite_key_named_like_the_sql_names_works_through_the_api(clash: RunningGateway) -> None:
    client = await clash.subscribe("clash_key/x,1")
    async with clash.http.post(
        clash.url + "/api/clash_key", json=CLASH_KEY, headers={"Prefer": "return=headers-only"}
    ) as resp:
        assert resp.status == 201 and await resp.read() == b""
        assert resp.headers["Location"] == "/api/clash_key?t=eq.x&k=eq.1"  # a composite key: the filtered form
    assert await _get(clash, "/api/clash_key?t=eq.x&k=eq.1") == (200, [CLASH_KEY])
    assert (await client.next()).json["row"] == CLASH_KEY
    await client.close()


REFUSED_TYPES = [None, "text/x-notjson", "application/x-www-form-urlencoded", "text/plain", "application/jsonx", ""]


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/codes"), ("PATCH", "/api/codes/abc")])
async def test_a_body_not_sent_as_json_is_a_415_with_a_hint_for_curl(
    gw: RunningGateway, method: str, path: str
) -> None:
    await gw.sql("INSERT INTO codes (code, note) VALUES ('abc', 'keep')")
    for content_type in REFUSED_TYPES:
        headers = {} if content_type is None else {"Content-Type": content_type}
        async with gw.http.request(
            method,
            gw.url + path,
            data=b'{"code": "new", "note": "x"}',
            headers=headers,
            skip_auto_headers=["Content-Type"],
        ) as resp:
            assert resp.status == 415, (content_type, await resp.text())
            assert resp.headers.get("Content-Type", "").startswith("application/json")
            error = await error_body(resp)
        assert error["code"] == "PGRST102"
        assert "-H 'Content-Type: application/json'" in error["message"]
    assert await gw.sql("SELECT code, note FROM codes") == [("abc", "keep")]


ACCEPTED_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/merge-patch+json",
]


async def test_json_with_parameters_or_a_json_suffix_is_accepted(gw: RunningGateway) -> None:
    for index, content_type in enumerate(ACCEPTED_TYPES):
        headers = {"Content-Type": content_type}
        async with gw.http.post(gw.url + "/api/codes", data=f'{{"code": "{index}"}}'.encode(), headers=headers) as resp:
            assert resp.status == 201, (content_type, await resp.text())
        async with gw.http.patch(gw.url + f"/api/codes/{index}", data=b'{"note": "b"}', headers=headers) as resp:
            assert resp.status == 204, (content_type, await resp.text())
    assert await gw.sql("SELECT code, note FROM codes ORDER BY code") == [
        (str(i), "b") for i in range(len(ACCEPTED_TYPES))
    ]


# psycopg2 reads a "%" in a statement run with parameters as a placeholder, quoted
# identifiers included: a column "rate%" made every write naming it a 500.
PERCENT_SCHEMA = """
CREATE TYPE "p%s" AS (x int);
CREATE TABLE pct ("k%s" int PRIMARY KEY, "rate%" numeric, "a%%s" text, "c%" "p%s");
"""
PERCENT_ROW = {"k%s": 1, "rate%": 1.5, "a%%s": "x%sy", "c%": {"x": 3}}


async def test_names_with_a_percent_sign_work_through_the_api(database: str) -> None:
    await run_sql(database, PERCENT_SCHEMA)
    async with start_gateway(database, expose=("pct",)) as gw:
        body = PERCENT_ROW | {"rate%": "1.5", "c%": "(3)"}
        rows = {"Prefer": "return=representation"}
        async with gw.http.post(gw.url + "/api/pct", json=body, headers=rows) as resp:
            assert resp.status == 201, await resp.text()
            assert await resp.json() == [PERCENT_ROW]
        # names other than letters, digits, _ and $ are quoted in PostgREST's grammar
        query = '"rate%25"=eq.1.5&"a%25%25s"=eq.x%25sy&"c%25"=eq.(3)&"k%25s"=eq.1&order="rate%25".desc,"a%25%25s"'
        assert await _get(gw, f"/api/pct?{query}&select=%22rate%25%22,x:%22a%25%25s%22") == (
            200,
            [{"rate%": 1.5, "x": "x%sy"}],
        )
        assert await _get(gw, f"/api/pct?{query}") == (200, [PERCENT_ROW])
        assert await _get(gw, "/api/pct/1") == (200, PERCENT_ROW)
        async with gw.http.patch(gw.url + "/api/pct/1", json={"rate%": "2", "c%": "(4)"}) as resp:
            assert resp.status == 204, await resp.text()
        changed = PERCENT_ROW | {"rate%": 2, "c%": {"x": 4}}
        async with gw.http.delete(gw.url + "/api/pct/1", headers=rows) as resp:
            assert resp.status == 200 and await resp.json() == changed
        assert await _get(gw, "/api/pct") == (200, [])
