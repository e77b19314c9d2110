"""/inspect: a page that shows what the gateway holds and tails any stream, and its JSON.

On with GATEWAY_INSPECTOR=on, or by default in demo mode; off, its paths are 404s.
It lists every exposed table and every topic with subscribers, and can tail any
stream, so with auth on it needs a token whose ``inspect`` claim is true (403
otherwise; the auth guard has already answered a missing or bad token with a 401).
The tail is an ordinary ``/events`` request made by the page with the same token, so
the token's ``topics`` (and any ``rows``) grants still decide what it may tail.

``GET /inspect/state`` is a snapshot read at the moment of asking: the catalog's
tables, the hub's topics and their subscriber counts, the counters the hub and
the listener report (:mod:`gateway.metrics`), and the journal's newest id against
the hub's position (the lag). The page asks for it every second and draws rates
from successive counters itself, so the gateway keeps no history for it.

The page is one static file (``static/inspector.html``, its script and style
inline): no build step, no CDN, it works offline. It is served from its own
handler, not as a FileResponse, for the reason the todo page is (gateway.app).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aiohttp import web

from . import exactjson
from .auth import grant_of
from .metrics import journal_newest
from .state import HUB, LISTENER, METRICS, SETTINGS, TABLES

PAGE = Path(__file__).parent / "static" / "inspector.html"


async def page(request: web.Request) -> web.Response:
    grant_of(request).require_inspect()
    return web.Response(
        body=PAGE.read_bytes(),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def state(request: web.Request) -> web.Response:
    grant_of(request).require_inspect()
    return web.Response(
        text=exactjson.dumps(await snapshot(request)),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def snapshot(request: web.Request) -> dict[str, Any]:
    """What /inspect/state answers (JSON-ready)."""
    app = request.app
    hub, counted, listener = app[HUB], app[METRICS], app[LISTENER]
    counts = hub.subscribers_by_topic()
    stats = hub.statistics()
    newest = await journal_newest(request)
    tables = [
        {
            "name": table.name,
            "primary_key": list(table.primary_key),
            "columns": [{"name": c.name, "type": c.type_sql} for c in table.columns.values()],
            "subscribers": sum(n for topic, n in counts.items() if topic == name or topic.startswith(name + "/")),
        }
        for name, table in sorted(app[TABLES].items())
    ]
    return {
        "time": time.time(),
        "auth": app[SETTINGS].auth_enabled,
        "tables": tables,
        "topics": [{"topic": topic, "subscribers": n} for topic, n in sorted(counts.items())],
        "subscribers": stats.subscribers,
        "events_in": counted.events_in,
        "deliveries": counted.deliveries,
        "bytes_out": counted.bytes_out,
        "slow_consumers_closed": counted.slow_consumers_closed,
        "listener": {
            "connected": listener.connected,
            "mode": None if counted.wake_mode is None else str(counted.wake_mode),
        },
        "journal": {
            "position": stats.position,
            "newest": newest,
            "lag": None if newest is None else max(0, newest - stats.position),
        },
    }


def add_routes(app: web.Application) -> None:
    """Register /inspect and /inspect/state when the inspector is on."""
    if app[SETTINGS].inspector_on:
        app.router.add_get("/inspect", page)
        app.router.add_get("/inspect/state", state)
