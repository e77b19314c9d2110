"""/healthz and /readyz: what an orchestrator asks before sending traffic."""

from __future__ import annotations

import asyncio
import json

import psycopg2
from aiohttp import web

from .state import LISTENER, POOL


def _json(status: int, body: dict[str, object]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving HTTP; says nothing of the database."""
    return _json(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to serve: the pool answers a query and the listener is connected."""
    database = True
    try:
        async with asyncio.timeout(2.0):
            async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
                await cur.execute("SELECT 1")
    except (psycopg2.Error, OSError, TimeoutError):
        database = False
    listener = request.app[LISTENER].connected
    ready = database and listener
    return _json(200 if ready else 503, {"ready": ready, "database": database, "listener": listener})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
