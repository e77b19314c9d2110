"""A client that never reads is cut off at its bound; nobody else waits for it."""

from __future__ import annotations

import asyncio
import json
import socket
import time

from .conftest import start_gateway
from .waiting import until


async def _non_reader(url: str, path: str) -> socket.socket:
    """A real TCP client that sends its request and then never reads a byte."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    await asyncio.get_running_loop().sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


async def _closed_by_server(sock: socket.socket, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            while True:
                if not await loop.sock_recv(sock, 1 << 20):
                    return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_slow_consumer_is_cut_off_and_readers_stay_on_time(database: str) -> None:
    bound = 256 * 1024
    async with start_gateway(database, subscriber_buffer=bound, max_subscribers_per_client=200) as gw:
        stuck = await _non_reader(gw.url, "/events?topic=bulk")
        bulk_reader = await gw.subscribe("bulk")
        readers = [await gw.subscribe("todos") for _ in range(100)]
        await until(lambda: gw.hub.statistics().subscribers == 102, what="the non-reader subscribed too")

        payload = json.dumps({"blob": "x" * 200_000})
        sent_at: dict[str, float] = {}
        for i in range(40):
            await gw.sql("SELECT gateway.publish('bulk', %s)", (payload,))
            sent_at[f"t{i}"] = time.monotonic()
            await gw.sql("INSERT INTO todos (title) VALUES (%s)", (f"t{i}",))

        for reader in readers:
            events = await reader.take(40, timeout=30)
            assert [e.json["row"]["title"] for e in events] == [f"t{i}" for i in range(40)]
        all_received_after = time.monotonic() - sent_at["t39"]
        assert all(len(e.data) > 200_000 for e in await bulk_reader.take(40, timeout=30))

        assert gw.hub.statistics().slow_consumers_closed == 1
        assert await _closed_by_server(stuck, timeout=10)
        assert gw.hub.statistics().subscribers == 101
        assert all_received_after < 5.0  # the stuck client held nobody up
        stuck.close()
        for client in [bulk_reader, *readers]:
            await client.close()
