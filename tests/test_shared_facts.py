"""Facts that SQL and Python both need: one source each, or a proof that the copies agree.

* The advisory lock ids are named in gateway/locks.py; the SQL files write the
  numbers. Every lock call in SQL and Python must use a named id, and the SQL must
  yield to the lock Python takes under that name.
"""

from __future__ import annotations

import re

import aiopg
import pytest

from gateway import locks
from gateway.db import apply_schema, create_pool, read_sql

from .conftest import ROOT, run_sql
from .waiting import notifications_before_marker

NAMED_LOCKS = {name: value for name, value in vars(locks).items() if name.endswith("_LOCK")}
# pg_advisory_lock(...), pg_try_advisory_xact_lock_shared(...), pg_advisory_unlock(...):
# every call that takes or lets go of one lock, and its argument.
LOCK_CALL = re.compile(r"pg_(?:try_)?advisory_(?:xact_)?(?:un)?lock(?:_shared)?\(([^()]*)\)")


def test_lock_ids_are_distinct_and_fit_an_advisory_lock_key() -> None:
    assert set(NAMED_LOCKS) == {"WAKE_LOCK", "PRUNE_LOCK", "APPLY_LOCK"}
    assert len(set(NAMED_LOCKS.values())) == len(NAMED_LOCKS)
    assert all(0 < value < 2**31 for value in NAMED_LOCKS.values())


@pytest.mark.parametrize(("sql_file", "lock"), [("triggers.sql", "WAKE_LOCK"), ("schema.sql", "PRUNE_LOCK")])
def test_each_sql_file_writes_the_number_of_its_named_lock(sql_file: str, lock: str) -> None:
    args = LOCK_CALL.findall(read_sql(sql_file))
    assert args, f"{sql_file} takes no advisory lock"
    assert set(args) == {str(NAMED_LOCKS[lock])}, f"{sql_file} must take {lock} = {NAMED_LOCKS[lock]}: {args}"


def test_python_takes_locks_only_by_name() -> None:
    """No module but gateway/locks.py spells a lock id; each lock call takes a name or a parameter."""
    for path in sorted((ROOT / "gateway").glob("*.py")):
        if path.name == "locks.py":
            continue
        text = path.read_text(encoding="utf-8")
        for name, value in NAMED_LOCKS.items():
            assert str(value) not in text and hex(value)[2:] not in text.replace("_", ""), f"{path.name}: {name}"
        for arg in LOCK_CALL.findall(text):
            assert arg in ("%s", "{WAKE_LOCK}"), f"{path.name} takes an advisory lock on {arg!r}"


async def test_sql_yields_to_the_locks_python_names(database: str) -> None:
    pool = await create_pool(database, 2)
    await apply_schema(pool, ("todos",), demo=False)
    pool.close()
    await pool.wait_closed()
    async with aiopg.connect(database) as holder, aiopg.connect(database) as spy:
        async with holder.cursor() as cur, spy.cursor() as spy_cur:
            await spy_cur.execute("LISTEN gateway_journal")
            # WAKE_LOCK: writers notify only while a listener holds it.
            await run_sql(database, "INSERT INTO todos (title) VALUES ('nobody sleeps')")
            assert await notifications_before_marker(spy, database) == []
            await cur.execute("SELECT pg_advisory_lock(%s)", (locks.WAKE_LOCK,))
            await run_sql(database, "INSERT INTO todos (title) VALUES ('a listener sleeps')")
            assert len(await notifications_before_marker(spy, database)) == 1
            await cur.execute("SELECT pg_advisory_unlock(%s)", (locks.WAKE_LOCK,))
            # PRUNE_LOCK: a prune that finds it taken deletes nothing.
            await cur.execute("SELECT pg_advisory_lock(%s)", (locks.PRUNE_LOCK,))
            assert await run_sql(database, "SELECT gateway.prune(interval '0', 0)") == [(0,)]
            await cur.execute("SELECT pg_advisory_unlock(%s)", (locks.PRUNE_LOCK,))
            assert await run_sql(database, "SELECT gateway.prune(interval '0', 0)") == [(2,)]
