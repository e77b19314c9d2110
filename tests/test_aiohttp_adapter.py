"""The aiohttp and aiohttp-sse internals gateway/aiohttp_adapter.py relies on are still there.

These fail loudly on an aiohttp upgrade that moves them; the behaviour they
give is tested end to end in tests/test_e2e_protocol.py.
"""

from __future__ import annotations

import asyncio
import importlib.metadata

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.aiohttp_adapter import (
    TESTED_AIOHTTP,
    TESTED_AIOHTTP_SSE,
    GatewayRequestHandler,
    HubFedResponse,
    aiohttp_problems,
    aiohttp_sse_problems,
)


def test_installed_aiohttp_is_a_tested_minor_version() -> None:
    minor = ".".join(aiohttp.__version__.split(".")[:2])
    assert minor in TESTED_AIOHTTP, (
        f"aiohttp {aiohttp.__version__} is untested: check gateway/aiohttp_adapter.py's internals "
        "against it, then add it to TESTED_AIOHTTP and to setup.cfg's pin"
    )


def test_every_internal_the_adapter_uses_is_present() -> None:
    assert aiohttp_problems() == []


async def test_server_passes_its_kwargs_and_loop_to_each_handler() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    server = web.Server(handler, keepalive_timeout=7.0, max_headers=5)
    assert server._kwargs == {"keepalive_timeout": 7.0, "max_headers": 5}
    protocol = GatewayRequestHandler(server, loop=server._loop, head_timeout=1.0, **server._kwargs)
    assert protocol.keepalive_timeout == 7.0 and protocol.max_headers == 5
    assert protocol._request_count == 0 and protocol._task_handler is None


def test_installed_aiohttp_sse_is_a_tested_minor_version() -> None:
    version = importlib.metadata.version("aiohttp-sse")
    minor = ".".join(version.split(".")[:2])
    assert minor in TESTED_AIOHTTP_SSE, (
        f"aiohttp-sse {version} is untested: check HubFedResponse in gateway/aiohttp_adapter.py "
        "against it (its _ping, _ping_task and _payload_writer), then add it to TESTED_AIOHTTP_SSE"
    )


def test_every_aiohttp_sse_internal_the_adapter_uses_is_present() -> None:
    assert aiohttp_sse_problems() == []


async def test_hub_fed_response_keeps_no_ping_task_and_a_detached_one_writes_nothing_at_its_end() -> None:
    """What the overrides are for: no Task per stream, and no end of body after the hand-over."""
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        tasks_before = len(asyncio.all_tasks())
        response = HubFedResponse()
        writer = await response.prepare(request)
        await asyncio.sleep(0)  # a ping task would have started by now
        seen["ping_task"] = response._ping_task
        seen["new_tasks"] = len(asyncio.all_tasks()) - tasks_before
        await response.write(b"retry: 1\n\n")
        response.detach()
        seen["same_writer"] = await response.prepare(request) is writer  # aiohttp's second prepare
        await response.write_eof()
        seen["logs_own_end"] = response.logs_own_end
        assert request.transport is not None
        request.transport.close()  # the stream's end closes it (gateway.stream); here, the test
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/")
        body = b""
        try:
            async for chunk in resp.content.iter_any():
                body += chunk
        except aiohttp.ClientPayloadError:  # no end of the chunked body: it was detached
            pass
    assert body == b"retry: 1\n\n"
    assert seen == {"ping_task": None, "new_tasks": 0, "same_writer": True, "logs_own_end": True}
