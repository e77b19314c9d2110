"""Values are stored exactly as sent, or refused: never changed on the way to Postgres.

Each check compares the gateway with plain SQL on the same server: what a hand-written
statement stores, /api stores; what it refuses, /api refuses with the same message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg2
import pytest

from .conftest import RunningGateway, run_sql, start_gateway

SCHEMA = """
CREATE DOMAIN short_text AS varchar(5);
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
    na  numeric[]
);
CREATE TABLE codes (code varchar(5) PRIMARY KEY, note text);
"""


@pytest.fixture
async def gw(database: str) -> AsyncIterator[RunningGateway]:
    await run_sql(database, SCHEMA)
    async with start_gateway(database, expose=("vals", "codes")) as running:
        yield running


async def _post(gw: RunningGateway, path: str, body: bytes) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    async with gw.http.post(gw.url + path, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def _patch(gw: RunningGateway, path: str, body: bytes) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    async with gw.http.patch(gw.url + path, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def _get(gw: RunningGateway, path: str) -> tuple[int, Any]:
    async with gw.http.get(gw.url + path) as resp:
        return resp.status, await resp.json()


async def _plain_sql(gw: RunningGateway, column: str, literal: str) -> tuple[str | None, str | None]:
    """What a hand-written INSERT of ``literal`` stores (as text), or the error it gets."""
    try:
        await gw.sql(f"INSERT INTO vals (id, {column}) VALUES (1, %s)", (literal,))
    except psycopg2.Error as exc:
        return None, exc.diag.message_primary
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
]
FITS = [
    ("v", '"abcde"', "abcde"),
    ("c", '"ab"', "ab"),
    ("b", '"101"', "101"),
    ("d", '"abc  "', "abc  "),
    ("a", '["ab", "a\\"", "\\\\", null]', '{ab,"a\\"","\\\\",NULL}'),
    ("n52", "1.005", "1.005"),
]


@pytest.mark.parametrize(
    ("column", "body", "literal"), TOO_LONG + FITS, ids=[f"{c}={b}" for c, b, _ in TOO_LONG + FITS]
)
async def test_post_stores_or_refuses_a_value_as_plain_sql_does(
    gw: RunningGateway, column: str, body: str, literal: str
) -> None:
    stored, error = await _plain_sql(gw, column, literal)
    status, answer = await _post(gw, "/api/vals", f'{{"id": 2, "{column}": {body}}}'.encode())
    if error is not None:
        assert status == 400 and answer["error"]["code"] == "bad_value", answer
        assert answer["error"]["message"].startswith(error)
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
    assert status == 400 and answer["error"]["code"] == "bad_value", answer
    assert "too long" in answer["error"]["message"] or "does not match" in answer["error"]["message"]
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
    assert await _get(gw, f"/api/vals?{column}={longer}") == (200, [])
    status, rows = await _get(gw, f"/api/vals?{column}={stored}")
    assert status == 200 and [row["id"] for row in rows] == [1]


async def test_a_longer_key_in_the_path_addresses_no_row(gw: RunningGateway) -> None:
    await gw.sql("INSERT INTO codes (code, note) VALUES ('abcde', 'keep')")
    assert (await _get(gw, "/api/codes/abcdefgh"))[0] == 404
    assert (await _patch(gw, "/api/codes/abcdefgh", b'{"note": "changed"}'))[0] == 404
    async with gw.http.delete(gw.url + "/api/codes/abcdefgh") as resp:
        assert resp.status == 404
    assert await gw.sql("SELECT code, note FROM codes") == [("abcde", "keep")]
    status, answer = await _post(gw, "/api/codes", b'{"code": "abcdefgh"}')
    assert status == 400 and "character varying(5)" in answer["error"]["message"]
