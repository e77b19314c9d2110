"""Below the application: malformed requests, the access log and the request-head timeout.

Every request here goes over a raw socket, as an attacker or a careless client
sends it; the gateway is the real one, served by the runner the CLI uses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import RunningGateway, start_gateway
from .problems import error_of
from .test_e2e_process import gateway_process

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdXNlciJ9.c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ"


def address(gw: RunningGateway | str) -> tuple[str, int]:
    url = gw if isinstance(gw, str) else gw.url
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def raw(gw: RunningGateway | str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` on a fresh connection, read to the end; (status, headers, body)."""
    reader, writer = await asyncio.open_connection(*address(gw))
    writer.write(request)
    try:
        async with asyncio.timeout(10):
            data = await reader.read()  # every answer here closes the connection
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


MALFORMED = {
    "raw UTF-8 in the query, as curl sends it": f"GET /events?topic=café&access_token={TOKEN} HTTP/1.1\r\n"
    "Host: x\r\n\r\n".encode(),
    "a control byte in Authorization": f"GET /events?topic=todos HTTP/1.1\r\nHost: x\r\n"
    f"Authorization: Bearer {TOKEN[:20]}\x01{TOKEN[20:]}\r\n\r\n".encode(),
    "a URL over 8190 bytes (10,000 topics)": b"GET /events?access_token="
    + TOKEN.encode()
    + b"".join(b"&topic=t%d" % i for i in range(10_000))
    + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "10,000 headers": b"GET /api/todos HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-H%d: %s\r\n" % (i, TOKEN.encode()) for i in range(10_000))
    + b"\r\n",
    "one 100 kB header": b"GET /api/todos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    + TOKEN.encode() * 1000
    + b"\r\n\r\n",
    "method FOO": f"FOO /api/todos?access_token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "TLS to a plain-HTTP port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + TOKEN.encode() + b"\r\n\r\n",
}


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, body
    assert headers["content-type"].startswith("application/json"), headers
    error = error_of(json.loads(body))
    assert TOKEN[:20].encode() not in body and b"topic" not in body and b"X-H" not in body  # nothing echoed
    return error


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_request_gets_the_json_error_body_without_an_echo(gateway: RunningGateway, case: str) -> None:
    status, headers, body = await raw(gateway, MALFORMED[case])
    error = assert_json_error(status, headers, body, 400)
    assert (error["code"], error["details"], error["hint"]) == ("bad_request", None, None)


