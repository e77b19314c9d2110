"""JWT auth and CORS, through real HTTP: who may subscribe, read and write."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from .conftest import RunningGateway, start_gateway
from .issuer import SigningKey
from .problems import error_body, error_of
from .test_e2e_protocol import raw

SECRET = "test-secret-that-is-long-enough-for-hs256"


def hmac_signed(claims: dict[str, object], key: bytes) -> str:
    """An HS256 token made by hand with the *public* key: the classic algorithm-confusion forgery."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(hmac.new(key, head.encode(), hashlib.sha256).digest())


def hs256(**claims: object) -> str:
    return jwt.encode({"exp": time.time() + 60, **claims}, SECRET, algorithm="HS256")


@pytest.fixture
async def secured(database: str):  # type: ignore[no-untyped-def]
    async with start_gateway(database, jwt_secret=SECRET) as gw:
        yield gw


async def status_of(gw: RunningGateway, method: str, path: str, token: str | None = None, **kwargs: object) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with gw.http.request(method, gw.url + path, headers=headers, **kwargs) as resp:  # type: ignore[arg-type]
        if resp.status >= 400:
            body = await error_body(resp)
            assert body["code"] in ("PGRST301", "PGRST302", "PGRST303", "forbidden", "not_found"), body
            if resp.status == 401:
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        return resp.status


async def test_no_token_or_bad_token_is_401(secured: RunningGateway) -> None:
    wrong_key = jwt.encode({"exp": time.time() + 60, "topics": ["*"]}, "another-secret-also-long-enough!", "HS256")
    expired = jwt.encode({"exp": time.time() - 5, "topics": ["*"]}, SECRET, algorithm="HS256")
    no_exp = jwt.encode({"topics": ["*"]}, SECRET, algorithm="HS256")
    for token in (None, "garbage", wrong_key, expired, no_exp):
        assert await status_of(secured, "GET", "/events?topic=todos", token) == 401
        assert await status_of(secured, "GET", "/api/todos", token) == 401
        assert await status_of(secured, "POST", "/api/todos", token, json={"title": "x"}) == 401
    assert await secured.sql("SELECT count(*) FROM todos") == [(0,)]
    assert await status_of(secured, "GET", "/healthz") == 200  # probes stay open


async def test_topics_claim_with_wildcards_decides_what_may_be_read(secured: RunningGateway) -> None:
    rows_only = hs256(topics=["todos/*"])
    table = hs256(topics=["todos"])
    assert await status_of(secured, "GET", "/events?topic=todos/42", rows_only) == 200
    assert await status_of(secured, "GET", "/events?topic=todos", rows_only) == 403
    assert await status_of(secured, "GET", "/events?topic=todos/1&topic=chat/room1", rows_only) == 403
    assert await status_of(secured, "GET", "/events?topic=todos/42", table) == 200  # a table grants its rows
    assert await status_of(secured, "GET", "/api/todos", rows_only) == 403
    assert await status_of(secured, "GET", "/api/todos", table) == 200
    assert await status_of(secured, "GET", "/api/todos/1", rows_only) == 404  # allowed; no such row
    assert secured.hub.statistics().subscribers == 0


async def test_write_claim_decides_who_may_write(secured: RunningGateway) -> None:
    reader = hs256(topics=["todos"])
    writer = hs256(topics=["todos"], write=True)
    todos_writer = hs256(topics=[], write=["todos"])
    other_writer = hs256(topics=["*"], write=["other"])
    assert await status_of(secured, "POST", "/api/todos", reader, json={"title": "no"}) == 403
    assert await status_of(secured, "POST", "/api/todos", other_writer, json={"title": "no"}) == 403
    assert await status_of(secured, "POST", "/api/todos", writer, json={"title": "yes"}) == 201
    assert await status_of(secured, "POST", "/api/todos", todos_writer, json={"title": "also"}) == 201
    assert await status_of(secured, "DELETE", "/api/todos/1", reader) == 403
    assert sorted(r[0] for r in await secured.sql("SELECT title FROM todos")) == ["also", "yes"]


async def test_token_from_query_and_cookie_for_eventsource(secured: RunningGateway) -> None:
    token = hs256(topics=["todos"])
    by_query = await secured.subscribe("todos", access_token=token)
    by_cookie = await secured.subscribe("todos", headers={"Cookie": f"access_token={token}"})
    await secured.sql("INSERT INTO todos (title) VALUES ('x')")
    for client in (by_query, by_cookie):
        assert (await client.next()).json["row"]["title"] == "x"
        await client.close()


