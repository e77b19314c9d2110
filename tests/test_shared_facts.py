"""Facts that SQL and Python both need: one source each, or a proof that the copies agree.

* The advisory lock ids are named in gateway/locks.py; the SQL files write the
  numbers. Every lock call in SQL and Python must use a named id, and the SQL must
  yield to the lock Python takes under that name.
* The topic syntax is a regex in gateway/stream.py and a bracket expression in
  gateway.publish() (triggers.sql): both must accept and refuse the same topics.
* A table's topic and its primary key are SQL functions of triggers.sql that the
  capture trigger and gateway/catalog.py both use; the tests prove a table's URL name
  and key are what its journal rows carry.
"""

from __future__ import annotations

import re
import unicodedata

import aiopg
import psycopg2
import pytest

from gateway import locks
from gateway.catalog import load_table
from gateway.db import apply_schema, create_pool, read_sql

from .conftest import ROOT, run_sql, start_gateway
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


# Each is tried as a stream's topic (GET /events) and as gateway.publish()'s: a few
# plain ones, the length limit, and every character either rule could refuse (every
# control, separator and format character, and all Python calls space), alone and
# inside a topic. NUL is left out: no Postgres text holds it.
_SUSPECTS = [
    chr(c)
    for c in range(1, 0x30000)
    if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zs", "Zl", "Zp") or chr(c).isspace()
]
TOPICS = ["todos", "todos/42", "é/中文/🙂", "*", "a" * 200, "a" * 201, "", *_SUSPECTS, *(f"x{c}y" for c in _SUSPECTS)]
# stream.py takes C1 controls but publish() refuses them (as it always did in a
# Unicode locale): a stream may name a topic nothing can publish to, which is harmless;
# stream.py's rule should refuse them too, and then this exception goes.
C1_BUT_NEL = {chr(c) for c in range(0x80, 0xA0)} - {"\x85"}


async def test_stream_and_publish_agree_on_what_a_topic_is(database: str) -> None:
    only_stream, only_publish = set(), set()
    async with start_gateway(database) as gw:
        for topic in TOPICS:
            async with gw.http.get(gw.url + "/events", params={"topic": topic}) as resp:
                assert resp.status in (200, 400), (topic, resp.status)
                stream_takes = resp.status == 200
            try:
                await gw.sql("SELECT gateway.publish(%s)", (topic,))
                publish_takes = True
            except psycopg2.Error as exc:
                assert exc.pgcode == "22023", (topic, exc)
                publish_takes = False
            if stream_takes and not publish_takes:
                only_stream.add(topic)
            elif publish_takes and not stream_takes:
                only_publish.add(topic)
    assert only_publish == set(), "topics publish() takes that no stream can name"
    assert only_stream == C1_BUT_NEL | {f"x{c}y" for c in C1_BUT_NEL}


@pytest.mark.parametrize(
    ("create", "name", "topic", "key"),
    [
        ("CREATE TABLE todos2 (id int PRIMARY KEY, t text)", "todos2", "todos2", ("id",)),
        ("CREATE TABLE audit.events (a int, b text, c int, PRIMARY KEY (c, a))", "audit.events", "audit.events",
         ("c", "a")),
        ('CREATE TABLE "Mixed" ("Key" int PRIMARY KEY, t text)', '"Mixed"', "Mixed", ("Key",)),
        ('CREATE TABLE audit."dot.ted" (k int, "k 2" int, PRIMARY KEY ("k 2", k))', 'audit."dot.ted"',
         "audit.dot.ted", ("k 2", "k")),
    ],
)  # fmt: skip
async def test_a_tables_url_name_and_key_are_its_journal_topic_and_pk(
    database: str, create: str, name: str, topic: str, key: tuple[str, ...]
) -> None:
    await run_sql(database, "CREATE SCHEMA audit")
    await run_sql(database, create)
    pool = await create_pool(database, 2)
    try:
        await apply_schema(pool, (name,), demo=False)
        async with pool.acquire() as conn, conn.cursor() as cur:
            table = await load_table(cur, name)
    finally:
        pool.close()
        await pool.wait_closed()
    values = {column: index + 1 for index, column in enumerate(table.columns) if column not in ("t", "b")}
    columns = ", ".join(f'"{column}"' for column in values)
    await run_sql(database, f"INSERT INTO {name} ({columns}) VALUES ({', '.join(map(str, values.values()))})")
    [(journal_topic, pk)] = await run_sql(database, "SELECT topic, pk FROM gateway.journal")
    assert (table.name, table.primary_key) == (topic, key)
    assert journal_topic == table.name
    assert pk == ",".join(str(values[column]) for column in table.primary_key)
