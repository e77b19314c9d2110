"""Whole-gateway behaviour of /events: real Postgres, real HTTP, browser-style parsing."""

from __future__ import annotations

import asyncio
import gc
import json
import logging

import aiohttp
import pytest
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.ending import EndReason
from gateway.live import LiveStream
from gateway.state import LIMITS

from .conftest import RunningGateway, start_gateway
from .problems import error_body
from .sse_client import SSEClient
from .waiting import until


async def post(gw: RunningGateway, path: str, body: object) -> aiohttp.ClientResponse:
    return await gw.http.post(gw.url + path, json=body)


async def test_http_insert_update_delete_arrive_as_events(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("todos")
    rows = {"Prefer": "return=representation"}
    (created,) = await (
        await gateway.http.post(gateway.url + "/api/todos", json={"title": "milk"}, headers=rows)
    ).json()
    pk = created["id"]
    patch = await gateway.http.patch(f"{gateway.url}/api/todos?id=eq.{pk}", json={"done": True}, headers=rows)
    (updated,) = await patch.json()
    (deleted,) = await (await gateway.http.delete(f"{gateway.url}/api/todos?id=eq.{pk}", headers=rows)).json()

    insert, update, delete = await client.take(3)
    assert (insert.type, update.type, delete.type) == ("insert", "update", "delete")
    assert insert.json["row"] == created
    assert insert.json["topic"] == f"todos/{pk}" and insert.json["table"] == "todos"
    assert update.json["row"] == updated and update.json["old"] == created
    assert delete.json["row"] is None and delete.json["old"] == updated == deleted
    assert [e.json["op"] for e in (insert, update, delete)] == ["insert", "update", "delete"]
    assert int(insert.id) < int(update.id) < int(delete.id)
    assert all(e.json["id"] == int(e.id) for e in (insert, update, delete))
    await client.close()


async def test_sql_writes_arrive_as_events(gateway: RunningGateway) -> None:
    """The trigger makes the event, whoever writes: here psql-style plain SQL."""
    client = await gateway.subscribe("todos")
    await gateway.sql("INSERT INTO todos (id, title) VALUES (7, 'from sql')")
    await gateway.sql("UPDATE todos SET title = 'renamed' WHERE id = 7")
    await gateway.sql("DELETE FROM todos WHERE id = 7")
    insert, update, delete = await client.take(3)
    assert insert.type == "insert" and insert.json["row"]["title"] == "from sql"
    assert update.type == "update" and update.json["row"]["title"] == "renamed"
    assert update.json["old"]["title"] == "from sql"
    assert delete.type == "delete" and delete.json["old"]["title"] == "renamed"
    await client.close()


async def test_row_topic_gets_only_that_row(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (id, title) VALUES (42, 'watched'), (43, 'other')")
    await gateway.caught_up()
    row_client = await gateway.subscribe("todos/42")
    await gateway.sql("UPDATE todos SET done = true WHERE id IN (42, 43)")
    await gateway.sql("UPDATE todos SET title = 'again' WHERE id = 43")
    event = await row_client.next()
    assert event.json["row"]["id"] == 42 and event.json["topic"] == "todos/42"
    await row_client.nothing_more()
    await row_client.close()


async def test_several_topics_get_the_union_once(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (id, title) VALUES (1, 'a')")
    await gateway.caught_up()
    client = await gateway.subscribe("todos", "todos/1", "chat/room1")
    await gateway.sql("UPDATE todos SET done = true WHERE id = 1")
    await gateway.sql("SELECT gateway.publish('chat/room1', '{\"text\":\"hi\"}')")
    update, chat = await client.take(2)
    assert update.type == "update" and update.json["row"]["id"] == 1
    assert chat.type == "publish" and chat.json["row"] == {"text": "hi"}
    await client.nothing_more()  # the update matched two topics but came once
    await client.close()


async def test_custom_publish_reaches_its_topic_only(gateway: RunningGateway) -> None:
    room1 = await gateway.subscribe("chat/room1")
    room2 = await gateway.subscribe("chat/room2")
    await gateway.sql("SELECT gateway.publish('chat/room1', %s)", (json.dumps({"text": "hi"}),))
    event = await room1.next()
    assert event.type == "publish"
    assert event.json == {
        "id": int(event.id),
        "topic": "chat/room1",
        "table": None,
        "op": "publish",
        "row": {"text": "hi"},
    }
    await room2.nothing_more()
    await room1.close()
    await room2.close()


async def test_hundred_subscribers_each_get_every_event(gateway: RunningGateway) -> None:
    clients = await asyncio.gather(*(gateway.subscribe("todos") for _ in range(100)))
    assert gateway.hub.statistics().subscribers == 100
    await gateway.sql("INSERT INTO todos (title) SELECT 'n' || i FROM generate_series(1, 20) i")
    for i in range(5):
        await gateway.sql("INSERT INTO todos (title) VALUES (%s)", (f"single {i}",))
    results = await asyncio.gather(*(c.take(25, timeout=20) for c in clients))
    expected = [f"n{i}" for i in range(1, 21)] + [f"single {i}" for i in range(5)]
    for events in results:
        assert [e.json["row"]["title"] for e in events] == expected
    await asyncio.gather(*(c.close() for c in clients))


async def test_disconnected_client_leaves_the_hub(gateway: RunningGateway) -> None:
    client = await gateway.subscribe("todos", "todos/1")
    assert gateway.hub.statistics().subscribers == 1
    await client.close()
    await until(lambda: gateway.hub.statistics().subscribers == 0, what="the closed stream left the hub")
    stats = gateway.hub.statistics()
    assert stats.subscribers == 0 and stats.topics == 0


async def test_stream_headers_and_preamble(gateway: RunningGateway) -> None:
    await gateway.sql("INSERT INTO todos (title) VALUES ('before')")
    await gateway.caught_up()
    client = await gateway.subscribe("todos")
    headers = client.response_headers
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    assert client.retry == 2000
    # a fresh client is handed a cursor at once, so a reconnect before any event resumes
    assert client.last_event_id == str(gateway.hub.position) and gateway.hub.position >= 1
    await client.close()


async def test_heartbeat_comments_keep_idle_streams_alive(database: str) -> None:
    async with start_gateway(database, heartbeat=0.2) as gw:
        client = await gw.subscribe("todos")
        await until(lambda: len(client.comments) >= 2, what="two heartbeats arrived")
        assert set(client.comments) == {"heartbeat"}
        await client.close()


async def test_bad_stream_requests_get_json_errors(gateway: RunningGateway) -> None:
    cases = {
        "/events": "missing_topic",
        "/events?topic=": "bad_topic",
        "/events?topic=has%20space": "bad_topic",
        "/events?topic=todos&lastEventId=abc": "bad_cursor",
        "/events?topic=todos&lastEventId=-1": "bad_cursor",
    }
    for path, code in cases.items():
        async with gateway.http.get(gateway.url + path) as resp:
            assert resp.status == 400, path
            assert (await error_body(resp))["code"] == code
    async with gateway.http.get(gateway.url + "/events?topic=todos", headers={"Last-Event-ID": "x1"}) as resp:
        assert resp.status == 400
    assert gateway.hub.statistics().subscribers == 0


async def test_shutdown_leaves_no_task_subscriber_or_connection(database: str) -> None:
    before = {t for t in asyncio.all_tasks()}
    async with start_gateway(database) as gw:
        clients = [await gw.subscribe("todos") for _ in range(3)]
        listening = await gw.sql(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'pg-sse-gateway listener' AND datname = current_database()"
        )
        assert listening[0][0] == 1
        hub = gw.hub
    for client in clients:
        async with asyncio.timeout(5):
            await client.ended.wait()
    assert hub.statistics().subscribers == 0

    def leftover() -> set[asyncio.Task[object]]:
        tasks = {t for t in asyncio.all_tasks() if t not in before and not t.done()}
        return {t for t in tasks if t is not asyncio.current_task() and "SSEClient" not in repr(t.get_coro())}

    async def no_backends() -> bool:  # a closed connection's backend exits just after
        rows = await gw.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return rows[0][0] == 0

    await until(lambda: not leftover(), timeout=5, what="the gateway's tasks ended")
    await until(no_backends, timeout=5, what="the listener's and pool's backends exited")


async def test_stream_limits_per_process_and_per_client(database: str) -> None:
    def from_address(address: str) -> aiohttp.ClientSession:  # loopback has 127.0.0.0/8 to pick from
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))

    async with (
        start_gateway(database, max_subscribers=3, max_subscribers_per_client=2) as gw,
        from_address("127.0.0.2") as second_host,
        from_address("127.0.0.3") as third_host,
    ):
        first = [await gw.subscribe("todos") for _ in range(2)]
        async with gw.http.get(gw.url + "/events?topic=todos") as resp:
            assert resp.status == 429 and (await error_body(resp))["code"] == "too_many_streams"
            assert resp.headers["Retry-After"]
        other = SSEClient(second_host, gw.url + "/events?topic=todos")
        await other.connected()
        async with third_host.get(gw.url + "/events?topic=todos") as resp:
            assert resp.status == 503 and (await error_body(resp))["code"] == "too_many_subscribers"
        await first[0].close()
        await until(lambda: gw.hub.statistics().subscribers == 2, timeout=5, what="the closed stream left")
        again = await gw.subscribe("todos")  # a closed stream frees its slot
        for client in (first[1], other, again):
            await client.close()


async def test_http10_stream_is_not_chunk_framed(gateway: RunningGateway) -> None:
    """nginx talks HTTP/1.0 to upstreams by default: the body must be plain SSE, no chunk sizes."""
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /events?topic=todos HTTP/1.0\r\nHost: x\r\n\r\n")
    data = b""
    async with asyncio.timeout(5):
        while b"retry: " not in data:  # the preamble: the stream is subscribed
            data += await reader.read(65536)
        await gateway.sql("INSERT INTO todos (title) VALUES ('over 1.0')")
        while b"over 1.0" not in data or not data.endswith(b"\n\n"):
            data += await reader.read(65536)
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body.startswith(b"retry: ")
    event = body.split(b"\n\n")[1]
    assert event.startswith(b"id: ") and b"\r\n" not in body
    writer.close()


async def test_live_stream_is_handed_over_and_aiohttp_keeps_nothing_of_it(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """An idle stream costs a transport, a LiveStream and a Subscriber: no request, parser or task."""
    caplog.set_level(logging.INFO, logger="gateway.access")
    clients = [await gateway.subscribe("todos") for _ in range(3)]
    assert gateway.runner.server is not None
    # aiohttp retires each connection once its request's task is over
    await until(lambda: gateway.runner.server.connections == [], what="aiohttp retired the three connections")
    assert not any("/events" in r.getMessage() for r in caplog.records)  # logged when they end, not now
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, (RequestHandler, web.BaseRequest))] == []
    assert sum(isinstance(o, LiveStream) for o in gc.get_objects()) == 3
    await gateway.sql("INSERT INTO todos (title) VALUES ('still served')")
    for client in clients:
        assert (await client.next()).json["row"]["title"] == "still served"
    await clients[0].close()
    await until(lambda: gateway.hub.statistics().subscribers == 2, timeout=5, what="the closed stream left")
    for client in clients[1:]:
        await client.close()


