"""/healthz, /readyz and /metrics: what an orchestrator and Prometheus ask."""

from __future__ import annotations

import asyncio
import json

import psycopg2
from aiohttp import web

from .state import HUB, LISTENER, POOL


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


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    stats = request.app[HUB].statistics()
    listener = request.app[LISTENER]
    lines = [
        "# HELP gateway_subscribers Open /events streams.",
        "# TYPE gateway_subscribers gauge",
        f"gateway_subscribers {stats.subscribers}",
        "# HELP gateway_topics Topics with at least one subscriber.",
        "# TYPE gateway_topics gauge",
        f"gateway_topics {stats.topics}",
        "# HELP gateway_events_in_total Events read from the journal by the listener.",
        "# TYPE gateway_events_in_total counter",
        f"gateway_events_in_total {stats.events_in}",
        "# HELP gateway_deliveries_total Events queued to subscribers.",
        "# TYPE gateway_deliveries_total counter",
        f"gateway_deliveries_total {stats.deliveries}",
        "# HELP gateway_slow_consumers_closed_total Subscribers closed for falling behind.",
        "# TYPE gateway_slow_consumers_closed_total counter",
        f"gateway_slow_consumers_closed_total {stats.slow_consumers_closed}",
        "# HELP gateway_listener_connected 1 while the LISTEN connection is up.",
        "# TYPE gateway_listener_connected gauge",
        f"gateway_listener_connected {int(listener.connected)}",
        "# HELP gateway_listener_reconnects_total Times the LISTEN connection was lost.",
        "# TYPE gateway_listener_reconnects_total counter",
        f"gateway_listener_reconnects_total {listener.reconnects}",
        "# HELP gateway_journal_position Highest journal id the listener has seen.",
        "# TYPE gateway_journal_position gauge",
        f"gateway_journal_position {stats.position}",
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
