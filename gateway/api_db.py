"""How an /api request's statements reach Postgres: as the token's role, in as few round trips as it can.

Theory of operation. A request runs one statement, or a few inside one transaction.
With auth off and no transaction, a statement autocommits: one round trip. With auth
on, the role and claims (:func:`gateway.request_role.role_prologue`) go in the same
message as the statement, so Postgres runs them as one implicit transaction: still
one round trip, and the role ends with the statement. A request that needs a
transaction (more than one statement, a result to check before it is kept, or
``Prefer: tx=rollback``) asks for one: ``BEGIN`` and the prologue go in front of its
first statement, and the end is ``COMMIT``, or ``ROLLBACK`` when the handler says so
or anything failed. A connection that cannot roll back is closed, never pooled in a
transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiopg
import psycopg2
from aiohttp import web

from .auth import Grant, grant_of
from .codes import Code
from .errors import ApiError
from .request_role import role_error, role_prologue
from .state import POOL


class Session:
    """One request's cursor. ``rollback = True`` ends its transaction without keeping anything."""

    def __init__(self, cur: Any, grant: Grant, transaction: bool) -> None:
        self.cur = cur
        self.grant = grant
        self.transaction = transaction
        self.rollback = False
        self.started = False  # BEGIN sent

    async def execute(self, query: str, params: dict[str, Any]) -> None:
        """Run one statement; a value the driver cannot send at all is the client's 400."""
        prologue = None if self.started and self.transaction else role_prologue(self.grant)
        head = "BEGIN; " if self.transaction and not self.started else ""
        if prologue is not None:
            head += prologue[0].as_string(self.cur.raw)
            params = {**params, **prologue[1]}
        first = not self.started
        self.started = True
        try:
            await self.cur.execute(head + query, params)
        except (ValueError, UnicodeEncodeError) as exc:  # NUL bytes, lone surrogates
            raise ApiError(Code.BAD_VALUE, f"a value cannot be sent as text: {exc}") from None
        except psycopg2.Error as exc:
            if prologue is not None and (first or not self.transaction):
                raise role_error(self.grant, exc) from None
            raise

    async def fetchall(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self.cur.fetchall()
        return rows

    @property
    def rowcount(self) -> int:
        count: int = self.cur.rowcount
        return count


@contextlib.asynccontextmanager
async def session(request: web.Request, *, transaction: bool = False) -> AsyncIterator[Session]:
    """A Session for ``request``'s grant; with ``transaction``, its statements commit or roll back together."""
    pool: aiopg.Pool = request.app[POOL]
    async with pool.acquire() as conn, conn.cursor() as cur:
        s = Session(cur, grant_of(request), transaction)
        try:
            yield s
        except BaseException:
            if s.started and transaction:
                await _rollback(conn, cur)
            raise
        if s.started and transaction:
            await cur.execute("ROLLBACK" if s.rollback else "COMMIT")


async def _rollback(conn: aiopg.Connection, cur: Any) -> None:
    """End the failed transaction; a connection that cannot (or a cancelled request) is closed
    instead, so the pool never hands out one still in a transaction."""
    if conn.closed:
        return
    try:
        async with asyncio.timeout(5.0):
            await cur.execute("ROLLBACK")
    except Exception:  # the error that failed the request is the one to answer
        conn.close()
