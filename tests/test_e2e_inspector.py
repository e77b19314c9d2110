"""/inspect and /inspect/state through real HTTP: when the inspector is served, to whom, what it says."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from gateway.config import ConfigError, load_settings

from .conftest import RunningGateway, start_gateway
from .problems import error_body
from .waiting import until

SECRET = "test-secret-that-is-long-enough-for-hs256"


def token(**claims: object) -> str:
    return jwt.encode({"exp": time.time() + 60, **claims}, SECRET, algorithm="HS256")


async def status(gw: RunningGateway, path: str, bearer: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with gw.http.get(gw.url + path, headers=headers) as resp:
        if resp.status >= 400:
            return resp.status, await error_body(resp)
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


async def state(gw: RunningGateway, bearer: str | None = None) -> dict[str, Any]:
    code, body = await status(gw, "/inspect/state", bearer)
    assert code == 200, body
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize(
    ("overrides", "served"),
    [
        ({}, False),  # neither demo mode nor GATEWAY_INSPECTOR=on
        ({"demo": True}, True),
        ({"demo": True, "inspector": "off"}, False),
        ({"inspector": "on"}, True),
    ],
)
async def test_the_inspector_is_served_in_demo_mode_or_when_turned_on(
    database: str, overrides: dict[str, object], served: bool
) -> None:
    async with start_gateway(database, **overrides) as gw:
        for path in ("/inspect", "/inspect/state"):
            code, body = await status(gw, path)
            if served:
                assert code == 200, body
            else:
                assert (code, body["code"]) == (404, "PGRST125")
        if served:
            page = (await status(gw, "/inspect"))[1]
            assert "<title>pg-sse-gateway inspector</title>" in page
            assert "src=" not in page and "href=" not in page  # self-contained: nothing to fetch, no CDN


async def test_the_state_lists_tables_and_topics_with_their_subscriber_counts(database: str) -> None:
    async with start_gateway(database, inspector="on") as gw:
        clients = [
            await gw.subscribe("todos"),
            await gw.subscribe("todos"),
            await gw.subscribe("todos/999"),
            await gw.subscribe("chat/room-1", "todos"),
        ]
        body = await state(gw)
        assert body["topics"] == [
            {"topic": "chat/room-1", "subscribers": 1},
            {"topic": "todos", "subscribers": 3},
            {"topic": "todos/999", "subscribers": 1},
        ]
        assert body["subscribers"] == 4 and body["auth"] is False
        (todos,) = body["tables"]
        assert todos["name"] == "todos" and todos["primary_key"] == ["id"] and todos["subscribers"] == 4
        assert {"name": "title", "type": "text"} in todos["columns"]
        assert body["listener"]["connected"] is True

        before = body["events_in"], body["deliveries"]
        await gw.sql("INSERT INTO todos (title) VALUES ('a'), ('b')")
        await gw.caught_up()
        after = await state(gw)
        assert after["events_in"] - before[0] == 2
        assert after["deliveries"] - before[1] == 2 * 3  # the three streams of todos; todos/999 was not touched
        assert after["journal"]["lag"] == 0 and after["journal"]["position"] == after["journal"]["newest"]
        for client in clients:
            await client.close()
        await until(lambda: gw.hub.statistics().subscribers == 0)
        assert (await state(gw))["topics"] == []


async def test_with_auth_on_the_inspector_needs_a_token_with_the_inspect_claim(database: str) -> None:
    async with start_gateway(database, inspector="on", jwt_secret=SECRET) as gw:
        for path in ("/inspect", "/inspect/state"):
            code, body = await status(gw, path)
            assert (code, body["code"]) == (401, "PGRST302"), path
            for refused in (token(topics=["*"], write=True, publish=["*"]), token(inspect=False)):
                code, body = await status(gw, path, refused)
                assert (code, body["code"]) == (403, "forbidden"), path
                assert "inspect" in body["message"] and "inspect: true" in body["hint"]
            code, body = await status(gw, path, token(inspect="yes"))
            assert (code, body["code"]) == (401, "PGRST303")
            assert (await status(gw, path, token(inspect=True)))[0] == 200
        assert (await state(gw, token(inspect=True)))["auth"] is True
        # ?access_token=, as a browser opening the page from a link sends it
        assert (await status(gw, "/inspect?access_token=" + token(inspect=True)))[0] == 200


def test_gateway_inspector_takes_auto_on_or_off() -> None:
    assert load_settings(environ={"GATEWAY_DEMO": "true"}).inspector_on
    assert not load_settings(environ={"DATABASE_URL": "postgresql://x/y"}).inspector_on
    assert load_settings(environ={"DATABASE_URL": "postgresql://x/y", "GATEWAY_INSPECTOR": "ON"}).inspector_on
    assert not load_settings(environ={"GATEWAY_DEMO": "true", "GATEWAY_INSPECTOR": "off"}).inspector_on
    with pytest.raises(ConfigError, match="GATEWAY_INSPECTOR='maybe': must be one of auto, on, off"):
        load_settings(environ={"GATEWAY_INSPECTOR": "maybe"})
