"""The key set fetcher (gateway/jwks.py) against a real local JWKS server, and its pure parts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from gateway.jwks import REFRESH_BOUNDS, REFRESH_DEFAULT, KeySet, refresh_delay, shown_url

from .issuer import Issuer, SigningKey
from .waiting import until

LOW, HIGH = REFRESH_BOUNDS


@pytest.mark.parametrize(
    ("cache_control", "delay"),
    [
        (None, REFRESH_DEFAULT),
        ("public, max-age=600", 600.0),
        ("max-age=600, stale-while-revalidate=15", 600.0),
        ('max-age="900"', 900.0),
        ("public, MAX-AGE=120", 120.0),
        ("max-age=15, stale-if-error=86400", LOW),  # held to the lower bound
        ("max-age=0", LOW),
        ("no-cache", LOW),
        ("no-store, max-age=600", LOW),
        ("max-age=31536000", HIGH),  # a key kept a year would outlive its revocation
        ("s-maxage=600", REFRESH_DEFAULT),  # for shared caches, not us
        ("max-age=abc", REFRESH_DEFAULT),
        ("", REFRESH_DEFAULT),
    ],
)
def test_the_regular_refresh_follows_max_age_within_bounds(cache_control: str | None, delay: float) -> None:
    assert refresh_delay(cache_control) == delay


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@idp.example/jwks?token=s3cret#x", "https://idp.example/jwks"),
        ("http://127.0.0.1:8081/.well-known/jwks.json", "http://127.0.0.1:8081/.well-known/jwks.json"),
    ],
)
def test_a_logged_url_has_no_user_password_or_query(url: str, shown: str) -> None:
    assert shown_url(url) == shown


@contextlib.asynccontextmanager
async def running(key_set: KeySet) -> AsyncIterator[KeySet]:
    task = asyncio.create_task(key_set.run())
    try:
        yield key_set
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_regular_refresh_drops_a_key_the_issuer_removed() -> None:
    old, new = SigningKey.new("old"), SigningKey.new("new")
    issuer = Issuer([old, new], cache_control="max-age=0")
    await issuer.start()
    try:
        async with running(KeySet(issuer.url, refresh_bounds=(0.05, 0.05))) as key_set:
            await until(lambda: key_set.keyring is not None and key_set.keyring.kids == ("old", "new"))
            issuer.keys = [new]
            await until(lambda: key_set.keyring is not None and key_set.keyring.kids == ("new",))
            assert issuer.requests >= 2
    finally:
        await issuer.stop()


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        ((200, b"<html>not json</html>"), "the answer is not JSON"),
        ((200, b"\xff\xfe"), "the answer is not JSON"),
        ((200, b'{"keys": "nope"}'), "not a JWK set"),
        ((200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'), "no key of the set can verify tokens"),
        ((200, b"[" * 100000), "not JSON"),  # nested past the parser's recursion limit
        ((500, b"oops"), "HTTP 500"),
        ((404, b""), "HTTP 404"),
    ],
)
async def test_a_bad_answer_is_one_warning_line_and_the_keys_from_before_stay(
    caplog: pytest.LogCaptureFixture, broken: tuple[int, bytes], says: str
) -> None:
    good = SigningKey.new("good")
    issuer = Issuer([good])
    await issuer.start()
    try:
        async with running(KeySet(issuer.url, refresh_bounds=(0.05, 0.05))) as key_set:
            await until(lambda: key_set.keyring is not None)
            issuer.broken = broken
            with caplog.at_level(logging.WARNING, logger="gateway.jwks"):
                await until(lambda: key_set.failing, what="a fetch failed")
            assert key_set.keyring is not None and key_set.keyring.kids == ("good",)
            warnings = [r for r in caplog.records if r.name == "gateway.jwks" and r.levelno == logging.WARNING]
            assert warnings and all(r.exc_info is None and "\n" not in r.getMessage() for r in warnings)
            message = warnings[0].getMessage()
            assert says in message and issuer.url in message and "keeping the 1 key(s) fetched before" in message
    finally:
        await issuer.stop()


async def test_an_unreachable_url_is_retried_until_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    issuer = Issuer([SigningKey.new("k")])
    with caplog.at_level(logging.WARNING, logger="gateway.jwks"):
        async with running(KeySet(issuer.url)) as key_set:
            await until(lambda: key_set.failing, what="the first fetch failed")
            assert key_set.keyring is None and key_set.retry_after() >= 1
            (warning,) = [r for r in caplog.records if r.name == "gateway.jwks"]
            assert "tokens are answered 503 until a fetch succeeds" in warning.getMessage()
            assert warning.exc_info is None
            await issuer.start()
            try:
                await until(lambda: key_set.keyring is not None, what="a retry fetched the set")
            finally:
                await issuer.stop()


async def test_a_refetch_asked_by_tokens_happens_once_per_cooldown() -> None:
    issuer = Issuer([SigningKey.new("k")])
    await issuer.start()
    try:
        async with running(KeySet(issuer.url)) as key_set:
            await until(lambda: key_set.keyring is not None)
            first = issuer.requests
            waits = [key_set.refetch() for _ in range(20)]
            asked = [w for w in waits if w is not None]
            assert len(asked) == 1
            await asked[0]
            assert issuer.requests == first + 1
    finally:
        await issuer.stop()


async def test_a_fetch_that_hangs_times_out_as_a_failure() -> None:
    hung = asyncio.Event()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hung.wait()  # never answers
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with running(KeySet(f"http://127.0.0.1:{port}/jwks", timeout=0.2)) as key_set:
            await until(lambda: key_set.failing, what="the fetch timed out")
    finally:
        hung.set()
        server.close()
        await server.wait_closed()
