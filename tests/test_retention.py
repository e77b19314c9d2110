"""The prune task against a real Postgres: a failed round is logged and the next goes on."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiopg
import pytest

from gateway.db import apply_schema, first_line
from gateway.retention import prune_forever, prune_once

from .waiting import until


async def test_pruning_goes_on_after_a_round_that_timed_out(database: str, caplog: pytest.LogCaptureFixture) -> None:
    """A lock held elsewhere makes a round outlast the pool's operation timeout: aiopg
    raises a TimeoutError with no message. The task logs it and prunes on the next round."""
    caplog.set_level(logging.WARNING, logger="gateway.retention")
    async with aiopg.create_pool(database, timeout=0.5) as pool:
        await apply_schema(pool, (), demo=False)
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT gateway.publish('t', '{}') FROM generate_series(1, 10)")
        async with aiopg.connect(database) as locker, locker.cursor() as lock:
            await lock.execute("BEGIN; LOCK TABLE gateway.journal IN ACCESS EXCLUSIVE MODE")
            task = asyncio.create_task(prune_forever(pool, 0.0, 1, interval=0.05))
            try:
                await until(lambda: "journal prune failed" in caplog.text, what="a round failed and was logged")
                await lock.execute("COMMIT")

                async def pruned() -> bool:
                    assert not task.done(), f"the prune task ended: {task.exception()!r}"
                    return await _journal_rows(database) <= 1

                await until(pruned, timeout=20, what="the next rounds pruned the journal")
                assert not task.done()
                assert "TimeoutError" in caplog.text
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _journal_rows(dsn: str) -> int:
    async with aiopg.connect(dsn) as conn, conn.cursor() as cur:
        await cur.execute("SELECT count(*) FROM gateway.journal")
        (count,) = await cur.fetchone()
        return int(count)


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text")


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (TimeoutError(), "TimeoutError"),
        (RuntimeError("   \n  "), "RuntimeError"),
        (ValueError("first\nDETAIL: second"), "first"),
        (OSError("  padded  "), "padded"),
        (_Unprintable(), "_Unprintable"),
    ],
)
def test_first_line_of_an_exception_never_fails(exc: BaseException, line: str) -> None:
    assert first_line(exc) == line


async def test_prune_once_keeps_the_newest_rows_and_counts_what_went(database: str) -> None:
    """gateway.prune() deletes in batches; one call of prune_once() runs them all."""
    async with aiopg.create_pool(database) as pool:
        await apply_schema(pool, (), demo=False)
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT gateway.publish('t', '{}') FROM generate_series(1, 30)")
        assert await prune_once(pool, max_age=3600.0, max_rows=1000) == 0  # young and few: nothing goes
        assert await prune_once(pool, max_age=3600.0, max_rows=4) == 26
        assert await _journal_rows(database) == 4
        assert await prune_once(pool, max_age=0.0, max_rows=1000) == 4  # older than 0 s: every row
        assert await _journal_rows(database) == 0
