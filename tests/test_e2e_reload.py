"""Schema changes without a restart: NOTIFY gateway_reload and SIGHUP reload the catalog."""

from __future__ import annotations

import logging
import signal

import aiohttp
import pytest

from gateway.state import CATALOG_LISTENERS, RELOADER, TABLES

from .conftest import RunningGateway, run_sql, start_gateway
from .test_e2e_delivery import _kill_listener
from .test_e2e_process import gateway_process
from .waiting import until


async def _post(gw: RunningGateway, body: dict[str, object]) -> tuple[int, object]:
    async with gw.http.post(f"{gw.url}/api/todos", json=body, headers={"Prefer": "return=representation"}) as resp:
        answer = await resp.json()
        return resp.status, answer[0] if resp.status == 201 else answer


async def test_notify_gateway_reload_makes_a_new_column_usable(gateway: RunningGateway) -> None:
    status, _ = await _post(gateway, {"title": "before", "note": "x"})
    assert status == 400  # no such column yet
    await gateway.sql("ALTER TABLE todos ADD COLUMN note text")
    await gateway.sql("NOTIFY gateway_reload")
    await until(lambda: "note" in gateway.app[TABLES]["todos"].columns, what="the catalog has todos.note")
    status, row = await _post(gateway, {"title": "after", "note": "kept"})
    assert status == 201 and isinstance(row, dict) and row["note"] == "kept", row
    async with gateway.http.get(f"{gateway.url}/api/todos?note=eq.kept") as resp:
        assert resp.status == 200
        assert [r["title"] for r in await resp.json()] == ["after"]


async def test_reload_tells_the_catalog_listeners_with_the_new_catalog(gateway: RunningGateway) -> None:
    seen: list[tuple[str, ...]] = []
    gateway.app[CATALOG_LISTENERS].append(lambda app: seen.append(tuple(app[TABLES]["todos"].columns)))
    await gateway.sql("ALTER TABLE todos ADD COLUMN priority int")
    assert await gateway.app[RELOADER].reload()
    assert seen and seen[-1][-1] == "priority"


async def test_failed_reload_keeps_the_old_catalog_and_warns(database: str, caplog: pytest.LogCaptureFixture) -> None:
    await run_sql(database, "CREATE TABLE notes (id int PRIMARY KEY, body text)")
    async with start_gateway(database, expose=("todos", "notes")) as gw:
        before = dict(gw.app[TABLES])
        await gw.sql("ALTER TABLE todos ADD COLUMN note text")
        await gw.sql("DROP TABLE notes")
        with caplog.at_level(logging.WARNING, logger="gateway.reload"):
            await gw.sql("NOTIFY gateway_reload")
            await until(lambda: gw.app[RELOADER].failures >= 1, what="the reload failed")
        assert gw.app[TABLES] == before  # nothing half-swapped: todos has no note yet
        assert any("catalog reload failed" in r.getMessage() and "notes" in r.getMessage() for r in caplog.records), (
            caplog.text
        )
        status, _ = await _post(gw, {"title": "still served"})
        assert status == 201


async def test_sighup_reloads_the_catalog_of_a_running_process(database: str) -> None:
    async with gateway_process(database) as (proc, url), aiohttp.ClientSession() as http:

        async def post_note() -> bool:
            async with http.post(f"{url}/api/todos", json={"title": "t", "note": "n"}) as resp:
                return resp.status == 201

        assert not await post_note()
        await run_sql(database, "ALTER TABLE todos ADD COLUMN note text")
        proc.send_signal(signal.SIGHUP)
        await until(post_note, what="a POST naming the new column succeeds after SIGHUP")
        assert proc.returncode is None  # SIGHUP did not end it


async def test_a_reload_asked_while_the_listener_was_down_is_not_lost(gateway: RunningGateway) -> None:
    reloader = gateway.app[RELOADER]
    await gateway.sql("ALTER TABLE todos ADD COLUMN note text")  # changed; no NOTIFY reached the gateway
    assert await _kill_listener(gateway) == 1
    await until(lambda: reloader.reloads >= 1, what="the listener reloads the catalog after it reconnects")
    assert "note" in gateway.app[TABLES]["todos"].columns
