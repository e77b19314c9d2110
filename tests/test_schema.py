"""schema.sql, triggers.sql and apply_schema against a real Postgres: what the gateway creates,
watches and unwatches, and applying them over an older journal."""

from __future__ import annotations

import asyncio

import aiopg
import pytest

from gateway.db import DatabaseError, apply_schema, create_pool

from .conftest import run_sql, start_gateway
from .waiting import until


async def test_schema_converts_a_journal_whose_op_was_checked_text(database: str) -> None:
    """Journals made before op became an enum keep their rows and lose the per-statement CHECK."""
    await run_sql(
        database,
        "CREATE SCHEMA gateway; CREATE TABLE gateway.journal ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " tx xid8 NOT NULL DEFAULT pg_current_xact_id(),"
        " tx_xmin xid8 NOT NULL DEFAULT pg_snapshot_xmin(pg_current_snapshot()),"
        " topic text NOT NULL, table_name text,"
        " op text NOT NULL CHECK (op IN ('insert', 'update', 'delete', 'truncate', 'publish')),"
        ' pk text, "row" json, old json, created_at timestamptz NOT NULL DEFAULT now());'
        "INSERT INTO gateway.journal (topic, op, \"row\") VALUES ('chat', 'publish', '{}'), ('chat', 'publish', '{}')",
    )
    pool = await create_pool(database, 2)
    await apply_schema(pool, ("todos",), demo=False)
    pool.close()
    await pool.wait_closed()
    rows = await run_sql(database, "SELECT id, op::text, pg_typeof(op)::text FROM gateway.journal ORDER BY id")
    assert rows == [(1, "publish", "gateway.op"), (2, "publish", "gateway.op")]
    checks = await run_sql(
        database, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'gateway.journal'::regclass AND contype = 'c'"
    )
    assert checks == [(0,)]


async def _apply(dsn: str, expose: tuple[str, ...], demo: bool = False) -> None:
    pool = await create_pool(dsn, 2)
    try:
        await apply_schema(pool, expose, demo=demo)
    finally:
        pool.close()
        await pool.wait_closed()


async def _capture_triggers(dsn: str, table: str) -> int:
    rows = await run_sql(
        dsn,
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname LIKE 'gateway\\_capture\\_%%'",
        (table,),
    )
    return int(rows[0][0])  # type: ignore[call-overload]


async def _journaled(dsn: str, table: str) -> int:
    """Insert a row into ``table`` and say how many journal rows that statement wrote (0 or 1)."""
    before = (await run_sql(dsn, "SELECT count(*) FROM gateway.journal WHERE table_name = %s", (table,)))[0][0]
    await run_sql(dsn, f"INSERT INTO {table} DEFAULT VALUES")
    after = (await run_sql(dsn, "SELECT count(*) FROM gateway.journal WHERE table_name = %s", (table,)))[0][0]
    return int(after) - int(before)  # type: ignore[call-overload]


@pytest.mark.parametrize("demo", [False, True])
async def test_gateway_creates_nothing_outside_its_schema_when_todos_is_not_exposed(
    empty_database: str, demo: bool
) -> None:
    """A sidecar pointed at an application's database adds no demo table, whatever GATEWAY_DEMO says."""
    await run_sql(empty_database, "CREATE TABLE items (id serial PRIMARY KEY, name text)")
    async with start_gateway(empty_database, expose=("items",), demo=demo) as gw:
        async with gw.http.get(gw.url + "/api/items") as resp:
            assert resp.status == 200
    tables = await run_sql(
        empty_database, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    )
    functions = await run_sql(empty_database, "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace")
    assert (tables, functions) == ([("items",)], [])


async def test_demo_mode_creates_the_demo_table_and_seeds_it(empty_database: str) -> None:
    await _apply(empty_database, ("todos",), demo=True)
    await _apply(empty_database, ("todos",), demo=True)  # again: no second table, no second seed
    rows = await run_sql(empty_database, "SELECT id, done FROM todos ORDER BY id")
    assert rows == [(1, False), (2, False), (3, False)]
    await run_sql(empty_database, "UPDATE todos SET done = true WHERE id = 1")
    [(touched,)] = await run_sql(empty_database, "SELECT updated_at > created_at FROM todos WHERE id = 1")
    assert touched is True
    assert await _capture_triggers(empty_database, "todos") == 4


async def test_without_demo_mode_a_missing_todos_table_is_a_clear_error(empty_database: str) -> None:
    with pytest.raises(DatabaseError, match="table 'todos' does not exist; create it or remove it from GATEWAY_EXPOSE"):
        await _apply(empty_database, ("todos",))
    [(todos,)] = await run_sql(empty_database, "SELECT to_regclass('public.todos')")
    assert todos is None


async def test_table_taken_out_of_expose_is_unwatched_and_stops_journaling(database: str) -> None:
    await run_sql(database, "CREATE TABLE items (id serial PRIMARY KEY)")
    await _apply(database, ("todos", "items"))
    assert await _capture_triggers(database, "items") == 4 and await _journaled(database, "items") == 1

    await _apply(database, ("todos",))

    assert await _capture_triggers(database, "items") == 0
    assert await _journaled(database, "items") == 0
    assert await _capture_triggers(database, "todos") == 4
    assert await run_sql(database, "SELECT name FROM gateway.exposed") == [("todos",)]


