"""--workers N as real processes: one port, a worker killed, resumes, the group's metrics and limits."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
from pathlib import Path

import aiohttp
import psutil
import pytest

from gateway.group import WORKER_HEADER

from .conftest import run_sql
from .sse_client import Event, SSEClient
from .test_e2e_process import _exits_zero, gateway_process, run_cli
from .waiting import until

QUICK_STOP = {"GATEWAY_SHUTDOWN_TIMEOUT": "3"}


async def fresh_get(url: str) -> tuple[str, str]:
    """GET on a new connection (so the kernel picks a worker for it): (worker pid, body)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        async with http.get(url) as resp:
            assert resp.status == 200
            return resp.headers[WORKER_HEADER], await resp.text()


async def from_every_worker(url: str, pids: set[str]) -> dict[str, str]:
    """A body of ``url`` from each worker in ``pids``, asking on new connections until each answered."""
    bodies: dict[str, str] = {}

    async def answered() -> bool:
        pid, body = await fresh_get(url)
        if pid in pids:
            bodies[pid] = body
        return set(bodies) == pids

    await until(answered, timeout=30, what=f"an answer from each of workers {pids}")
    return bodies


def gauge(body: str, name: str) -> int:
    match = re.search(rf"^{name} (\d+)$", body, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return int(match.group(1))


async def insert(dsn: str, *titles: str) -> None:
    for title in titles:
        await run_sql(dsn, "INSERT INTO todos (title) VALUES (%s)", (title,))


def titles(events: list[Event]) -> list[str]:
    """The titles in order of first arrival (a resume may repeat an event, with its id)."""
    seen: dict[str, str] = {}
    for event in events:
        seen.setdefault(event.id, event.json["row"]["title"])
    return list(seen.values())


@pytest.mark.slow
async def test_a_killed_worker_is_replaced_and_nobody_loses_an_event(database: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        gateway_process(database, "--workers", "2", env=QUICK_STOP) as (supervisor, url),
    ):
        stream = f"{url}/events?topic=todos"
        by_worker: dict[str, list[SSEClient]] = {}

        async def one_more_stream() -> bool:  # each on its own connection: the kernel spreads them
            client = SSEClient(http, stream)
            await client.connected()
            by_worker.setdefault(client.response_headers[WORKER_HEADER], []).append(client)
            return len(by_worker) == 2

        await until(one_more_stream, timeout=30, what="streams on both workers")
        clients = [client for group in by_worker.values() for client in group]
        killed, survivor = sorted(by_worker, key=lambda pid: len(by_worker[pid]))
        for body in (await from_every_worker(f"{url}/metrics", set(by_worker))).values():
            assert gauge(body, "gateway_subscribers") == len(clients)  # the group's, from either worker
            assert gauge(body, "gateway_workers") == 2

        await insert(database, "before-1", "before-2")
        received = {id(client): await client.take(2) for client in clients}

        os.kill(int(killed), signal.SIGKILL)
        for client in by_worker[killed]:
            await client.ended.wait()
        await insert(database, "during-1", "during-2")
        resumed = []
        for client in by_worker[killed]:  # as EventSource does: reconnect with the last id
            again = SSEClient(http, stream, headers={"Last-Event-ID": client.last_event_id})
            await again.connected()
            resumed.append((client, again))

        async def replaced() -> bool:
            pid, body = await fresh_get(f"{url}/metrics")
            return pid not in (killed, survivor) and gauge(body, "gateway_workers") == 2

        await until(replaced, timeout=60, what="a new worker serving in the killed one's place")
        workers = _workers_of(supervisor.pid)
        assert len(workers) == 2 and int(survivor) in workers and int(killed) not in workers
        await insert(database, "after-1")
        everything = ["before-1", "before-2", "during-1", "during-2", "after-1"]
        for client in by_worker[survivor]:  # noticed nothing: one stream, every event
            received[id(client)] += await client.take(3)
            assert not client.ended.is_set()
            assert titles(received[id(client)]) == everything
        for client, again in resumed:
            events = received[id(client)]
            while titles(events) != everything:
                events.append(await again.next(timeout=10))
            assert titles(events) == everything

        supervisor.send_signal(signal.SIGTERM)
        await _exits_zero(supervisor, within=30)
        for client in clients:
            await client.close()
        for _, again in resumed:
            await again.close()
    assert not [pid for pid in workers if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


@pytest.mark.slow
async def test_stream_limits_hold_for_the_whole_group(database: str) -> None:
    limits = {
        "GATEWAY_MAX_SUBSCRIBERS": "3",
        "GATEWAY_MAX_SUBSCRIBERS_PER_CLIENT": "2",
        "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
        **QUICK_STOP,
    }
    async with (
        aiohttp.ClientSession() as http,
        gateway_process(database, "--workers", "2", env=limits) as (supervisor, url),
    ):
        stream = f"{url}/events?topic=todos"
        held = [SSEClient(http, stream, headers={"X-Forwarded-For": "203.0.113.1"}) for _ in range(2)]
        for client in held:
            await client.connected()

        async def refused_by_both(client_address: str, status: int) -> None:
            refusing: set[str] = set()

            async def refused() -> bool:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
                    async with fresh.get(stream, headers={"X-Forwarded-For": client_address}) as resp:
                        assert resp.status == status, await resp.text()
                        refusing.add(resp.headers[WORKER_HEADER])
                return len(refusing) == 2

            await until(refused, timeout=30, what=f"a {status} for {client_address} from both workers")

        await refused_by_both("203.0.113.1", 429)  # its two streams count on the worker holding neither too
        third = SSEClient(http, stream, headers={"X-Forwarded-For": "203.0.113.2"})
        await third.connected()
        held.append(third)
        await refused_by_both("203.0.113.3", 503)  # three streams in the group: full, on either worker
        await held.pop().close()

        async def admitted_again() -> bool:
            client = SSEClient(http, stream, headers={"X-Forwarded-For": "203.0.113.3"})
            try:
                await client.connected()
            except AssertionError:  # a 503 until the worker has counted the closed stream out
                return False
            held.append(client)
            return True

        await until(admitted_again, timeout=30, what="a stream admitted once one was closed")
        for client in held:
            await client.close()
        supervisor.send_signal(signal.SIGTERM)
        await _exits_zero(supervisor, within=30)


async def test_a_group_that_cannot_start_exits_1_with_the_workers_error(database: str) -> None:
    code, stderr = await run_cli(
        "serve", "--workers", "2", "--expose", "missing_table", env={"DATABASE_URL": database, "GATEWAY_PORT": "0"}
    )
    assert code == 1 and "table 'missing_table' does not exist" in stderr and "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if line.startswith("pg-sse-gateway:")]) == 1

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = await run_cli("serve", "--workers", "2", "--port", str(port), env={"DATABASE_URL": database})
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in stderr and "Traceback" not in stderr


async def test_port_zero_is_one_port_for_every_worker(database: str) -> None:
    async with gateway_process(database, "--workers", "2", env=QUICK_STOP) as (supervisor, url):
        assert not url.endswith(":0")
        assert supervisor.stdout is not None
        await _two_pids(url)
        supervisor.send_signal(signal.SIGTERM)
        await _exits_zero(supervisor, within=30)
        rest = (await supervisor.stdout.read()).decode()
        assert "listening on" not in rest  # printed once, for the group


async def _two_pids(url: str) -> set[str]:
    pids: set[str] = set()

    async def both() -> bool:
        pids.add((await fresh_get(f"{url}/healthz"))[0])
        return len(pids) == 2

    await until(both, timeout=30, what="answers from two workers")
    return pids


@pytest.mark.slow
async def test_a_worker_that_cannot_start_again_is_retried_with_a_backoff(database: str) -> None:
    async with gateway_process(database, "--workers", "2", env=QUICK_STOP) as (supervisor, url):
        assert supervisor.stderr is not None
        pids = await _two_pids(url)
        await run_sql(database, "ALTER TABLE todos RENAME TO todos_away")  # a new worker cannot start now
        os.kill(int(pids.pop()), signal.SIGKILL)
        delays = []
        async with asyncio.timeout(30):
            while len(delays) < 3:
                line = (await supervisor.stderr.readline()).decode()
                assert line, "the supervisor exited"
                match = re.search(r"starting another in ([\d.]+) s", line)
                if match:
                    delays.append(float(match.group(1)))
                    if len(delays) > 1:
                        assert "table 'todos' does not exist" in line
        assert delays == [0.0, 0.5, 1.0]  # at once for a worker that had served, then doubling
        await run_sql(database, "ALTER TABLE todos_away RENAME TO todos")

        async def whole_again() -> bool:
            return gauge((await fresh_get(f"{url}/metrics"))[1], "gateway_workers") == 2

        await until(whole_again, timeout=30, what="the slot served again once the table was back")
        serving = {int(pid) for pid in await _two_pids(url)}
        assert set(_workers_of(supervisor.pid)) == serving  # the failed attempts left nothing behind
        supervisor.send_signal(signal.SIGTERM)
        await _exits_zero(supervisor, within=30)
    assert not [pid for pid in serving if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def _workers_of(supervisor: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    children = psutil.Process(supervisor).children()
    return [child.pid for child in children if "resource_tracker" not in " ".join(child.cmdline())]


@pytest.mark.slow
async def test_the_supervisor_starts_the_embedded_postgres_once_for_every_worker(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    environ = {"DATABASE_URL": "", **QUICK_STOP}
    async with gateway_process("", "--workers", "2", "--data-dir", str(data_dir), env=environ) as (supervisor, url):
        pids = await _two_pids(url)
        for body in (await from_every_worker(f"{url}/api/todos", pids)).values():
            assert len(json.loads(body)) == 3  # the demo rows, seeded once: the workers took turns
        supervisor.send_signal(signal.SIGTERM)
        await _exits_zero(supervisor, within=30)
    assert not (data_dir / "postmaster.pid").exists()  # stopped with the supervisor


async def test_workers_stop_when_the_supervisor_is_killed(database: str) -> None:
    async with gateway_process(database, "--workers", "2", env=QUICK_STOP) as (supervisor, url):
        pids = [int(pid) for pid in await _two_pids(url)]
        supervisor.kill()  # SIGKILL: no chance to pass anything on
        await supervisor.wait()

        def gone() -> bool:
            return not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]

        await until(gone, timeout=30, what="no worker outlives its supervisor")
