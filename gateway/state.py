"""Typed keys for what hangs off the aiohttp application and its requests: all of them, here.

No module globals: every shared object lives on the app under one of these keys. The
types are imported for the type checker only, so any module may import its keys from
here without an import cycle (aiohttp uses a key's type only in its repr).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import aiopg

    from .auth import Authenticator, Grant
    from .catalog import Table
    from .config import Settings
    from .cors import CorsPolicy
    from .functions import Function
    from .group import Group
    from .hub import Hub
    from .limits import StreamLimits
    from .listener import Listener
    from .metrics import Metrics
    from .openapi import Served
    from .reload import CatalogListener, Reloader

# The application's.
SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DSN: web.AppKey[str] = web.AppKey("dsn", str)
POOL: web.AppKey[aiopg.Pool] = web.AppKey("pool")
TABLES: web.AppKey[dict[str, Table]] = web.AppKey("tables", dict)
# GATEWAY_RPC's functions by name as configured: each name's overloads.
FUNCTIONS: web.AppKey[dict[str, tuple[Function, ...]]] = web.AppKey("functions", dict)
HUB: web.AppKey[Hub] = web.AppKey("hub")
LISTENER: web.AppKey[Listener] = web.AppKey("listener")
AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator")
CORS: web.AppKey[CorsPolicy] = web.AppKey("cors")
LIMITS: web.AppKey[StreamLimits] = web.AppKey("limits")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
RELOADER: web.AppKey[Reloader] = web.AppKey("reloader")
# Set only in a worker of --workers N: its slot in the group's shared memory.
GROUP: web.AppKey[Group] = web.AppKey("group")
# Called with the app after each catalog load (start-up and every reload): gateway.reload.
CATALOG_LISTENERS: web.AppKey[list[CatalogListener]] = web.AppKey("catalog_listeners", list)
# The OpenAPI document as served at GET /api/, rebuilt by a catalog listener: gateway.openapi.
OPENAPI: web.AppKey[Served] = web.AppKey("openapi")

# A request's (set only when needed: the first key stored creates a dict that lives as
# long as the request, and a stream's request lives for hours).
GRANT: web.RequestKey[Grant] = web.RequestKey("grant")
STARTED: web.RequestKey[float] = web.RequestKey("started", float)
