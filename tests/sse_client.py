"""A test SSE client that reads a stream the way a browser's EventSource does.

Bytes come over a real HTTP connection (aiohttp client); lines and events are
parsed by httpx-sse's decoder, a spec-following parser that is not our code. As
in a browser, a block without data lines updates the last event id but
dispatches nothing.

``nothing_more()`` proves that no further event is coming by waiting for a later
one: given a ``marker`` (a function that publishes ``{"_test_marker": token}`` on
one of the stream's topics, as RunningGateway.subscribe does), it publishes one
and, once that marker has arrived, checks that nothing came before it. Events
are delivered in commit order, so anything still on its way would have come
first. Marker events (this client's and other clients') never reach ``events``.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

MARKER_KEY = "_test_marker"


@dataclass
class Event:
    type: str
    data: str
    id: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class SSEClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        headers: dict[str, str] | None = None,
        marker: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self.url = url
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.last_event_id = ""
        self.retry: int | None = None
        self.comments: list[str] = []
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}
        self.ended = asyncio.Event()
        self._http = http
        self._headers = headers or {}
        self._ready = asyncio.Event()
        self._marker = marker
        self._markers: set[str] = set()
        self._marker_arrived = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def connected(self, timeout: float = 10.0) -> None:
        """Wait until the stream's first block (retry/id preamble) has arrived."""
        async with asyncio.timeout(timeout):
            await self._ready.wait()
        if self.status != 200:
            raise AssertionError(f"stream answered {self.status}")

    async def _run(self) -> None:
        lines = SSELineDecoder()
        decoder = SSEDecoder()
        text = codecs.getincrementaldecoder("utf-8")()
        try:
            async with self._http.get(
                self.url, headers=self._headers, timeout=aiohttp.ClientTimeout(total=None)
            ) as resp:
                self.status = resp.status
                self.response_headers = dict(resp.headers)
                if resp.status != 200:
                    self.body = await resp.text()
                    self._ready.set()
                    return
                async for chunk in resp.content.iter_any():
                    for line in lines.decode(text.decode(chunk)) if chunk else []:
                        if line.startswith(":"):
                            self.comments.append(line[1:].strip())
                            continue
                        sse = decoder.decode(line)
                        if sse is None:
                            continue
                        self.last_event_id = sse.id
                        if sse.retry is not None:
                            self.retry = sse.retry
                        self._ready.set()
                        if sse.data == "":
                            continue  # a browser dispatches no event without data
                        if sse.event == "publish" and MARKER_KEY in sse.data and self._take_marker(sse.data):
                            continue
                        await self.events.put(Event(sse.event, sse.data, sse.id))
        except (aiohttp.ClientError, asyncio.CancelledError):
            pass
        finally:
            self._ready.set()
            self.ended.set()

    async def next(self, timeout: float = 5.0) -> Event:
        async with asyncio.timeout(timeout):
            return await self.events.get()

    async def take(self, count: int, timeout: float = 10.0) -> list[Event]:
        async with asyncio.timeout(timeout):
            return [await self.events.get() for _ in range(count)]

    def _take_marker(self, data: str) -> bool:
        row = json.loads(data).get("row")
        if not isinstance(row, dict) or MARKER_KEY not in row:
            return False
        self._markers.add(str(row[MARKER_KEY]))
        self._marker_arrived.set()
        return True

    async def nothing_more(self, wait: float = 0.3, timeout: float = 10.0) -> None:
        """Assert that no event is still coming: up to a marker event, or (without one) for ``wait`` s."""
        if self._marker is None:
            await asyncio.sleep(wait)
        else:
            token = secrets.token_hex(8)
            await self._marker(token)
            async with asyncio.timeout(timeout):
                while token not in self._markers:
                    self._marker_arrived.clear()
                    await self._marker_arrived.wait()
        assert self.events.empty(), f"unexpected event: {self.events.get_nowait()}"

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