async def test_stream_ends_when_its_token_expires(secured: RunningGateway) -> None:
    token = jwt.encode({"exp": time.time() + 1.5, "topics": ["todos"]}, SECRET, algorithm="HS256")
    client = await secured.subscribe("todos", access_token=token)
    async with asyncio.timeout(5):
        await client.ended.wait()
    assert any("token expired" in comment for comment in client.comments)


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_a_public_key_pem_verifies_the_algorithms_of_its_key_type_only(database: str, alg: str) -> None:
    signer = SigningKey.new("any", alg)
    public_pem = (
        signer.private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    other_type = SigningKey.new("any", "EdDSA" if alg != "EdDSA" else "ES256")
    async with start_gateway(database, jwt_public_key=public_pem) as gw:
        forged = hmac_signed({"exp": time.time() + 60, "topics": ["todos"]}, public_pem.encode())
        unsigned = jwt.encode({"exp": time.time() + 60, "topics": ["todos"]}, None, algorithm="none")
        assert await status_of(gw, "GET", "/api/todos", signer.token()) == 200
        assert await status_of(gw, "GET", "/api/todos", signer.token(kid=None)) == 200
        client = await gw.subscribe("todos", access_token=signer.token())
        await gw.sql("INSERT INTO todos (title) VALUES ('signed')")
        assert (await client.next()).json["row"]["title"] == "signed"
        await client.close()
        assert await status_of(gw, "GET", "/api/todos", forged) == 401  # no algorithm confusion
        assert await status_of(gw, "GET", "/api/todos", unsigned) == 401
        assert await status_of(gw, "GET", "/api/todos", other_type.token()) == 401
        assert await status_of(gw, "GET", "/api/todos", SigningKey.new("any", alg).token()) == 401  # another key


async def test_cors_allows_only_configured_origins(database: str) -> None:
    async with start_gateway(database, cors_origins=("https://app.example.com",)) as gw:
        preflight = {
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        async with gw.http.options(gw.url + "/api/todos", headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
            assert resp.headers["Access-Control-Allow-Credentials"] == "true"
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        async with gw.http.options(gw.url + "/api/todos", headers={**preflight, "Origin": "https://evil.test"}) as resp:
            assert resp.status == 403
        client = await gw.subscribe("todos", headers={"Origin": "https://app.example.com"})
        assert client.response_headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert client.response_headers["Access-Control-Allow-Credentials"] == "true"
        await client.close()
        async with gw.http.post(
            gw.url + "/api/todos", json={"title": "x"}, headers={"Origin": "https://app.example.com"}
        ) as resp:
            assert resp.status == 201 and "Location" in resp.headers["Access-Control-Expose-Headers"]
        async with gw.http.get(gw.url + "/api/todos", headers={"Origin": "https://evil.test"}) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers


async def test_exp_that_is_a_numeric_string_or_a_boolean_is_a_401(secured: RunningGateway) -> None:
    """PyJWT takes int(exp), so "1767225600" passed it; the stream then never ended."""
    for exp in (str(int(time.time()) + 60), True):
        token = jwt.encode({"exp": exp, "topics": ["*"], "write": True}, SECRET, algorithm="HS256")
        assert await status_of(secured, "GET", "/events?topic=todos", token) == 401
        assert await status_of(secured, "GET", "/api/todos", token) == 401
        assert await status_of(secured, "POST", "/api/todos", token, json={"title": "x"}) == 401
    assert secured.hub.statistics().subscribers == 0


async def test_exp_too_large_for_a_float_is_a_far_future_not_a_500(secured: RunningGateway) -> None:
    token = jwt.encode({"exp": 10**400, "topics": ["todos"], "write": True}, SECRET, algorithm="HS256")
    assert await status_of(secured, "GET", "/api/todos", token) == 200
    assert await status_of(secured, "POST", "/api/todos", token, json={"title": "far"}) == 201
    await secured.caught_up()
    client = await secured.subscribe("todos", access_token=token)
    await secured.sql("INSERT INTO todos (title) VALUES ('then')")
    assert (await client.next()).json["row"]["title"] == "then"
    await client.close()


async def test_stream_with_an_integer_exp_ends_at_its_expiry(secured: RunningGateway) -> None:
    token = jwt.encode({"exp": int(time.time()) + 2, "topics": ["todos"]}, SECRET, algorithm="HS256")
    client = await secured.subscribe("todos", access_token=token)
    async with asyncio.timeout(5):
        await client.ended.wait()
    assert any("token expired" in comment for comment in client.comments)


@pytest.mark.parametrize("where", ["Authorization: Bearer ", "Cookie: access_token="])
async def test_a_token_with_a_raw_non_ascii_byte_is_a_401(secured: RunningGateway, where: str) -> None:
    """aiohttp hands the byte on as a surrogate escape, and PyJWT's encode of it was a 500."""
    for path in ("/api/todos", "/events?topic=todos"):
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{where}".encode()
        status, headers, body = await raw(secured, request + b"\xff\xfe.e30.sig\r\n\r\n")
        assert status == 401 and headers["content-type"].startswith("application/json"), body
        assert error_of(json.loads(body))["code"] == "PGRST301"
