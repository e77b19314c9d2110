"""The aiohttp internals gateway/aiohttp_adapter.py relies on are still there.

These fail loudly on an aiohttp upgrade that moves them; the behaviour they
give is tested end to end in tests/test_e2e_protocol.py.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from gateway.aiohttp_adapter import TESTED_AIOHTTP, GatewayRequestHandler, aiohttp_problems


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
