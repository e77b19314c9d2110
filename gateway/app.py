"""Wiring only: build the aiohttp application from Settings and a database DSN.

Start-up and shutdown read top to bottom in the ``cleanup_ctx`` generators: the
JWT key set's fetcher (when there is one) first, in the background, then the pool
and schema, then the listener, then retention. On shutdown every SSE
stream is told to reconnect and ended, so the server does not wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from . import filtered, health, inspector, metrics, publish, rest, rpc, stream
from .access_log import ACCESS_LOGGER, AccessLogger
from .aiohttp_adapter import LINGER, GatewayRunner
from .auth import Authenticator, authenticate
from .config import Settings
from .cors import CorsPolicy, add_cors_headers, preflight
from .db import apply_schema, create_pool
from .ending import EndReason
from .errors import json_errors
from .group import Group
from .hub import Hub
from .limits import StreamLimits
from .listener import Listener
from .metrics import Metrics, observe_response, start_timer
from .openapi import routes as add_openapi_routes
from .reload import Reloader, install, load_catalog
from .retention import prune_forever
from .sse import HEARTBEAT
from .state import (
    AUTHENTICATOR,
    CATALOG_LISTENERS,
    CORS,
    DSN,
    FUNCTIONS,
    GROUP,
    HUB,
    LIMITS,
    LISTENER,
    METRICS,
    POOL,
    RELOADER,
    SETTINGS,
    TABLES,
)

LISTENER_START_TIMEOUT = 15.0
POOL_CLOSE_TIMEOUT = 5.0

log = logging.getLogger(__name__)


async def _key_set(app: web.Application) -> AsyncIterator[None]:
    """GATEWAY_JWT_JWKS_URL's keys, fetched in the background: start-up does not wait for
    the identity provider (until it answers, tokens get a 503 and can retry)."""
    key_set = app[AUTHENTICATOR].key_set
    if key_set is None:
        yield
        return
    task = asyncio.create_task(key_set.run(), name="gateway-jwks")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(app[DSN], settings.pool_size)
    try:
        await apply_schema(pool, settings.expose, settings.demo)
        async with pool.acquire() as conn, conn.cursor() as cur:
            install(app, await load_catalog(cur, settings))
        app[POOL] = pool
        yield
    finally:
        await app[RELOADER].stop()
        pool.close()
        try:  # a connection still checked out would make this wait forever
            async with asyncio.timeout(POOL_CLOSE_TIMEOUT):
                await pool.wait_closed()
            log.debug("database pool closed")
        except TimeoutError:
            log.warning("database pool did not close within %.0f s; exiting anyway", POOL_CLOSE_TIMEOUT)


async def _listener(app: web.Application) -> AsyncIterator[None]:
    listener = app[LISTENER]
    listener.start()
    try:
        async with asyncio.timeout(LISTENER_START_TIMEOUT):
            await listener.wait_started()
        yield
    finally:
        await listener.stop(within=POOL_CLOSE_TIMEOUT)
        log.debug("listener stopped")


async def _retention(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    task = asyncio.create_task(
        prune_forever(app[POOL], settings.journal_retention, settings.journal_max_rows, settings.prune_interval),
        name="gateway-retention",
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _heartbeat(app: web.Application) -> AsyncIterator[None]:
    """One timer for all streams: a comment every GATEWAY_HEARTBEAT seconds."""

    async def beat(hub: Hub, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            hub.broadcast(HEARTBEAT)

    task = asyncio.create_task(beat(app[HUB], app[SETTINGS].heartbeat), name="gateway-heartbeat")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _end_streams(app: web.Application) -> None:
    log.debug("ending %d streams", app[HUB].statistics().subscribers)
    app[HUB].close_all(EndReason.SHUTDOWN)


def create_app(settings: Settings, dsn: str, group: Group | None = None) -> web.Application:
    """The gateway as an aiohttp app; raises ConfigError for an unusable auth key.

    With ``group`` (a worker of ``--workers N``) its counters and stream limits are
    the group's, kept in shared memory (gateway.group)."""
    app = web.Application(
        middlewares=[
            json_errors(guards=(start_timer, preflight, authenticate), streams=(stream.events, filtered.events))
        ],
        client_max_size=settings.max_body,
    )
    counted = app[METRICS] = Metrics() if group is None else group.metrics()
    app[AUTHENTICATOR] = Authenticator(
        settings.jwt_secret, settings.jwt_public_key, settings.jwt_audience, settings.jwt_jwks_url
    )
    app[CORS] = CorsPolicy(settings.cors_origins)
    if group is None:
        app[LIMITS] = StreamLimits(settings.max_subscribers, settings.max_subscribers_per_client)
    else:
        app[LIMITS] = group.limits(settings.max_subscribers, settings.max_subscribers_per_client)
        app[GROUP] = group
        app.on_response_prepare.append(group.tag_response)
    app.on_response_prepare.append(add_cors_headers)
    app.on_response_prepare.append(observe_response)
    hub = Hub(settings.subscriber_buffer, counted)
    app[SETTINGS] = settings
    app[DSN] = dsn
    app[HUB] = hub
    app[TABLES] = {}
    app[FUNCTIONS] = {}
    app[CATALOG_LISTENERS] = []
    reloader = app[RELOADER] = Reloader(app)
    listen_dsn = settings.listen_url or dsn
    app[LISTENER] = Listener(
        listen_dsn,
        hub,
        settings.listener_check,
        settings.poll_interval,
        settings.busy_poll_interval,
        counters=counted,
        on_reload=reloader.request,
    )
    app.cleanup_ctx.append(_key_set)  # first: its fetch runs while the database starts
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_listener)
    app.cleanup_ctx.append(_retention)
    app.cleanup_ctx.append(_heartbeat)
    app.on_shutdown.append(_end_streams)
    stream.add_routes(app)
    publish.add_routes(app)  # POST /events/publish: a plain path, before any /events/<table>
    filtered.add_routes(app)
    rpc.add_routes(app)  # before rest's: /api/rpc/<function> is not /api/<table>/<pk>
    rest.add_routes(app)
    add_openapi_routes(app)  # GET /api/ and /api: the OpenAPI document
    health.add_routes(app)
    metrics.add_routes(app)
    inspector.add_routes(app)  # only when GATEWAY_INSPECTOR (or demo mode) turns it on
    if settings.demo and "todos" in settings.expose:
        app.router.add_get("/", _todo_page)
    return app


