"""Through a real nginx with the README's recipe: events arrive at once, idle streams live.

Skipped when nginx is missing (Debian: apt-get install nginx; .ci/run installs it).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.client_address import parse_networks

from .conftest import RunningGateway, start_gateway
from .nginx import BINARY, MISSING, nginx_in_front
from .sse_client import SSEClient
from .waiting import until

pytestmark = pytest.mark.skipif(BINARY is None, reason=MISSING)


@pytest.mark.parametrize(
    "extra",
    ["", "gzip on; gzip_types text/event-stream;"],
    ids=["recipe", "recipe-with-gzip"],  # gzip buffers an event stream unless X-Accel-Buffering: no
)
async def test_through_nginx_an_event_arrives_at_once_and_the_api_works(gateway: RunningGateway, extra: str) -> None:
    with nginx_in_front(gateway.url, extra=extra) as proxied:
        client = SSEClient(gateway.http, f"{proxied}/events?topic=todos", headers={"Accept-Encoding": "gzip"})
        try:
            await client.connected()
            assert client.response_headers.get("X-Accel-Buffering") is None  # nginx consumes it
            async with gateway.http.post(
                f"{proxied}/api/todos",
                json={"title": "through nginx"},
                headers={"Prefer": "return=representation"},
            ) as resp:
                assert resp.status == 201, await resp.text()
            event = await client.next(timeout=5)  # buffered by nginx, it would wait for kilobytes
            assert event.type == "insert" and event.json["row"]["title"] == "through nginx"
        finally:
            await client.close()


@pytest.mark.slow
async def test_through_nginx_a_stream_idle_for_70_s_lives_on(database: str) -> None:
    """nginx's proxy_read_timeout is 60 s; the 15 s heartbeat keeps the stream alive."""
    async with start_gateway(database, heartbeat=15.0) as gateway:
        with nginx_in_front(gateway.url) as proxied:
            client = SSEClient(gateway.http, f"{proxied}/events?topic=todos")
            try:
                await client.connected()
                await asyncio.sleep(70)  # the point of the test: 70 s with nothing to send
                assert not client.ended.is_set(), "nginx cut the idle stream"
                assert len(client.comments) >= 3, client.comments  # the heartbeats got through
                await gateway.sql("INSERT INTO todos (title) VALUES ('after the idle minute')")
                event = await client.next(timeout=5)
                assert event.json["row"]["title"] == "after the idle minute"
            finally:
                await client.close()


async def test_behind_a_trusted_nginx_limits_and_log_use_the_forwarded_client(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Without GATEWAY_TRUSTED_PROXIES every client behind nginx shares nginx's address and its
    limit; with it, each client has its own. nginx appends the peer it saw to what the client sent."""
    caplog.set_level(logging.INFO, logger="gateway.access")

    def stream(gateway: RunningGateway, proxied: str, client: str) -> SSEClient:
        return SSEClient(gateway.http, f"{proxied}/events?topic=todos", headers={"X-Forwarded-For": client})

    async def second_stream_status(gateway: RunningGateway, proxied: str, client: str) -> int:
        headers = {"X-Forwarded-For": client}
        async with gateway.http.get(f"{proxied}/events?topic=todos", headers=headers) as resp:
            return resp.status

    async with start_gateway(database, max_subscribers_per_client=1) as gateway:
        with nginx_in_front(gateway.url) as proxied:
            held = stream(gateway, proxied, "198.51.100.1")
            await held.connected()
            assert await second_stream_status(gateway, proxied, "198.51.100.2") == 429  # all of them are nginx
            await held.close()

    trusted = parse_networks("127.0.0.1")
    async with start_gateway(database, max_subscribers_per_client=1, trusted_proxies=trusted) as gateway:
        with nginx_in_front(gateway.url) as proxied:
            # nginx's own peer is 127.0.0.1 too, so each test client claims an address to its
            # left: nginx sends "<claimed>, 127.0.0.1", 127.0.0.1 is trusted, the claim is the client.
            held = stream(gateway, proxied, "198.51.100.1")
            await held.connected()
            other = stream(gateway, proxied, "198.51.100.2")
            await other.connected()  # another client: its own limit
            assert await second_stream_status(gateway, proxied, "198.51.100.1") == 429  # the first one's second
            async with gateway.http.get(f"{proxied}/api/todos", headers={"X-Forwarded-For": "198.51.100.3"}) as resp:
                assert resp.status == 200
            await held.close()
            await other.close()
            await until(lambda: gateway.hub.statistics().subscribers == 0, timeout=5, what="the streams ended")
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert any(line.startswith('198.51.100.3 "GET /api/todos" 200') for line in lines), lines
    assert any(line.startswith('198.51.100.1 "GET /events"') and line.endswith("stream") for line in lines), lines
