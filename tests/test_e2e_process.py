"""The gateway as a real process: the CLI, its errors, SIGTERM and restart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import aiopg

from .sse_client import SSEClient
from .waiting import until

LISTENING = re.compile(r"listening on (http://\S+)")


@asynccontextmanager
async def gateway_process(
    dsn: str, *args: str, port: int = 0, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    env = {**os.environ, "DATABASE_URL": dsn, "GATEWAY_PORT": str(port), "GATEWAY_LOG_LEVEL": "warning", **(env or {})}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError(f"gateway exited: {(await proc.stderr.read()).decode()}")  # type: ignore[union-attr]
                match = LISTENING.search(line)
                if match:
                    break
        yield proc, match.group(1)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _exits_zero(proc: asyncio.subprocess.Process, within: float) -> None:
    """Wait for a clean exit; on failure show what the gateway logged (stderr must be a pipe)."""
    try:
        async with asyncio.timeout(within):
            code = await proc.wait()
    except TimeoutError:
        proc.kill()
        code = None
    if code != 0:
        assert proc.stderr is not None
        log = (await proc.stderr.read()).decode(errors="replace")
        raise AssertionError(f"gateway exit code {code}; its log ends:\n{log[-4000:]}")


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, stderr = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


async def test_restart_with_writes_in_between_loses_nothing(database: str) -> None:
    async with aiohttp.ClientSession() as http:
        stop = asyncio.Event()
        written: list[str] = []

        async def writer() -> None:
            while not stop.is_set():
                try:
                    async with aiopg.connect(database) as conn, conn.cursor() as cur:
                        while not stop.is_set():
                            title = f"w{len(written)}"
                            await cur.execute("INSERT INTO todos (title) VALUES (%s)", (title,))
                            written.append(title)
                            await asyncio.sleep(0.005)
                except Exception:  # the schema may not exist yet before the first start
                    await asyncio.sleep(0.05)

        # A short shutdown timeout bounds how long SIGTERM may wait for streams in flight.
        quick_stop = {"GATEWAY_SHUTDOWN_TIMEOUT": "3", "GATEWAY_LOG_LEVEL": "debug"}
        async with gateway_process(database, env=quick_stop) as (proc, url):
            task = asyncio.create_task(writer())
            client = SSEClient(http, f"{url}/events?topic=todos")
            await client.connected()
            received = await client.take(20)
            proc.send_signal(signal.SIGTERM)
            await _exits_zero(proc, within=15)
            await client.close()
            while not client.events.empty():
                received.append(client.events.get_nowait())
        await asyncio.sleep(0.5)  # writes go on while no gateway runs
        async with gateway_process(database) as (proc, url):
            client = SSEClient(http, f"{url}/events?topic=todos", headers={"Last-Event-ID": received[-1].id})
            await client.connected()
            await asyncio.sleep(0.3)
            stop.set()
            await task
            received += await client.take(len(written) - len(received), timeout=30)
            await client.nothing_more()
            await client.close()
        assert [e.json["row"]["title"] for e in received] == written


async def test_init_db_applies_schema_and_exits(database: str) -> None:
    code, stderr = await run_cli("init-db", env={"DATABASE_URL": database})
    assert code == 0, stderr
    async with aiopg.connect(database) as conn, conn.cursor() as cur:
        await cur.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'gateway_capture_%%'")
        assert (await cur.fetchone())[0] == 4


async def test_cli_errors_are_one_clear_line(database: str) -> None:
    code, stderr = await run_cli("serve", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert code == 1 and "cannot connect to the database" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1

    code, stderr = await run_cli("serve", "--expose", "todos,missing_table", env={"DATABASE_URL": database})
    assert code == 1 and "table 'missing_table' does not exist" in stderr and "Traceback" not in stderr

    code, stderr = await run_cli("serve", "--port", "notaport", env={"DATABASE_URL": database})
    assert code == 2 and "--port" in stderr and "Traceback" not in stderr

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = await run_cli("serve", "--port", str(port), env={"DATABASE_URL": database})
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in stderr and "Traceback" not in stderr


async def test_help_lists_every_setting() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    text = out.decode()
    for flag in ("--port", "--host", "--database-url", "--expose", "--heartbeat", "--log-level", "--data-dir"):
        assert flag in text
    assert "GATEWAY_PORT" in text and "DATABASE_URL" in text


async def test_sigterm_ends_streams_cleanly_and_exits_zero(database: str) -> None:
    settings = {"GATEWAY_LOG_FORMAT": "json", "GATEWAY_LOG_LEVEL": "info", "GATEWAY_SHUTDOWN_TIMEOUT": "2"}
    async with aiohttp.ClientSession() as http, gateway_process(database, env=settings) as (proc, url):
        clients = [SSEClient(http, f"{url}/events?topic=todos") for _ in range(5)]
        for client in clients:
            await client.connected()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(8):
            assert await proc.wait() == 0
        assert time.monotonic() - started < 5  # bounded by the 2 s shutdown timeout, not held by the streams
        for client in clients:
            async with asyncio.timeout(2):
                await client.ended.wait()
            assert any(c.startswith("closing: server shutting down") for c in client.comments)
        assert proc.stderr is not None
        log_lines = (await proc.stderr.read()).decode().splitlines()
        assert log_lines and all(json.loads(line)["level"] for line in log_lines)

    async def no_backends() -> bool:  # listener and pool closed; their backends exit just after
        async with aiopg.connect(database) as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return bool((await cur.fetchone())[0] == 0)

    await until(no_backends, timeout=5, what="the gateway's backends exited")


async def test_sigterm_during_startup_exits_promptly(database: str) -> None:
    """A database that accepts TCP but never answers holds start-up; SIGTERM still ends it."""

    connecting = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connecting.set()
        await reader.read()  # never answers the startup packet

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {**os.environ, "DATABASE_URL": f"postgresql://nobody@127.0.0.1:{port}/none", "GATEWAY_PORT": "0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):  # importing and reaching the connect attempt
        await connecting.wait()
    assert proc.returncode is None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(5):
        code = await proc.wait()
    server.close()
    assert code == 0 and time.monotonic() - started < 3


async def _psql(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "psql",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_psql_command_opens_the_gateways_database(database: str, tmp_path: Path) -> None:
    code, out, err = await _psql(
        "--", "-Atc", "SELECT count(*) FROM todos", env={**os.environ, "DATABASE_URL": database}
    )
    assert code == 0, err
    assert out.strip() == "0"

    # The embedded server: started for the command, its data kept between runs, stopped
    # after (no postmaster.pid left behind); psql's own exit code comes through.
    data_dir = str(tmp_path / "pgdata")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    code, _, err = await _psql("--data-dir", data_dir, "--", "-c", "CREATE TABLE kept (x int)", env=env)
    assert code == 0, err
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
    code, _, err = await _psql("--data-dir", data_dir, "--", "-c", "SELECT 1/0", env=env)
    assert code != 0 and "division by zero" in err
    code, out, err = await _psql("--data-dir", data_dir, "--", "-Atc", "SELECT count(*) FROM kept", env=env)
    assert (code, out.strip()) == (0, "0"), err
