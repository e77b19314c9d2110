"""The listener against a real Postgres: a read that breaks off part-way is finished, not repeated."""

from __future__ import annotations

import asyncio

from gateway.db import apply_schema, create_pool
from gateway.hub import Hub
from gateway.journal import PAGE_ROWS, Event
from gateway.listener import Listener

from .conftest import run_sql


class DropsOnce(Hub):
    """A hub whose second page fails as a dropped connection would, once."""

    def __init__(self) -> None:
        super().__init__(1 << 30)
        self.ids: list[int] = []
        self.pages = 0

    def publish(self, events: list[Event]) -> None:
        self.pages += 1
        if self.pages == 2:
            raise ConnectionResetError("connection dropped in the middle of a read")
        self.ids.extend(e.id for e in events)
        super().publish(events)


async def test_read_broken_off_mid_page_is_finished_without_duplicates(database: str) -> None:
    pool = await create_pool(database, 2)
    await apply_schema(pool, ("todos",), demo=False)
    pool.close()
    await pool.wait_closed()
    hub = DropsOnce()
    listener = Listener(database, hub, check_interval=0.2)
    task = asyncio.create_task(listener.run())
    await listener.wait_started()
    rows = PAGE_ROWS * 3 + 17
    await run_sql(database, f"INSERT INTO todos (title) SELECT 't' || i FROM generate_series(1, {rows}) i")
    async with asyncio.timeout(20):
        while len(hub.ids) < rows:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    await listener.stop(task, within=5)
    journal = [r[0] for r in await run_sql(database, "SELECT id FROM gateway.journal ORDER BY id")]
    assert len(journal) == rows
    # Page 2 failed before it reached the hub; the retry finished the read from after
    # page 1: every row once, in order (re-reading from the old snapshot would repeat page 1).
    assert hub.ids == journal
    assert listener.reconnects == 1
