"""/metrics tells what the gateway is doing: read as a scraper reads it, over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiopg

from .conftest import RunningGateway, start_gateway
from .waiting import until


async def _metrics(gw: RunningGateway) -> dict[str, str]:
    async with gw.http.get(gw.url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))


async def test_listener_polling_gauge_is_1_while_it_polls_and_0_while_it_sleeps(database: str) -> None:
    """While a writer that skipped NOTIFY is in flight the listener cannot sleep: it polls."""
    async with start_gateway(database, listener_check=60.0, busy_poll_interval=0.2) as gw:

        def polling(value: str) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return (await _metrics(gw))["gateway_listener_polling"] == value

            return check

        client = await gw.subscribe("todos")
        await until(polling("0"), what="the listener went to sleep")
        await gw.sql("INSERT INTO todos (title) VALUES ('wakes it')")
        await client.next()  # it polls now, and settles only after 10 empty polls (2 s)
        async with aiopg.connect(database) as conn, conn.cursor() as cur:
            await cur.execute("BEGIN")
            await cur.execute("INSERT INTO todos (title) VALUES ('in flight')")  # skips NOTIFY
            await until(polling("1"), what="gateway_listener_polling says 1 while the writer is in flight")
            await cur.execute("COMMIT")
        await client.next()
        await until(polling("0"), what="gateway_listener_polling says 0 once the listener sleeps again")
        await client.close()
