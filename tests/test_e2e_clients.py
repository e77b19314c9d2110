"""Real SSE client libraries against a real gateway: what their users' code sees."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from gateway.ending import EndReason

from .conftest import RunningGateway, start_gateway
from .waiting import until

SECRET = "test-secret-that-is-long-enough-for-hs256"


class HeartbeatCounter:
    """Counts the hub's heartbeat broadcasts, so a test can wait for the next few."""

    def __init__(self, gw: RunningGateway) -> None:
        self.count = 0
        broadcast = gw.hub.broadcast

        def counting(data: bytes) -> None:
            broadcast(data)
            self.count += 1

        gw.hub.broadcast = counting

    async def wait_for(self, more: int) -> None:
        target = self.count + more
        await until(lambda: self.count >= target, what=f"{more} more heartbeats")


async def events_of(gw: RunningGateway, headers: dict[str, str]) -> AsyncIterator[ServerSentEvent]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as http,
        aconnect_sse(http, "GET", gw.events_url("todos"), headers=headers) as source,
    ):
        assert source.response.status_code == 200
        async for sse in source.aiter_sse():
            yield sse


@pytest.mark.parametrize("ending", ["shutdown", "token expiry"])
async def test_httpx_sse_yields_the_preamble_then_only_real_events(database: str, ending: str) -> None:
    """After the id-only preamble (one empty event), heartbeats and the goodbye yield nothing."""
    expires_in = 3.0
    token = jwt.encode({"exp": int(time.time() + expires_in), "topics": ["todos"]}, SECRET, algorithm="HS256")
    async with start_gateway(database, heartbeat=0.05, jwt_secret=SECRET) as gw:
        beats = HeartbeatCounter(gw)
        stream = events_of(gw, {"Authorization": f"Bearer {token}"})

        preamble = await anext(stream)
        assert (preamble.data, preamble.retry, preamble.id) == ("", 2000, str(gw.hub.position))
        titles = []
        for title in ("after three heartbeats", "after three more"):
            await beats.wait_for(3)
            await gw.sql("INSERT INTO todos (title) VALUES (%s)", (title,))
            async with asyncio.timeout(10):
                sse = await anext(stream)
            assert sse.event == "insert", sse
            titles.append(json.loads(sse.data)["row"]["title"])  # what httpx-sse users write
        assert titles == ["after three heartbeats", "after three more"]
        await beats.wait_for(3)
        if ending == "shutdown":
            gw.hub.close_all(EndReason.SHUTDOWN)
        async with asyncio.timeout(expires_in + 10):  # the goodbye, then the end of the stream
            rest = [sse async for sse in stream]
        assert rest == []