async def test_unknown_expect_is_a_json_417(gateway: RunningGateway) -> None:
    request = (
        b"POST /api/todos HTTP/1.1\r\nHost: x\r\nExpect: x-"
        + TOKEN.encode()
        + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    error = assert_json_error(*await raw(gateway, request), expected=417)
    assert error["code"] == "expectation_failed" and "100-continue" in error["message"]
    assert await gateway.sql("SELECT count(*) FROM todos") == [(0,)]


async def test_demo_page_ignores_range_and_preconditions_rather_than_answering_without_json(database: str) -> None:
    """FileResponse answered a bad Range with an empty 416 (and If-Match with an empty 412)."""
    async with start_gateway(database, demo=True) as gw:
        for header in ("Range: bytes=999999-", "Range: bytes=abc", 'If-Match: "x"', "If-Unmodified-Since: x"):
            status, headers, body = await raw(
                gw, f"GET / HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n".encode()
            )
            assert status == 200 and headers["content-type"].startswith("text/html"), (header, status)
            assert body.startswith(b"<!doctype html>") and len(body) == int(headers["content-length"])


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gateway.access"]


async def test_malformed_request_logs_one_line_below_warning_without_query_or_header_values(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for n, case in enumerate(MALFORMED, start=1):
        before = len(caplog.records)
        await raw(gateway, MALFORMED[case])
        marker = f"/healthz?n={n}"  # a later, well-formed request: its line comes after the one above
        async with gateway.http.get(gateway.url + marker) as resp:
            assert resp.status == 200
        await wait_for(lambda at=before: any('"GET /healthz" 200' in r.getMessage() for r in caplog.records[at:]))
        records = caplog.records[before:]
        marker_at = next(i for i, r in enumerate(records) if '"GET /healthz" 200' in r.getMessage())
        malformed = [r for r in records[:marker_at] if r.name != "aiohttp.client"]
        assert len(malformed) == 1, (case, [(r.name, r.getMessage()) for r in malformed])
        record = malformed[0]
        assert record.levelno < logging.WARNING and record.exc_info is None
        assert record.getMessage().startswith('127.0.0.1 "- -" 400 '), record.getMessage()
    text = "\n".join(caplog.text.splitlines())
    assert TOKEN[:20] not in text and "café" not in text and "topic=" not in text and "X-H1" not in text


# A body that its Content-Encoding does not decode, to a handler that reads it and to
# one that answers without reading it (aiohttp then reads it to discard it).
UNREADABLE_BODIES = {
    f"{encoding} to {path}": f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    f"Content-Encoding: {encoding}\r\nContent-Length: 20\r\nConnection: close\r\n\r\n".encode()
    + b'{"title": "not-gz"}\n'
    for encoding in ("gzip", "deflate")
    for path in ("/api/todos", "/api/nosuch")
}


@pytest.mark.parametrize("case", list(UNREADABLE_BODIES))
async def test_a_body_not_in_its_content_encoding_is_a_400_with_one_quiet_line(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """It was a 500 with a traceback, or an answer and then aiohttp's ERROR with a traceback."""
    caplog.set_level(logging.DEBUG)
    status, headers, body = await raw(gateway, UNREADABLE_BODIES[case])
    expected = 400 if "todos" in case else 404
    assert_json_error(status, headers, body, expected)
    async with gateway.http.get(gateway.url + "/healthz") as resp:  # a later request: its line comes after
        assert resp.status == 200
    await wait_for(lambda: any('"GET /healthz" 200' in r.getMessage() for r in caplog.records))
    records = [r for r in caplog.records if r.name != "aiohttp.client"]
    marker_at = next(i for i, r in enumerate(records) if '"GET /healthz" 200' in r.getMessage())
    lines = [(r.name, r.levelname, r.getMessage()) for r in records[:marker_at]]
    assert len(lines) == 1 and lines[0][0] == "gateway.access" and f" {expected} " in lines[0][2], lines
    assert all(r.exc_info is None for r in records)
    assert await gateway.sql("SELECT count(*) FROM todos") == [(0,)]


async def test_access_log_has_one_line_per_request_without_the_query_string(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    async with gateway.http.get(f"{gateway.url}/api/todos?access_token={TOKEN}&limit=5") as resp:
        assert resp.status == 200
    async with gateway.http.post(gateway.url + "/api/todos", json={"title": "x"}) as resp:
        assert resp.status == 201
    async with gateway.http.get(gateway.url + "/api/nope?x=1") as resp:
        assert resp.status == 404
    await wait_for(lambda: len(access_lines(caplog)) >= 3)
    get, post, missing = access_lines(caplog)
    assert get.startswith('127.0.0.1 "GET /api/todos" 200 ') and get.endswith("s")
    assert post.startswith('127.0.0.1 "POST /api/todos" 201 ')
    assert missing.startswith('127.0.0.1 "GET /api/nope" 404 ')
    sent, seconds = get.split()[-2:]
    assert sent.endswith("B") and int(sent[:-1]) > 0 and float(seconds[:-1]) >= 0
    assert TOKEN not in caplog.text and "limit" not in caplog.text


async def test_a_stream_is_logged_when_it_ends_with_its_duration_and_bytes(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    client = await gateway.subscribe("todos", access_token=TOKEN)
    await gateway.sql("INSERT INTO todos (title) VALUES ('logged')")
    assert (await client.next()).json["row"]["title"] == "logged"
    assert access_lines(caplog) == []  # live: not logged at the hand-over
    started = time.monotonic()
    await client.close()
    await wait_for(lambda: len(access_lines(caplog)) == 1)
    (line,) = access_lines(caplog)
    assert line.startswith('127.0.0.1 "GET /events" 200 ') and line.endswith("s stream"), line
    sent, seconds = line.split()[-3:-1]
    assert int(sent[:-1]) > len(b"retry: 2000\n\n") + 100  # headers, preamble and the event
    assert 0 < float(seconds[:-1]) < time.monotonic() - started + 60
    assert TOKEN not in caplog.text and "topic=" not in caplog.text


async def test_access_log_off_writes_no_line(database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with start_gateway(database, access_log=False) as gw:
        async with gw.http.get(gw.url + "/api/todos") as resp:
            assert resp.status == 200
        client = await gw.subscribe("todos")
        await client.close()
        await wait_for(lambda: gw.hub.statistics().subscribers == 0)  # the stream's end has run
        assert access_lines(caplog) == []


async def test_malformed_request_with_access_log_off_logs_one_debug_line(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with start_gateway(database, access_log=False) as gw:
        await raw(gw, MALFORMED["a control byte in Authorization"])
        await wait_for(lambda: any("malformed" in r.getMessage() for r in caplog.records))
        records = [r for r in caplog.records if r.name.startswith(("aiohttp", "gateway"))]
        assert [r.levelno for r in records] == [logging.DEBUG], [r.getMessage() for r in records]
        assert TOKEN[:20] not in caplog.text


HEAD_TIMEOUT = 0.5


@pytest.fixture
async def quick(database: str):  # type: ignore[no-untyped-def]
    async with start_gateway(database, request_head_timeout=HEAD_TIMEOUT) as gw:
        yield gw


async def test_slowloris_connection_is_closed_when_its_head_is_not_complete_in_time(quick: RunningGateway) -> None:
    reader, writer = await asyncio.open_connection(*address(quick))
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    started = time.monotonic()
    closed_after = None
    for byte in request:
        writer.write(bytes([byte]))
        try:
            async with asyncio.timeout(0.05):  # a byte every 50 ms: the head needs about 12 s
                if await reader.read(1) == b"":
                    closed_after = time.monotonic() - started
                    break
        except TimeoutError:
            continue
    writer.close()
    assert closed_after is not None, "the trickling connection was never closed"
    assert HEAD_TIMEOUT * 0.9 <= closed_after < HEAD_TIMEOUT + 3


async def silent_connection_closed(gw: RunningGateway) -> float:
    """Open a connection that sends nothing; return how long until the gateway closed it."""
    reader, writer = await asyncio.open_connection(*address(gw))
    started = time.monotonic()
    async with asyncio.timeout(10):
        assert await reader.read() == b""
    writer.close()
    return time.monotonic() - started


async def test_connection_that_sends_nothing_is_closed_after_the_bound(quick: RunningGateway) -> None:
    assert HEAD_TIMEOUT * 0.9 <= await silent_connection_closed(quick) < HEAD_TIMEOUT + 3


async def test_keep_alive_idle_between_requests_and_live_streams_outlast_the_bound(quick: RunningGateway) -> None:
    reader, writer = await asyncio.open_connection(*address(quick))
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    async def one_request() -> None:
        writer.write(get)
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        assert head.startswith(b"HTTP/1.1 200")

    await one_request()
    stream = await quick.subscribe("todos")
    # A connection opened now that sends nothing is closed by the head timer: the bound has
    # passed for the idle keep-alive connection and the stream too (their timers would have fired).
    await silent_connection_closed(quick)
    await silent_connection_closed(quick)
    await one_request()  # still open, and serves its next request
    await quick.sql("INSERT INTO todos (title) VALUES ('still live')")
    assert (await stream.next()).json["row"]["title"] == "still live"
    await stream.close()
    writer.close()


async def test_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(database: str) -> None:
    """aiohttp's own default would keep it an hour: one client could hold sockets idle that long."""
    async with start_gateway(database, keepalive_timeout=0.5) as gw:
        reader, writer = await asyncio.open_connection(*address(gw))
        stream = await gw.subscribe("todos")
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            while await reader.read(1024):  # the body, then the close
                pass
        assert 0.4 <= time.monotonic() - started < 5
        writer.close()
        # A live stream is not an idle connection: it outlasts the bound.
        await gw.sql("INSERT INTO todos (title) VALUES ('after the keep-alive bound')")
        assert (await stream.next()).json["row"]["title"] == "after the keep-alive bound"
        await stream.close()


async def test_gateway_process_log_has_no_token_and_one_quiet_line_per_malformed_request(database: str) -> None:
    """The real CLI process, its real log handler: what an operator's log collector would get."""
    async with gateway_process(database, env={"GATEWAY_LOG_LEVEL": "debug"}) as (proc, url):
        for request in MALFORMED.values():
            status, _, _ = await raw(url, request)
            assert status == 400
        status, _, _ = await raw(url, b"GET /healthz?marker=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status == 200
        proc.send_signal(signal.SIGTERM)  # the marker: everything before the exit is in the log
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            log = (await proc.stderr.read()).decode(errors="replace")
            await proc.wait()
    lines = log.splitlines()
    assert sum('"- -" 400 ' in line for line in lines) == len(MALFORMED), log
    assert any('"GET /healthz" 200 ' in line for line in lines)
    assert TOKEN[:20] not in log and "café" not in log and "caf\\xc3" not in log and "marker" not in log
    assert "Traceback" not in log and " ERROR " not in log and " WARNING " not in log, log
