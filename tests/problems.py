"""The error body every test reads: PostgREST's shape, checked wherever a test looks at one."""

from __future__ import annotations

from typing import Any

import aiohttp

ERROR_KEYS = {"code", "message", "details", "hint"}


def error_of(body: object) -> dict[str, Any]:
    """``body`` as an error: exactly PostgREST's four keys, code and message strings, the others text or null."""
    assert isinstance(body, dict) and set(body) == ERROR_KEYS, f"not PostgREST's error shape: {body!r}"
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str) and body["message"], body
    assert all(body[k] is None or isinstance(body[k], str) for k in ("details", "hint")), body
    return body


async def error_body(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """The response's error, after checking it is JSON in PostgREST's shape."""
    assert resp.content_type == "application/json", (resp.status, resp.content_type)
    return error_of(await resp.json())