async def test_table_watched_in_sql_is_left_alone(database: str) -> None:
    await run_sql(database, "CREATE TABLE audit (id serial PRIMARY KEY)")
    await _apply(database, ("todos",))
    await run_sql(database, "SELECT gateway.watch('audit')")  # the user's own, never exposed

    await _apply(database, ("todos",))

    assert await _capture_triggers(database, "audit") == 4 and await _journaled(database, "audit") == 1


async def test_table_watched_in_sql_then_exposed_stays_watched_when_taken_out_again(database: str) -> None:
    await run_sql(database, "CREATE TABLE audit (id serial PRIMARY KEY)")
    await _apply(database, ("todos",))
    await run_sql(database, "SELECT gateway.watch('audit')")  # the user's own
    await _apply(database, ("todos", "audit"))  # exposed for a while

    await _apply(database, ("todos",))

    assert await _capture_triggers(database, "audit") == 4 and await _journaled(database, "audit") == 1
    assert await run_sql(database, "SELECT name FROM gateway.exposed") == [("todos",)]


async def test_database_watched_before_the_record_existed_keeps_working(database: str) -> None:
    """A journal from a gateway that kept no record: its tables stay watched, then are recorded."""
    await run_sql(database, "CREATE TABLE items (id serial PRIMARY KEY)")
    await _apply(database, ("todos", "items"))
    await run_sql(database, "DROP TABLE gateway.exposed")  # as an older gateway left the database

    await _apply(database, ("todos", "items"))
    assert await _journaled(database, "items") == 1
    assert await run_sql(database, "SELECT name FROM gateway.exposed ORDER BY 1") == [("items",), ("todos",)]

    await _apply(database, ("todos",))  # from now on, taking it out unwatches it
    assert await _capture_triggers(database, "items") == 0


async def test_exposed_table_dropped_meanwhile_is_forgotten_with_its_capture_function(database: str) -> None:
    await run_sql(database, "CREATE TABLE items (id serial PRIMARY KEY)")
    await _apply(database, ("todos", "items"))
    [(oid,)] = await run_sql(database, "SELECT 'items'::regclass::oid")
    await run_sql(database, "DROP TABLE items")

    await _apply(database, ("todos",))

    assert await run_sql(database, "SELECT name FROM gateway.exposed") == [("todos",)]
    assert await run_sql(database, "SELECT to_regprocedure(%s)", (f"gateway.capture_{oid}()",)) == [(None,)]


@pytest.mark.parametrize(
    ("late_tx", "boundary_tx", "converted"),
    [("100", "200", ("200", "100")), ("300", "200", ("300", "300")), (None, "200", ("200", None))],
    ids=["boundary_largest", "other_largest", "only_the_boundary_transaction"],
)
async def test_schema_converts_a_retention_whose_late_tx_left_out_the_boundary_transaction(
    database: str, late_tx: str | None, boundary_tx: str, converted: tuple[str | None, str | None]
) -> None:
    """Before second_late_tx, late_tx was the largest deleted xid other than the
    boundary row's: the pair becomes bounds that are never below the truth."""
    await _apply(database, ("todos",))
    await run_sql(
        database,
        "ALTER TABLE gateway.retention DROP COLUMN second_late_tx;"
        "UPDATE gateway.retention SET pruned_through = 5, boundary_tx = %s, boundary_xmin = %s, late_tx = %s",
        (boundary_tx, boundary_tx, late_tx),
    )
    await _apply(database, ("todos",))
    await _apply(database, ("todos",))  # once only
    rows = await run_sql(database, "SELECT late_tx::text, second_late_tx::text FROM gateway.retention")
    assert rows == [converted]


WAITING = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'gateway.journal'::regclass"


async def test_a_start_among_writers_waits_for_them_and_never_deadlocks(database: str) -> None:
    """Writes that come in while a gateway starts: they wait, it waits, and both go on.

    Applied as one transaction, the schema kept the journal's lock (CREATE INDEX IF NOT
    EXISTS takes it) while it went on to watch each table: a writer that had its table
    and was queued for the journal, and the start that wanted that table, deadlocked,
    and the gateway did not start.
    """
    await run_sql(database, "CREATE TABLE items (id serial PRIMARY KEY)")
    await _apply(database, ("todos", "items"))
    early, late = await aiopg.connect(database), await aiopg.connect(database)
    try:
        async with early.cursor() as first, late.cursor() as second:
            await first.execute("BEGIN; INSERT INTO todos (title) VALUES ('in flight')")  # holds the journal
            start = asyncio.create_task(_apply(database, ("todos", "items")))
            await until(lambda: _waiting(database, 1), what="the start waits for the journal")
            write = asyncio.create_task(second.execute("BEGIN; INSERT INTO items DEFAULT VALUES"))
            await until(lambda: _waiting(database, 2), what="the second writer waits for the journal too")
            await first.execute("COMMIT")
            await write  # has items, then the journal
            await second.execute("COMMIT")
            await start
    finally:
        early.close()
        late.close()
    assert await _capture_triggers(database, "items") == 4 and await _journaled(database, "items") == 1
    assert await run_sql(database, "SELECT count(*) FROM items") == [(2,)]


async def _waiting(database: str, count: int) -> bool:
    return (await run_sql(database, WAITING)) == [(count,)]
