"""Typed keys for what hangs off the aiohttp application (no module globals)."""

from __future__ import annotations

import aiopg
from aiohttp import web

from .catalog import Table
from .config import Settings
from .hub import Hub
from .listener import Listener

SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
DSN: web.AppKey[str] = web.AppKey("dsn", str)
POOL: web.AppKey[aiopg.Pool] = web.AppKey("pool", aiopg.Pool)
TABLES: web.AppKey[dict[str, Table]] = web.AppKey("tables", dict)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
LISTENER: web.AppKey[Listener] = web.AppKey("listener", Listener)
