"""postgrest-py (PyPI ``postgrest``, pinned in setup.cfg), unmodified, against a real gateway's /api.

Every expectation is what the client gets from real PostgREST for the same request:
the client builds the query string and headers, the gateway has to answer them as
PostgREST documents. The rows (tests/crud_schema.py) are small enough to write every
answer out in full.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from postgrest import APIError, AsyncPostgrestClient, SyncPostgrestClient
from postgrest.types import CountMethod, ReturnMethod

from .conftest import RunningGateway
from .crud_schema import items_gateway, own_database

Query = Any  # postgrest-py's request builders


@pytest.fixture
async def gw(database: str) -> AsyncIterator[RunningGateway]:
    async with items_gateway(database) as running:
        yield running


@pytest.fixture
async def client(gw: RunningGateway) -> AsyncIterator[AsyncPostgrestClient]:
    # No retries: a 503 should fail the test at once, not after 1 + 2 + 4 s of back-off.
    async with AsyncPostgrestClient(gw.url + "/api", retry_enabled=False) as client:
        yield client


@pytest.fixture(scope="module")
async def reader(server_dsn: str) -> AsyncIterator[AsyncPostgrestClient]:
    """One gateway for the tests that only read (a gateway per test would cost a minute here)."""
    with own_database(server_dsn) as dsn:
        async with items_gateway(dsn) as gw, AsyncPostgrestClient(gw.url + "/api", retry_enabled=False) as client:
            yield client


async def table(gw: RunningGateway) -> list[tuple[Any, ...]]:
    """The items table as SQL sees it: (id, sku, name, qty), by id."""
    return await gw.sql("SELECT id, sku, name, qty FROM items ORDER BY id")


async def ids(client: AsyncPostgrestClient, where: Callable[[Query], Query]) -> list[int]:
    """The ids that ``select=id`` with the filters ``where`` adds returns, ordered by id."""
    response = await where(client.from_("items").select("id")).order("id").execute()
    return [row["id"] for row in response.data]


async def fails(query: Query) -> APIError:
    """The APIError ``query`` raises (it must raise one)."""
    with pytest.raises(APIError) as caught:
        await query.execute()
    return caught.value


SEED = [
    (1, "a-1", "Apple", 10),
    (2, "b-2", "banana", 0),
    (3, "c-3", "Cherry, sour", 5),
    (4, "d-4", "date (dried)", 7),
    (5, "e-5", 'Elder "berry"', 0),
]


async def test_select_columns_aliases_casts_and_json_paths(reader: AsyncPostgrestClient) -> None:
    items = reader.from_("items")
    response = await items.select("id", "label:name", "price::text", "qty").lte("id", 2).order("id").execute()
    assert response.data == [
        {"id": 1, "label": "Apple", "price": "1.50", "qty": 10},
        {"id": 2, "label": "banana", "price": "0.25", "qty": 0},
    ]
    response = await items.select("id, meta->>color, width:meta->size->w").order("id").execute()
    assert response.data == [
        {"id": 1, "color": "red", "width": 3},
        {"id": 2, "color": "yellow", "width": None},
        {"id": 3, "color": "red", "width": None},
        {"id": 4, "color": None, "width": None},
        {"id": 5, "color": "black", "width": None},
    ]
    response = await items.select("*").eq("id", 1).execute()
    assert response.data == [
        {
            "id": 1,
            "sku": "a-1",
            "name": "Apple",
            "price": 1.5,
            "qty": 10,
            "active": True,
            "meta": {"color": "red", "size": {"w": 3}},
        }
    ]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        pytest.param(lambda q: q.eq("sku", "b-2"), [2], id="eq"),
        pytest.param(lambda q: q.neq("qty", 0), [1, 3, 4], id="neq"),
        pytest.param(lambda q: q.gt("price", 1.5), [4, 5], id="gt"),
        pytest.param(lambda q: q.gte("price", 1.5), [1, 4, 5], id="gte"),
        pytest.param(lambda q: q.lt("price", 1.5), [2], id="lt"),
        pytest.param(lambda q: q.lte("price", 1.5), [1, 2], id="lte"),
        pytest.param(lambda q: q.like("name", "*err*"), [3, 5], id="like"),
        pytest.param(lambda q: q.like("name", "c*"), [], id="like-is-case-sensitive"),
        pytest.param(lambda q: q.ilike("name", "c*"), [3], id="ilike"),
        pytest.param(lambda q: q.filter("name", "match", "^[A-C]"), [1, 3], id="match"),
        pytest.param(lambda q: q.filter("name", "imatch", "^[a-c]"), [1, 2, 3], id="imatch"),
        pytest.param(lambda q: q.in_("id", [1, 3]), [1, 3], id="in"),
        pytest.param(
            lambda q: q.in_("name", ["Cherry, sour", 'Elder "berry"', "date (dried)"]), [3, 4, 5], id="in-quoted-values"
        ),
        pytest.param(lambda q: q.is_("price", None), [3], id="is-null"),
        pytest.param(lambda q: q.is_("price", "not_null"), [1, 2, 4, 5], id="is-not_null"),
        pytest.param(lambda q: q.is_("active", True), [1, 4], id="is-true"),
        pytest.param(lambda q: q.is_("active", False), [2, 5], id="is-false"),
        pytest.param(lambda q: q.is_("active", "unknown"), [3], id="is-unknown"),
        pytest.param(lambda q: q.filter("active", "isdistinct", "true"), [2, 3, 5], id="isdistinct"),
        pytest.param(lambda q: q.not_.eq("qty", 0), [1, 3, 4], id="not-eq"),
        pytest.param(lambda q: q.not_.in_("id", [1, 2, 3]), [4, 5], id="not-in"),
        pytest.param(lambda q: q.not_.is_("price", None), [1, 2, 4, 5], id="not-is-null"),
        pytest.param(lambda q: q.not_.like("name", "*a*"), [1, 3, 5], id="not-like"),
        pytest.param(lambda q: q.match({"active": True, "qty": 10}), [1], id="match-columns"),
        pytest.param(lambda q: q.gt("qty", 0).lt("price", 2), [1], id="filters-add-up"),
        pytest.param(lambda q: q.eq("meta->>color", "red"), [1, 3], id="json-path-text"),  # ->> compares text
        pytest.param(lambda q: q.eq("meta->color", '"red"'), [1, 3], id="json-path-jsonb"),  # -> compares jsonb
        pytest.param(lambda q: q.gt("meta->size->w", 2), [1], id="json-path-nested"),
        pytest.param(lambda q: q.or_("qty.eq.0,price.is.null"), [2, 3, 5], id="or"),
        pytest.param(lambda q: q.or_('name.eq."Cherry, sour",name.eq."date (dried)"'), [3, 4], id="or-quoted-values"),
        pytest.param(lambda q: q.or_("id.in.(1,2),sku.eq.e-5"), [1, 2, 5], id="or-with-in"),
        pytest.param(lambda q: q.or_("meta->>color.eq.black,id.eq.4"), [4, 5], id="or-with-json-path"),
        pytest.param(lambda q: q.or_("sku.eq.e-5,and(qty.gt.0,price.lt.2)"), [1, 5], id="or-with-and"),
        pytest.param(
            lambda q: q.or_("and(active.is.true,qty.not.lt.8),and(active.is.false,or(price.lt.1,name.like.*berry*))"),
            [1, 2, 5],
            id="nested-and-or-not",
        ),
        pytest.param(lambda q: q.or_("not.and(qty.gt.0,active.is.true),id.eq.1"), [1, 2, 3, 5], id="not-and-inside-or"),
        pytest.param(lambda q: q.not_.or_("qty.eq.0,price.is.null"), [1, 4], id="not-or"),
    ],
)
async def test_every_filter_selects_the_rows_postgrest_would(
    reader: AsyncPostgrestClient, where: Callable[[Query], Query], expected: list[int]
) -> None:
    assert await ids(reader, where) == expected


async def test_order_limit_offset_range_and_count(reader: AsyncPostgrestClient) -> None:
    assert await ids(reader, lambda q: q) == [1, 2, 3, 4, 5]

    async def ordered(query: Query) -> list[int]:
        return [row["id"] for row in (await query.execute()).data]

    items = reader.from_("items")
    assert await ordered(items.select("id").order("price")) == [2, 1, 5, 4, 3]  # asc: nulls last
    assert await ordered(items.select("id").order("price", desc=True, nullsfirst=False)) == [4, 5, 1, 2, 3]
    assert await ordered(items.select("id").order("price", desc=True)) == [3, 4, 5, 1, 2]  # desc: nulls first
    assert await ordered(items.select("id").order("active", nullsfirst=True).order("id", desc=True)) == [3, 5, 2, 4, 1]
    assert await ordered(items.select("id").order("meta->>color").order("id")) == [5, 1, 3, 2, 4]
    assert await ordered(items.select("id").order("id").limit(2)) == [1, 2]
    assert await ordered(items.select("id").order("id").limit(2).offset(1)) == [2, 3]
    assert await ordered(items.select("id").order("id").range(1, 3)) == [2, 3, 4]

    page = await items.select("id", count=CountMethod.exact).order("id").range(0, 1).execute()
    assert [row["id"] for row in page.data] == [1, 2] and page.count == 5
    page = await items.select("id", count=CountMethod.exact).gt("qty", 0).limit(1).execute()
    assert len(page.data) == 1 and page.count == 3
    head = await items.select("*", count=CountMethod.exact, head=True).execute()
    assert head.data == [] and head.count == 5
    planned = await items.select("id", count=CountMethod.planned).execute()
    assert len(planned.data) == 5 and isinstance(planned.count, int) and planned.count >= 0


async def test_single_and_maybe_single(reader: AsyncPostgrestClient) -> None:
    items = reader.from_("items")
    one = await items.select("id, sku").eq("id", 1).single().execute()
    assert one.data == {"id": 1, "sku": "a-1"}
    none = await fails(items.select("id").eq("id", 99).single())
    assert none.code == "PGRST116" and none.message
    many = await fails(items.select("id").gt("id", 1).single())
    assert many.code == "PGRST116" and many.message

    maybe = await items.select("id, sku").eq("id", 2).maybe_single().execute()
    assert maybe is not None and maybe.data == {"id": 2, "sku": "b-2"}
    assert await items.select("id").eq("id", 99).maybe_single().execute() is None
    # More than one row: postgrest-py's own error (it asked for an array and counted).
    assert (await fails(items.select("id").gt("id", 1).maybe_single())).code == "406"


async def test_csv_answers_a_header_and_one_line_per_row(reader: AsyncPostgrestClient) -> None:
    response = await reader.from_("items").select("id,sku,name,price").in_("id", [1, 3, 5]).order("id").csv().execute()
    assert isinstance(response.data, str)
    assert list(csv.reader(io.StringIO(response.data))) == [
        ["id", "sku", "name", "price"],
        ["1", "a-1", "Apple", "1.50"],
        ["3", "c-3", "Cherry, sour", ""],
        ["5", "e-5", 'Elder "berry"', "2.00"],
    ]


async def test_insert_one_and_many_return_arrays_and_a_bulk_insert_is_all_or_nothing(
    client: AsyncPostgrestClient, gw: RunningGateway
) -> None:
    items = client.from_("items")
    one = await items.insert({"sku": "f-6", "name": "Fig", "price": 4.1, "meta": {"color": "purple"}}).execute()
    assert one.data == [
        {"id": 6, "sku": "f-6", "name": "Fig", "price": 4.1, "qty": 0, "active": None, "meta": {"color": "purple"}}
    ]
    rows = [{"sku": "g-7", "name": "Grape", "qty": 3}, {"sku": "h-8", "name": "Honeydew", "qty": 1}]
    many = await items.insert(rows).execute()
    assert [(row["id"], row["sku"], row["qty"]) for row in many.data] == [(7, "g-7", 3), (8, "h-8", 1)]

    # A bulk insert names its columns (?columns=): a row without one of them gives it
    # null, unless Prefer: missing=default (postgrest-py's default_to_null=False).
    uneven = [{"sku": "i-9", "name": "Ivy gourd"}, {"sku": "j-10", "name": "Jackfruit", "qty": 2}]
    assert (await fails(items.insert(uneven))).code == "23502"  # qty is NOT NULL
    filled = await items.insert(uneven, default_to_null=False).execute()
    assert [(row["sku"], row["qty"]) for row in filled.data] == [("i-9", 0), ("j-10", 2)]

    minimal = await items.insert({"sku": "k-11", "name": "Kiwi"}, returning=ReturnMethod.minimal).execute()
    assert minimal.data == []
    duplicate = await fails(items.insert([{"sku": "l-12", "name": "Lime"}, {"sku": "a-1", "name": "again"}]))
    assert duplicate.code == "23505"
    assert [row[1] for row in await table(gw)] == [
        "a-1",
        "b-2",
        "c-3",
        "d-4",
        "e-5",
        "f-6",
        "g-7",
        "h-8",
        "i-9",
        "j-10",
        "k-11",
    ]  # no l-12: the statement that failed wrote nothing


async def test_upsert_merges_or_ignores_duplicates(client: AsyncPostgrestClient, gw: RunningGateway) -> None:
    items = client.from_("items")
    merged = await items.upsert({"sku": "a-1", "name": "Apple (green)", "price": 1.75}, on_conflict="sku").execute()
    assert merged.data == [
        {
            "id": 1,
            "sku": "a-1",
            "name": "Apple (green)",
            "price": 1.75,
            "qty": 10,  # not in the body: kept
            "active": True,
            "meta": {"color": "red", "size": {"w": 3}},
        }
    ]
    by_key = await items.upsert({"id": 2, "sku": "b-2", "name": "Banana"}).execute()  # the primary key
    assert [(row["id"], row["name"], row["price"]) for row in by_key.data] == [(2, "Banana", 0.25)]
    both = items.upsert([{"sku": "m-13", "name": "Mango"}, {"sku": "b-2", "name": "BANANA"}], on_conflict="sku")
    assert sorted((row["sku"], row["name"]) for row in (await both.execute()).data) == [
        ("b-2", "BANANA"),
        ("m-13", "Mango"),
    ]
    ignored = await items.upsert(
        [{"sku": "a-1", "name": "not me"}, {"sku": "n-14", "name": "Nectarine"}],
        on_conflict="sku",
        ignore_duplicates=True,
    ).execute()
    assert [row["sku"] for row in ignored.data] == ["n-14"]  # only what was inserted
    # (By sku: an INSERT ... ON CONFLICT takes an id from the sequence even where it merges.)
    assert await gw.sql("SELECT sku, name, qty FROM items ORDER BY sku") == [
        ("a-1", "Apple (green)", 10),
        ("b-2", "BANANA", 0),
        *[row[1:] for row in SEED[2:]],
        ("m-13", "Mango", 0),
        ("n-14", "Nectarine", 0),
    ]


async def test_update_and_delete_by_filter(client: AsyncPostgrestClient, gw: RunningGateway) -> None:
    items = client.from_("items")
    updated = await items.update({"active": True, "meta": {"color": "green"}}).eq("qty", 0).execute()
    assert sorted((row["id"], row["active"], row["meta"]) for row in updated.data) == [
        (2, True, {"color": "green"}),
        (5, True, {"color": "green"}),
    ]
    quiet = await items.update({"qty": 1}, returning=ReturnMethod.minimal).is_("price", None).execute()
    assert quiet.data == []
    assert (await items.update({"qty": 9}).eq("id", 99).execute()).data == []  # no row matched: no error
    assert await gw.sql("SELECT id, qty, active FROM items ORDER BY id") == [
        (1, 10, True),
        (2, 0, True),
        (3, 1, None),
        (4, 7, True),
        (5, 0, True),
    ]

    deleted = await items.delete().eq("sku", "e-5").execute()
    assert [(row["id"], row["name"]) for row in deleted.data] == [(5, 'Elder "berry"')]
    gone = await items.delete(returning=ReturnMethod.minimal).or_('id.eq.3,name.eq."date (dried)"').execute()
    assert gone.data == []
    assert (await items.delete().eq("id", 99).execute()).data == []
    assert await table(gw) == [(1, "a-1", "Apple", 10), (2, "b-2", "banana", 0)]


async def test_writes_count_their_rows_when_asked(client: AsyncPostgrestClient) -> None:
    # Prefer: count=exact on a write: Content-Range */2 (POST, DELETE), 0-1/2 (PATCH).
    items = client.from_("items")
    rows = [{"sku": "g-7", "name": "Grape"}, {"sku": "h-8", "name": "Honeydew"}]
    assert (await items.insert(rows, count=CountMethod.exact).execute()).count == 2
    quiet = items.update({"qty": 1}, count=CountMethod.exact, returning=ReturnMethod.minimal).gt("id", 5)
    assert (await quiet.execute()).count == 2
    assert (await items.update({"qty": 2}, count=CountMethod.exact).eq("qty", 0).execute()).count == 2
    assert (await items.delete(count=CountMethod.exact).gt("id", 5).execute()).count == 2


async def test_update_or_delete_without_a_filter_is_refused_with_a_hint(
    client: AsyncPostgrestClient, gw: RunningGateway
) -> None:
    items = client.from_("items")
    for query in (items.update({"qty": 0}), items.delete()):
        error = await fails(query)
        assert error.code and error.message and error.hint, error.json()
    assert await table(gw) == SEED


async def test_rpc_calls_functions_by_post_and_get(client: AsyncPostgrestClient, gw: RunningGateway) -> None:
    assert (await client.rpc("add", {"a": 2, "b": 3}).execute()).data == 5
    assert (await client.rpc("add", {"a": 40, "b": 2}, get=True).execute()).data == 42
    cheap = await client.rpc("cheaper_than", {"max": 2}).execute()
    assert [row["sku"] for row in cheap.data] == ["a-1", "b-2"]
    await client.rpc("restock", {"amount": 4}).execute()  # void: 204, no body
    assert await gw.sql("SELECT id FROM items WHERE qty = 4 ORDER BY id") == [(2,), (5,)]
    assert (await fails(client.rpc("nope", {}))).code == "PGRST202"
    assert (await fails(client.rpc("add", {"a": 1}))).code == "PGRST202"  # no overload without b


async def test_errors_arrive_as_api_errors_with_postgrest_codes(client: AsyncPostgrestClient) -> None:
    items = client.from_("items")
    duplicate = await fails(items.insert({"sku": "a-1", "name": "again"}))
    assert duplicate.code == "23505" and duplicate.message
    assert "(sku)=(a-1)" in str(duplicate.details)  # Postgres' own detail, passed on
    missing = await fails(items.insert({"sku": "x-1"}))
    assert missing.code == "23502" and "name" in str(missing.message)
    assert (await fails(items.select("id").eq("qty", "ten"))).code == "22P02"
    assert (await fails(items.insert({"sku": "x-2", "name": "x", "nope": 1}))).code == "PGRST204"
    assert (await fails(items.select("id").filter("qty", "eqq", "1"))).code == "PGRST100"
    unknown = await fails(client.from_("nope").select("*"))
    assert unknown.code == "PGRST205" and "nope" in str(unknown.message)
    assert set(unknown.json()) == {"code", "message", "details", "hint"}


async def test_unknown_column_in_a_filter_or_select_is_postgres_42703(reader: AsyncPostgrestClient) -> None:
    # PostgREST leaves these columns to Postgres: "column items.nope does not exist" (its
    # PGRST204 is for a body's keys and columns=, above).
    for query in (reader.from_("items").select("id").eq("nope", 1), reader.from_("items").select("id,nope")):
        error = await fails(query)
        assert error.code == "42703" and "nope" in str(error.message)


async def test_sync_client_round_trip(gw: RunningGateway) -> None:
    """SyncPostgrestClient, as the issue's first user tried it (in a thread: the gateway runs in this loop)."""

    def crud() -> list[Any]:
        with SyncPostgrestClient(gw.url + "/api", retry_enabled=False) as client:
            items = client.from_("items")
            created = items.insert({"sku": "s-1", "name": "Sloe"}).execute().data
            found = items.select("sku, name").eq("sku", "s-1").execute().data
            changed = items.update({"qty": 3}).eq("sku", "s-1").execute().data
            removed = items.delete().eq("sku", "s-1").execute().data
            return [created[0]["sku"], found, changed[0]["qty"], removed[0]["sku"]]

    assert await asyncio.to_thread(crud) == ["s-1", [{"sku": "s-1", "name": "Sloe"}], 3, "s-1"]
    assert await table(gw) == SEED
