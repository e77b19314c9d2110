"""Through a real nginx with the README's recipe: events arrive at once, idle streams live.

Skipped when nginx is missing (Debian: apt-get install nginx; .ci/run installs it).
"""

from __future__ import annotations

import asyncio

import pytest

from .conftest import RunningGateway
from .nginx import BINARY, MISSING, nginx_in_front
from .sse_client import SSEClient

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
    from .conftest import start_gateway

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