async def test_stream_the_server_ends_says_why_and_ends_the_chunked_body(gateway: RunningGateway) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /events?topic=todos HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    async with asyncio.timeout(5):
        while b"retry: " not in data:
            data += await reader.read(65536)
        await until(lambda: gateway.hub.statistics().subscribers == 1, what="the stream subscribed")
        gateway.hub.close_all(EndReason.SHUTDOWN)
        data += await reader.read()  # to the end: the server closes the connection
    assert b"\r\n: closing: server shutting down; reconnect with Last-Event-ID to resume\n\r\n" in data
    assert data.endswith(b"\r\n0\r\n\r\n")  # a complete chunked body, not a cut-off one
    assert b"transfer-encoding: chunked" in data.split(b"\r\n\r\n", 1)[0].lower()
    writer.close()
    limits = gateway.app[LIMITS]
    await until(lambda: not limits._open, timeout=5, what="the stream's slot came back")  # once, when it is gone
    assert limits._open == 0 and not limits._by_client


async def _head_then_get(gw: RunningGateway, head_path: str) -> tuple[bytes, bytes]:
    """HEAD ``head_path`` then GET /healthz on one keep-alive connection: (HEAD's head, what follows it).

    The GET's answer is the marker: whatever the HEAD response sent after its header
    block (a body, SSE bytes) would come before it.
    """
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"HEAD {head_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    try:
        async with asyncio.timeout(10):
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < len(b"HTTP/1.1 200"):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize("path", ["/events?topic=todos", "/events?topic=todos&lastEventId=0", "/api/todos"])
async def test_head_gets_headers_only_never_stream_bytes(gateway: RunningGateway, path: str) -> None:
    head, rest = await _head_then_get(gateway, path)
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    assert rest.startswith(b"HTTP/1.1 200"), f"HEAD {path} sent bytes after its headers: {rest[:80]!r}"
    if path.startswith("/events"):  # a stream is GET only: a JSON 405 that names GET, not an event stream
        assert status_line.startswith("HTTP/1.1 405"), status_line
        assert headers["allow"] == "GET"
        assert headers["content-type"].startswith("application/json")
    else:
        assert status_line.startswith("HTTP/1.1 200"), status_line
        assert headers["content-type"].startswith("application/json")
    await until(lambda: not gateway.hub.statistics().subscribers, timeout=5, what="a refused HEAD left no subscriber")
