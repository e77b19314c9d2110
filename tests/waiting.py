"""Waiting for conditions, not for time.

A test that sleeps a fixed time and then checks passes on an idle machine and fails
on a busy one. ``until`` waits for the condition itself (bounded, so a broken
gateway still fails); ``notifications_before_marker`` proves a notification did
not come by waiting for a later one, not for a timeout.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import aiopg

from .conftest import run_sql

MARKER_CHANNEL = "gateway_test_marker"


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = "") -> None:
    """Return once ``check()`` is true; fail after ``timeout`` seconds, naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not true after {timeout} s: {what or getattr(check, '__name__', check)}")
        await asyncio.sleep(0.01)


async def notifications_before_marker(spy: aiopg.Connection, dsn: str, timeout: float = 10.0) -> list[str]:
    """The payloads ``spy`` received so far on the channels it listens to, in order.

    Sends a marker NOTIFY on a channel of its own and collects what arrives before it:
    Postgres delivers notifications in commit order, so every notification committed
    before this call is in the list, without waiting for a time.
    """
    async with spy.cursor() as cur:
        await cur.execute(f"LISTEN {MARKER_CHANNEL}")
    await run_sql(dsn, f"NOTIFY {MARKER_CHANNEL}")
    payloads = []
    async with asyncio.timeout(timeout):
        while True:
            notification = await spy.notifies.get()
            if notification.channel == MARKER_CHANNEL:
                return payloads
            payloads.append(notification.payload)
