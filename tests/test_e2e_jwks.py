"""Tokens from an identity provider: GATEWAY_JWT_JWKS_URL, with a real JWKS server in the test.

The issuer (tests/issuer.py) counts the fetches it answers, so rate limits are
checked by count, not by time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import jwt
import pytest

from .conftest import RunningGateway, start_gateway
from .issuer import Issuer, SigningKey
from .problems import error_body
from .test_keys import hs256_signed_with
from .waiting import until


async def answer(
    gw: RunningGateway, token: str, path: str = "/api/todos"
) -> tuple[int, dict[str, object], dict[str, str]]:
    """Status, body (an error's, checked for PostgREST's shape) and headers of a GET with ``token``."""
    async with gw.http.get(gw.url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await error_body(resp) if resp.status >= 400 else {}
        return resp.status, body, dict(resp.headers)


async def status(gw: RunningGateway, token: str) -> int:
    return (await answer(gw, token))[0]


async def accepted(gw: RunningGateway, token: str) -> bool:
    return await status(gw, token) == 200


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    running = Issuer([SigningKey.new("key-1")])
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def gateway_of(database: str, issuer: Issuer) -> AsyncIterator[RunningGateway]:
    async with start_gateway(database, jwt_jwks_url=issuer.url) as gw:
        await until(lambda: issuer.requests >= 1, what="the gateway fetched the key set at start")
        yield gw


async def test_a_token_signed_by_a_key_of_the_set_is_accepted_and_others_are_not(
    gateway_of: RunningGateway, issuer: Issuer
) -> None:
    key = issuer.keys[0]
    assert await status(gateway_of, key.token()) == 200
    assert await status(gateway_of, key.token(kid=None)) == 200  # one key in the set: no kid needed
    stranger = SigningKey.new("key-1")  # same kid, another key: the signature fails
    code, body, headers = await answer(gateway_of, stranger.token())
    assert (code, body["code"]) == (401, "PGRST301") and headers["WWW-Authenticate"].startswith("Bearer")
    unsigned = jwt.encode({"exp": 2**40, "topics": ["todos"]}, None, algorithm="none", headers={"kid": "key-1"})
    code, body, _ = await answer(gateway_of, unsigned)
    assert code == 401 and "alg none" in str(body["message"])
    forged = hs256_signed_with(str(key.jwk()))
    assert await status(gateway_of, forged) == 401


async def test_rotation_new_kid_accepted_after_one_refetch_old_kid_refused_once_gone(
    gateway_of: RunningGateway, issuer: Issuer
) -> None:
    old, new = issuer.keys[0], SigningKey.new("key-2", "RS256")
    assert await status(gateway_of, old.token()) == 200
    assert issuer.requests == 1
    issuer.keys = [new]  # the issuer rotates: key-1 is gone from its set
    # The first request with the new kid is a stream: it waits for the refetch, then streams.
    client = await gateway_of.subscribe("todos", access_token=new.token())
    assert issuer.requests == 2
    await gateway_of.sql("INSERT INTO todos (title) VALUES ('after rotation')")
    assert (await client.next()).json["row"]["title"] == "after rotation"
    await client.close()
    assert await status(gateway_of, new.token()) == 200
    code, body, _ = await answer(gateway_of, old.token())
    assert code == 401 and "no key 'key-1'" in str(body["message"]) and "'key-2'" in str(body["hint"])
    assert issuer.requests == 2  # the old kid asked within the cooldown: no fetch


async def test_unknown_kids_refetch_once_per_cooldown_however_many_tokens(
    gateway_of: RunningGateway, issuer: Issuer
) -> None:
    assert await status(gateway_of, issuer.keys[0].token()) == 200
    fetched = issuer.requests
    made_up = [SigningKey.new(f"made-up-{n}").token() for n in range(10)]
    together = await asyncio.gather(*(status(gateway_of, token) for token in made_up))
    one_by_one = [await status(gateway_of, token) for token in made_up]
    assert together == one_by_one == [401] * 10
    assert issuer.requests == fetched + 1
    assert await status(gateway_of, issuer.keys[0].token()) == 200  # known kids need no fetch


async def test_an_unreachable_key_set_at_start_is_a_503_until_it_answers(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = Issuer([SigningKey.new("key-1", "EdDSA")])  # not started: its port refuses
    token = issuer.keys[0].token()
    with caplog.at_level(logging.WARNING, logger="gateway.jwks"):
        async with start_gateway(database, jwt_jwks_url=issuer.url) as gw:
            async with gw.http.get(gw.url + "/healthz") as resp:
                assert resp.status == 200  # the gateway started without its keys
            code, body, headers = await answer(gw, token)
            assert (code, body["code"]) == (503, "keys_unavailable") and int(headers["Retry-After"]) >= 1
            assert "GATEWAY_JWT_JWKS_URL" in str(body["message"])
            code, body, _ = await answer(gw, "not.a.token")
            assert code == 401  # a token no key could check is refused, keys or not
            assert (await answer(gw, token, "/events?topic=todos"))[0] == 503
            await issuer.start()
            try:
                await until(lambda: accepted(gw, token), timeout=20, what="a token is accepted once the set answers")
                assert await status(gw, token) == 200
            finally:
                await issuer.stop()
    warnings = [r for r in caplog.records if r.name == "gateway.jwks" and r.levelno >= logging.WARNING]
    assert warnings and all(r.exc_info is None for r in warnings)
    assert issuer.url in warnings[0].getMessage() and "503" in warnings[0].getMessage()


async def test_a_key_set_server_answering_garbage_is_a_warning_not_a_crash(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = Issuer([SigningKey.new("key-1")], broken=(200, b"<html>Login</html>"))
    await issuer.start()
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.jwks"):
            async with start_gateway(database, jwt_jwks_url=issuer.url) as gw:
                await until(lambda: any(r.name == "gateway.jwks" for r in caplog.records), what="a warning")
                (warning,) = [r for r in caplog.records if r.name == "gateway.jwks"][:1]
                assert "could not be fetched: the answer is not JSON" in warning.getMessage()
                assert warning.exc_info is None
                assert (await answer(gw, issuer.keys[0].token()))[0] == 503
                async with gw.http.get(gw.url + "/healthz") as resp:
                    assert resp.status == 200
                issuer.broken = None
                await until(lambda: accepted(gw, issuer.keys[0].token()), timeout=20, what="accepted once fixed")
    finally:
        await issuer.stop()


async def test_an_issuer_that_goes_down_keeps_its_keys_working(gateway_of: RunningGateway, issuer: Issuer) -> None:
    key = issuer.keys[0]
    assert await status(gateway_of, key.token()) == 200
    issuer.broken = (503, b"down for maintenance")
    code, body, headers = await answer(gateway_of, SigningKey.new("key-9").token())
    assert (code, body["code"]) == (503, "keys_unavailable") and "Retry-After" in headers  # could not look
    assert await status(gateway_of, key.token()) == 200  # the keys fetched before still check tokens