def create_runner(app: web.Application) -> web.AppRunner:
    """The runner that serves ``app``: our protocol hooks (aiohttp_adapter) and access log."""
    settings = app[SETTINGS]
    return GatewayRunner(
        app,
        handler_cancellation=True,
        access_log=ACCESS_LOGGER if settings.access_log else None,
        access_log_class=AccessLogger,
        shutdown_timeout=settings.shutdown_timeout,
        request_head_timeout=settings.request_head_timeout,
        # aiohttp's own default (3630 s) lets one client hold idle sockets for an hour;
        # 75 s is what web.run_app and nginx use.
        keepalive_timeout=settings.keepalive_timeout,
        # A request answered before its body was read (a 408, a 401 on a POST) drains
        # the rest this long before its connection closes, as a refused one does.
        lingering_time=LINGER,
    )


TODO_PAGE = Path(__file__).parent / "static" / "index.html"


async def _todo_page(request: web.Request) -> web.Response:
    """The live todo demo: one static page, no build step.

    A plain response, not a FileResponse: the page is a few kB, and FileResponse's
    Range, If-Match and If-Unmodified-Since answers (416, 412) have empty bodies
    rather than the JSON every other error has. A Range header is ignored (RFC 9110
    allows that): the whole page comes back with 200.
    """
    return web.Response(body=TODO_PAGE.read_bytes(), content_type="text/html", charset="utf-8")
