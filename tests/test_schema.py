"""schema.sql and triggers.sql against a real Postgres: applying them over an older journal."""

from __future__ import annotations

from gateway.db import apply_schema, create_pool

from .conftest import run_sql


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
