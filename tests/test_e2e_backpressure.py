"""A client that never reads is cut off at its bound; nobody else waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import jwt
import psutil

from .conftest import start_gateway
from .waiting import until

SECRET = "test-secret-that-is-long-enough-for-hs256"


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

        assert gw.metrics.slow_consumers_closed == 1
        assert await _closed_by_server(stuck, timeout=10)
        assert gw.hub.statistics().subscribers == 101
        assert all_received_after < 5.0  # the stuck client held nobody up
        stuck.close()
        for client in [bulk_reader, *readers]:
            await client.close()


def _served_by_us(sock: socket.socket) -> bool:
    """Whether this process (the gateway runs in it) still holds the server end of ``sock``."""
    client = sock.getsockname()
    return any(c.raddr and tuple(c.raddr) == client for c in psutil.Process().net_connections("tcp"))


async def test_stream_whose_client_does_not_take_its_goodbye_is_cut_off_after_the_grace(database: str) -> None:
    """The server ends a stream (here its token expires) while the client reads nothing:
    the goodbye cannot leave, and a polite close would wait for it forever, holding the
    connection and the megabytes queued for it. After a grace of a second it is cut off:
    the gateway lets go of the socket, and what it had not handed to the kernel is dropped."""
    async with start_gateway(database, jwt_secret=SECRET, subscriber_buffer=1 << 30) as gw:
        token = jwt.encode({"exp": time.time() + 3, "topics": ["bulk"]}, SECRET, algorithm="HS256")
        stuck = await _non_reader(gw.url, f"/events?topic=bulk&access_token={token}")
        await until(lambda: gw.hub.statistics().subscribers == 1, what="the non-reader subscribed")
        payload = json.dumps({"blob": "x" * 200_000})
        await gw.sql("SELECT gateway.publish('bulk', %s) FROM generate_series(1, 40)", (payload,))
        await gw.caught_up()  # 8 MB for a client that takes none: most of it waits in the gateway
        assert _served_by_us(stuck)
        await until(lambda: not _served_by_us(stuck), timeout=10, what="the gateway let go of the connection")
        received = await _read_to_end(stuck)
        assert b"closing: the token expired" not in received and received.count(b"\nid: ") < 40
        stuck.close()


async def _read_to_end(sock: socket.socket) -> bytes:
    loop, data = asyncio.get_running_loop(), bytearray()
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(10):
            while chunk := await loop.sock_recv(sock, 1 << 20):
                data += chunk
    return bytes(data)
