"""Journal retention: delete history older than the configured age or row count.

Runs in every gateway process; ``gateway.prune()`` lets only one prune at a time
and deletes in short batches, so writers never wait on it. It also records what a
resume needs to know about what it deleted (schema.sql, gateway.retention), so a
cursor whose missed events may be gone gets a refetch rather than a gap.
"""

from __future__ import annotations

import asyncio
import logging

import aiopg
import psycopg2

from .db import first_line

log = logging.getLogger(__name__)

_PRUNE = "SELECT gateway.prune(%(age)s * interval '1 second', %(rows)s)"


async def prune_once(pool: aiopg.Pool, max_age: float, max_rows: int) -> int:
    """Prune until nothing is left to prune; return how many rows went."""
    total = 0
    async with pool.acquire() as conn, conn.cursor() as cur:
        while True:
            await cur.execute(_PRUNE, {"age": max_age, "rows": max_rows})
            (deleted,) = await cur.fetchone()
            total += int(deleted)
            if deleted == 0:
                return total


async def prune_forever(pool: aiopg.Pool, max_age: float, max_rows: int, interval: float) -> None:
    """Prune every ``interval`` seconds for the life of the process.

    A round that fails, however (database down, a lock held past the pool's timeout,
    a bug), is logged and the next round tries again: a journal that is never pruned
    again grows without bound, which is worse than any one failed round.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            deleted = await prune_once(pool, max_age, max_rows)
        except (psycopg2.Error, OSError, TimeoutError) as exc:
            log.warning("journal prune failed, will retry in %g s: %s", interval, first_line(exc))
            continue
        except Exception:
            log.exception("journal prune failed unexpectedly, will retry in %g s", interval)
            continue
        if deleted:
            log.info("pruned %d journal rows", deleted)
