"""A request's database role and JWT claims, set as PostgREST sets them.

With auth on, every /api statement of a request runs in one transaction that starts
with :func:`enter_role`: the token's ``role`` claim becomes the transaction's role
(``SET LOCAL ROLE``) and its claims ``request.jwt.claims`` (a JSON object, the
``role`` among them), plus PostgREST's older one setting per claim,
``request.jwt.claim.<name>``. So the database's own GRANTs and row-level security
policies decide what the token may see and change::

    CREATE POLICY own ON todos USING (owner = current_setting('request.jwt.claims', true)::json->>'sub');

Both are ``set_config(name, value, true)`` (``true``: local to the transaction, what
``SET LOCAL`` does, with the same checks), as PostgREST does it: the role name is a
parameter value, so no token text is ever part of the SQL, not even quoted. It all
goes in one round trip with ``BEGIN`` (:func:`enter_role`), or in front of a
request's first statement (:func:`role_prologue`). When the transaction ends, so do the role
and the settings: a pooled connection never carries them to the next request (a
connection released inside a transaction is closed by the pool, not reused).

A token without a ``role`` claim runs as the gateway's own database user; with auth
off, nothing is set and no transaction is opened (each statement autocommits).
Errors as PostgREST answers them: a role that does not exist is a 401, one the
gateway's user may not become (``GRANT app_user TO gateway``) a 403, and so is a
table or row the role may not touch (SQLSTATE 42501, mapped in gateway.errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiopg
import psycopg2
from psycopg2 import sql

from .auth import Grant
from .codes import Code
from .errors import CHALLENGE, ApiError

# A claim gets a ``request.jwt.claim.<name>`` setting only if Postgres takes its name
# as a setting's (letters, digits, _ and $); a URL-like claim name would fail the request.
_LEGACY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _settings(grant: Grant) -> list[tuple[str, str]]:
    """(setting, value) pairs for ``grant``, the role first (its check comes before any claim)."""
    claims = dict(grant.claims or {})
    pairs = []
    if grant.role is not None:
        pairs.append(("role", grant.role))
    pairs.append(("request.jwt.claims", json.dumps(claims, separators=(",", ":"))))
    for name, value in claims.items():
        if _LEGACY_NAME.fullmatch(name):
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            pairs.append((f"request.jwt.claim.{name}", text))
    return pairs


def role_prologue(grant: Grant) -> tuple[sql.Composable, dict[str, str]] | None:
    """SQL to send in front of a request's first statement, and its named parameters
    (``%(jwt_0)s``...: no clash with a statement's own), or None when auth is off.

    ``SELECT set_config(...), ...; `` ends with the statement separator, so
    ``prologue + statement`` is one message, one round trip. Inside ``BEGIN`` it sets
    the whole transaction's role; without one, the message's statements still form one
    implicit transaction (Postgres runs a multi-statement simple query so, and psycopg2
    sends every statement so), so the role and claims hold for the statement after it
    and end with it. Map errors of that first execute with :func:`role_error`.
    """
    if grant.claims is None:
        return None
    params: dict[str, str] = {}
    calls = []
    for name, value in _settings(grant):
        key, val = f"jwt_{len(params)}", f"jwt_{len(params) + 1}"
        params[key], params[val] = name, value
        calls.append(sql.SQL("set_config({}, {}, true)").format(sql.Placeholder(key), sql.Placeholder(val)))
    return sql.SQL("SELECT ") + sql.SQL(", ").join(calls) + sql.SQL("; "), params


async def enter_role(cur: Any, grant: Grant, *, begin: bool = False) -> None:
    """Set ``grant``'s role and claims for the transaction ``cur`` is in (``begin``: open it
    first, in the same round trip). Nothing to do when auth is off (``grant.claims`` None).

    Raises ApiError: 401 for a role that does not exist, 403 for one the gateway's
    database user may not take.
    """
    prologue = role_prologue(grant)
    if prologue is None:
        return
    query, params = prologue
    try:
        await cur.execute((sql.SQL("BEGIN; ") if begin else sql.SQL("")) + query, params)
    except psycopg2.Error as exc:
        raise role_error(grant, exc) from None


def role_error(grant: Grant, exc: psycopg2.Error) -> Exception:
    """What a database error from a statement sent with ``grant``'s prologue means: the role's
    401 or 403 ApiError if setting the role failed, else ``exc`` itself (map it as any)."""
    message = (exc.diag.message_primary or str(exc)).strip()
    if exc.pgcode == "22023" and message.startswith("role"):  # role "x" does not exist
        return ApiError(
            Code.UNKNOWN_ROLE,
            f"the token's role {grant.role!r} is not a database role",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    if exc.pgcode == "42501" and "set role" in message:  # permission denied to set role "x"
        return ApiError(
            Code.INSUFFICIENT_PRIVILEGE,
            f"{message}: the gateway's database user is not a member of it",
            hint=f"GRANT {grant.role} TO the gateway's database user",
        )
    return exc  # anything else (the database went away) is mapped as any database error


@contextlib.asynccontextmanager
async def role_cursor(pool: aiopg.Pool, grant: Grant) -> AsyncIterator[Any]:
    """A cursor whose statements run as ``grant``'s role, in one transaction committed at the
    end (rolled back on any error); with auth off, a plain autocommit cursor."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        if grant.claims is None:
            yield cur
            return
        try:
            await enter_role(cur, grant, begin=True)
            yield cur
        except BaseException:
            await _rollback(conn, cur)
            raise
        await cur.execute("COMMIT")


async def _rollback(conn: aiopg.Connection, cur: Any) -> None:
    """End the failed transaction; a connection that cannot (or a cancelled request) is closed
    instead, so the pool never hands out one still in a transaction as this role."""
    if conn.closed:
        return
    try:
        async with asyncio.timeout(5.0):
            await cur.execute("ROLLBACK")
    except Exception:  # the error that failed the request is the one to answer
        conn.close()
