"""A stream's one end, driven for real: every end reason, during the replay and live, ended twice.

The reason is handed to the stream's end directly (the owner every cause calls:
the hub, the expiry timer, the handler, the connection), so each case is
deterministic; tests elsewhere show each cause reaching it (test_e2e_auth's
expiry, test_e2e_backpressure's slow consumer, the shutdown tests). A replay is
held in place by a lock on gateway.retention, which its first query waits for.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiopg
import jwt
import pytest

from gateway.ending import EndReason, Phase
from gateway.state import LIMITS
from gateway.stream import StreamEnd

from .conftest import RunningGateway, start_gateway
from .waiting import until


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gateway.access"]


def the_stream_end(gateway: RunningGateway) -> StreamEnd | None:
    subs = list(gateway.hub._subscribers)
    return subs[0]._on_end if len(subs) == 1 else None  # type: ignore[no-any-return]


async def read_to_the_end(reader: asyncio.StreamReader) -> bytes:
    data = b""
    try:
        async with asyncio.timeout(10):
            while chunk := await reader.read(65536):
                data += chunk
    except ConnectionResetError:  # a cut-off connection
        pass
    return data


@pytest.mark.parametrize("reason", list(EndReason), ids=lambda r: r.name)
@pytest.mark.parametrize("where", ["replay", "live"])
async def test_a_stream_ends_once_however_and_wherever_it_ends(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture, where: str, reason: EndReason
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    async with aiopg.connect(gateway.dsn) as lock_conn, lock_conn.cursor() as lock:
        resume = ""
        if where == "replay":
            await lock.execute("BEGIN; LOCK TABLE gateway.retention IN ACCESS EXCLUSIVE MODE")
            resume = "Last-Event-ID: 0\r\n"
        host, port = gateway.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /events?topic=todos HTTP/1.1\r\nHost: x\r\n{resume}\r\n".encode())
        data = b""
        async with asyncio.timeout(10):
            while b"retry: " not in data:
                data += await reader.read(65536)
        phase = Phase.WRITING if where == "replay" else Phase.LIVE
        await until(lambda: (end := the_stream_end(gateway)) is not None and end.phase is phase, what=f"{phase}")
        end = the_stream_end(gateway)
        assert end is not None
        assert end.sub.is_held == (where == "replay")

        end(reason)
        end(EndReason.SHUTDOWN if reason is not EndReason.SHUTDOWN else EndReason.TOKEN_EXPIRED)  # ignored

        assert end.phase is Phase.ENDED and end.sub.closed_reason is reason
        assert gateway.hub.statistics().subscribers == 0
        limits = gateway.app[LIMITS]
        assert limits._open == 0 and not limits._by_client  # released once, not twice
        if where == "replay":
            await lock.execute("ROLLBACK")
        data += await read_to_the_end(reader)
        writer.close()

    body = data.split(b"\r\n\r\n", 1)[1]
    goodbye = reason.goodbye
    if goodbye is None:
        assert b"closing:" not in body
    else:
        assert body.endswith(b"%x\r\n%b\r\n0\r\n\r\n" % (len(goodbye), goodbye)), body
        assert body.count(b"closing:") == 1
    async with gateway.http.get(gateway.url + "/healthz") as resp:  # a later line: the marker
        assert resp.status == 200
    await until(lambda: any('"GET /healthz"' in line for line in access_lines(caplog)), what="the marker's line")
    streams = [line for line in access_lines(caplog) if '"GET /events"' in line]
    assert len(streams) == 1 and streams[0].endswith(" stream"), streams
    assert int(streams[0].split()[-3][:-1]) >= len(data)  # every byte the client got, headers included


async def test_a_token_that_expires_during_the_replay_ends_the_stream_then_with_its_goodbye(database: str) -> None:
    """The expiry timer calls the same end: the replay is cut short, not finished first."""
    secret = "test-secret-that-is-long-enough-for-hs256"
    async with (
        start_gateway(database, jwt_secret=secret) as gw,
        aiopg.connect(gw.dsn) as lock_conn,
        lock_conn.cursor() as lock,
    ):
        await lock.execute("BEGIN; LOCK TABLE gateway.retention IN ACCESS EXCLUSIVE MODE")  # the replay waits
        token = jwt.encode({"exp": time.time() + 1.5, "topics": ["todos"]}, secret, algorithm="HS256")
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET /events?topic=todos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Last-Event-ID: 0\r\n\r\n".encode()
        )
        data = await read_to_the_end(reader)  # while the replay still waits for the lock
        writer.close()
        end = the_stream_end(gw)
        assert end is None  # unsubscribed
        await lock.execute("ROLLBACK")
    goodbye = EndReason.TOKEN_EXPIRED.goodbye
    assert goodbye is not None
    assert data.endswith(b"%x\r\n%b\r\n0\r\n\r\n" % (len(goodbye), goodbye)), data
