"""The catalog the /api handlers read: loaded at start, reloaded without a restart.

The catalog is the exposed tables (:mod:`gateway.catalog`) and the GATEWAY_RPC
functions (:mod:`gateway.functions`).

Theory of operation: ``NOTIFY gateway_reload`` (PostgREST's ``NOTIFY pgrst``), read
by the listener and handed to :meth:`Reloader.request`, or SIGHUP (the CLI), asks
for a reload. The reload reads the columns and keys of the exposed tables (and the
arguments of the functions) again
(which tables are exposed stays a start-up setting: their triggers are set up at
start) into new :class:`~gateway.catalog.Table` objects, and only once every one is
read swaps them into ``app[TABLES]`` (and ``app[FUNCTIONS]``) in one synchronous step: a request sees the old
catalog or the new one, never a mix, and one that already holds a Table keeps it.
A reload that fails (an exposed table was dropped or renamed, the database is down)
changes nothing and logs a warning saying so; the next request for a reload tries
again. Requests that come while a reload runs are folded into one more reload after
it, so the last schema change is always read.

Whatever is derived from the catalog (the OpenAPI document) registers a callable in
``app[CATALOG_LISTENERS]``: each is called with the app right after the swap, at
start-up and after every reload, in the same step, so nothing serves a document of
another catalog than the handlers'.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiopg
import psycopg2
from aiohttp import web

from .catalog import Table, load_table
from .config import Settings
from .db import first_line
from .functions import Function, UnknownFunction, load_function
from .state import CATALOG_LISTENERS, FUNCTIONS, POOL, SETTINGS, TABLES

log = logging.getLogger(__name__)

RELOAD_TIMEOUT = 30.0

# Called with the app after every catalog swap (see the module's docstring).
CatalogListener = Callable[[web.Application], None]


@dataclass(frozen=True)
class Catalog:
    """Everything /api serves, as read at one time."""

    tables: dict[str, Table]  # by URL name
    functions: dict[str, tuple[Function, ...]]  # by name as in GATEWAY_RPC: its overloads


async def load_catalog(cur: Any, settings: Settings) -> Catalog:
    """The exposed tables and the GATEWAY_RPC functions as the database has them now
    (``cur``: an aiopg cursor); raises UnknownFunction for a function that is not there."""
    tables = [await load_table(cur, name) for name in settings.expose]
    functions = {name: await load_function(cur, name) for name in settings.rpc}
    return Catalog({table.name: table for table in tables}, functions)


def install(app: web.Application, catalog: Catalog) -> None:
    """Make ``catalog`` the app's, then tell the catalog's listeners, with no await between."""
    for current, new in ((app[TABLES], catalog.tables), (app[FUNCTIONS], catalog.functions)):
        current.clear()
        current.update(new)  # type: ignore[arg-type]
    for listener in app[CATALOG_LISTENERS]:
        try:
            listener(app)
        except Exception:  # one broken listener must not keep the others stale
            log.exception("a catalog listener failed after the catalog was loaded")


class Reloader:
    """Reloads the catalog on request, one reload at a time; ``reloads`` counts the ones that worked."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self.reloads = 0
        self.failures = 0

    def request(self) -> None:
        """Ask for a reload (from a notification or a signal handler: returns at once)."""
        if self._task is not None and not self._task.done():
            self._again = True  # the schema may have changed after the running one read it
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="gateway-reload")

    async def _run(self) -> None:
        while True:
            self._again = False
            await self.reload()
            if not self._again:
                return

    async def reload(self) -> bool:
        """Read the catalog again and swap it in; False (old catalog kept, a warning logged) if that fails."""
        pool: aiopg.Pool | None = self._app.get(POOL)
        if pool is None:  # still starting: the start-up load reads the catalog as it is now
            return False
        settings = self._app[SETTINGS]
        try:
            async with asyncio.timeout(RELOAD_TIMEOUT), pool.acquire() as conn, conn.cursor() as cur:
                catalog = await load_catalog(cur, settings)
        except (psycopg2.Error, OSError, TimeoutError, RuntimeError, UnknownFunction) as exc:
            self.failures += 1
            log.warning(
                "catalog reload failed (%s); still serving the tables as loaded before",
                first_line(exc) if not isinstance(exc, TimeoutError) else f"no answer within {RELOAD_TIMEOUT:g} s",
            )
            return False
        install(self._app, catalog)
        self.reloads += 1
        log.info("catalog reloaded: %s", ", ".join(settings.expose + settings.rpc))
        return True

    async def stop(self) -> None:
        """Cancel a reload under way (at shutdown, before the pool closes)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
