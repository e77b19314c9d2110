"""The prune task against a real Postgres: a failed round is logged and the next goes on."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiopg
import pytest

from gateway.db import apply_schema, first_line
from gateway.retention import prune_forever


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
                async with asyncio.timeout(10):
                    while "journal prune failed" not in caplog.text:
                        await asyncio.sleep(0.02)
                await lock.execute("COMMIT")
                async with asyncio.timeout(20):
                    while await _journal_rows(database) > 1:
                        assert not task.done(), f"the prune task ended: {task.exception()!r}"
                        await asyncio.sleep(0.05)
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
