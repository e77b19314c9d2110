"""POST /events/publish: an HTTP publish is gateway.publish(): one journal row, delivered and resumable."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from .conftest import RunningGateway, start_gateway
from .problems import error_body

SECRET = "test-secret-that-is-long-enough-for-hs256"
PUBLISH = "/events/publish"


def token(**claims: object) -> str:
    return jwt.encode({"exp": time.time() + 60, **claims}, SECRET, algorithm="HS256")


async def post(
    gw: RunningGateway, body: object, bearer: str | None = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    headers = {"Content-Type": content_type}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with gw.http.post(gw.url + PUBLISH, data=data, headers=headers) as resp:
        if resp.status >= 400:
            return resp.status, await error_body(resp)
        assert resp.content_type == "application/json"
        return resp.status, await resp.json()


@pytest.fixture
async def secured(database: str):  # type: ignore[no-untyped-def]
    async with start_gateway(database, jwt_secret=SECRET) as gw:
        yield gw


async def test_a_subscriber_receives_what_is_published_over_http(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("chat/room-1")
    # The payload's text as sent: spacing, key order and digits that a float would round.
    status, answer = await post(
        gateway, b'{"topic": "chat/room-1", "data": {"z": 1, "n": 12345678901234567890.10, "text": "hi"}}'
    )
    assert status == 201
    event = await client.next()
    assert event.type == "publish"
    assert event.id == str(answer["id"]) and answer["topic"] == "chat/room-1"
    assert event.json["topic"] == "chat/room-1" and event.json["table"] is None and event.json["op"] == "publish"
    assert '"row":{"z": 1, "n": 12345678901234567890.10, "text": "hi"}' in event.data
    rows = await gateway.sql('SELECT topic, op::text, "row"::text FROM gateway.journal WHERE id = %s', (answer["id"],))
    assert rows == [("chat/room-1", "publish", '{"z": 1, "n": 12345678901234567890.10, "text": "hi"}')]
    await client.nothing_more()
    await client.close()


async def test_data_may_be_left_out_and_is_then_null(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("ping")
    status, answer = await post(gateway, {"topic": "ping"})
    assert status == 201
    event = await client.next()
    assert event.json["row"] is None and event.json["id"] == answer["id"]
    await client.close()


async def test_a_resume_after_an_http_publish_replays_what_followed_it(gateway: RunningGateway) -> None:
    _, first = await post(gateway, {"topic": "chat/r", "data": {"n": 1}})
    _, second = await post(gateway, {"topic": "chat/r", "data": {"n": 2}})
    await gateway.sql("SELECT gateway.publish('chat/r', '{\"n\": 3}')")
    assert second["id"] > first["id"]
    client = await gateway.subscribe("chat/r", lastEventId=str(first["id"]))
    events = await client.take(2)
    assert [e.json["row"]["n"] for e in events] == [2, 3]
    assert events[0].id == str(second["id"])
    await client.nothing_more()
    await client.close()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"topic": "todos", "data": {}}, "table_topic"),  # a table's topic: its triggers' alone
        ({"topic": "todos/1", "data": {}}, "table_topic"),  # a row's topic
        ({"topic": "has space"}, "bad_topic"),
        ({"topic": ""}, "bad_topic"),
        ({"topic": "x" * 201}, "bad_topic"),
        ({"topic": "c1\u0085control"}, "bad_topic"),  # refused by the SQL rule only
        ({"topic": 5}, "PGRST102"),
        ({"data": {}}, "PGRST102"),
        ({"topic": "a", "payload": {}}, "PGRST102"),
        (["a"], "PGRST102"),
        (b'{"topic": "a", "data": NaN}', "PGRST102"),
        (b"not json", "PGRST102"),
    ],
)
async def test_a_bad_publish_is_a_400_and_writes_nothing(gateway: RunningGateway, body: object, code: str) -> None:
    status, error = await post(gateway, body)
    assert (status, error["code"]) == (400, code), error
    assert await gateway.sql("SELECT count(*) FROM gateway.journal") == [(0,)]


async def test_a_body_that_is_not_json_is_a_415(gateway: RunningGateway) -> None:
    status, error = await post(gateway, "topic=a", content_type="application/x-www-form-urlencoded")
    assert (status, error["code"]) == (415, "PGRST102")


async def test_a_payload_too_big_is_a_413(database: str) -> None:
    async with start_gateway(database, subscriber_buffer=4096, max_body=8192) as gw:
        status, error = await post(gw, {"topic": "big", "data": "x" * 5000})
        assert (status, error["code"]) == (413, "payload_too_large")
        status, error = await post(gw, {"topic": "big", "data": "x" * 9000})
        assert (status, error["code"]) == (413, "body_too_large")
        status, _ = await post(gw, {"topic": "big", "data": "x" * 3000})
        assert status == 201
        assert await gw.sql("SELECT count(*) FROM gateway.journal") == [(1,)]


async def test_the_publish_claim_decides_what_may_be_published(secured: RunningGateway) -> None:
    reader = token(topics=["*"], publish=["chat/*", "alerts"])
    client = await secured.subscribe("chat/room-1", headers={"Authorization": f"Bearer {reader}"})
    assert (await post(secured, {"topic": "chat/room-1", "data": 1}, reader))[0] == 201
    assert (await post(secured, {"topic": "alerts", "data": 2}, reader))[0] == 201
    for topic in ("alerts/1", "chatter", "news"):
        status, error = await post(secured, {"topic": topic, "data": 0}, reader)
        assert (status, error["code"]) == (403, "forbidden"), topic
    # Reading everything and writing every table grant no publishing.
    status, error = await post(secured, {"topic": "chat/room-1"}, token(topics=["*"], write=True))
    assert (status, error["code"]) == (403, "forbidden")
    event = await client.next()
    assert event.json["row"] == 1
    await client.close()
    assert await secured.sql("SELECT count(*) FROM gateway.journal") == [(2,)]


async def test_a_publish_without_a_token_is_a_401(secured: RunningGateway) -> None:
    status, error = await post(secured, {"topic": "chat/room-1"})
    assert (status, error["code"]) == (401, "PGRST302")


async def test_a_malformed_publish_claim_is_a_401(secured: RunningGateway) -> None:
    for claim in ("chat/*", [1], True):
        status, error = await post(secured, {"topic": "chat/a"}, token(publish=claim))
        assert (status, error["code"]) == (401, "PGRST303"), claim


async def test_a_table_topic_is_refused_even_to_a_token_that_may_publish_anything(secured: RunningGateway) -> None:
    status, error = await post(secured, {"topic": "todos/3", "data": {}}, token(publish=["*"]))
    assert (status, error["code"]) == (400, "table_topic")


async def test_a_page_of_an_allowed_origin_may_publish(database: str) -> None:
    async with start_gateway(database, cors_origins=("https://app.example.com",)) as gw:
        preflight = {
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        async with gw.http.options(gw.url + PUBLISH, headers=preflight) as resp:
            assert resp.status == 204 and "POST" in resp.headers["Access-Control-Allow-Methods"]
        async with gw.http.post(
            gw.url + PUBLISH, json={"topic": "chat/a"}, headers={"Origin": "https://app.example.com"}
        ) as resp:
            assert resp.status == 201
            assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
