"""CORS for /events and /api: which browser origins may call the gateway.

An ``EventSource`` with ``withCredentials`` (cookies) needs the exact origin echoed
back with ``Access-Control-Allow-Credentials: true``; ``*`` only serves requests
without credentials. Headers are added in ``on_response_prepare``, so they reach
streaming responses too, whose headers go out before the handler returns.
"""

from __future__ import annotations

from aiohttp import web

from .codes import Code
from .errors import error_response
from .state import CORS

_PATHS = ("/events", "/api")
# PostgREST clients in a browser send Prefer, Range and Accept (postgrest-js also its
# x-client-info, supabase-js an apikey), and read Content-Range and Preference-Applied.
_ALLOW_HEADERS = (
    "Authorization, Content-Type, Last-Event-ID, Cache-Control, Accept, Prefer, Range, Range-Unit, "
    "Accept-Profile, Content-Profile, apikey, x-client-info"
)
_EXPOSE_HEADERS = "Location, Content-Range, Range-Unit, Preference-Applied"
_ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


class CorsPolicy:
    def __init__(self, origins: tuple[str, ...]) -> None:
        self._any = "*" in origins
        self._origins = frozenset(o.rstrip("/") for o in origins if o != "*")
        self.enabled = bool(origins)

    def varies(self, request: web.Request) -> bool:
        """Whether the answer to ``request`` depends on its Origin (then say so: Vary)."""
        return self.enabled and request.path.startswith(_PATHS)

    def allowed_origin(self, request: web.Request) -> str | None:
        """The value for Access-Control-Allow-Origin, or None to send no CORS headers."""
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(_PATHS):
            return None
        if origin in self._origins:
            return origin
        return "*" if self._any else None

    def headers(self, origin: str) -> dict[str, str]:
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if origin != "*":
            headers["Access-Control-Allow-Credentials"] = "true"
        headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS
        return headers


def preflight(request: web.Request) -> web.StreamResponse | None:
    """Guard: answer a CORS preflight request; None lets any other request through."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        policy = request.app[CORS]
        origin = policy.allowed_origin(request)
        if origin is None:
            origin_name = request.headers.get("Origin", "")
            return error_response(Code.FORBIDDEN, f"origin {origin_name!r} is not in GATEWAY_CORS_ORIGINS")
        headers = {
            **policy.headers(origin),
            "Access-Control-Allow-Methods": _ALLOW_METHODS,
            "Access-Control-Allow-Headers": _ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
        }
        return web.Response(status=204, headers=headers)
    return None


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """CORS headers for an allowed origin; ``Vary: Origin`` on every answer that depends on it.

    An answer without CORS headers (no Origin, or one not allowed) varies by Origin too:
    a shared cache that kept it without ``Vary`` would serve it to an allowed origin,
    whose browser would then refuse it.
    """
    policy = request.app[CORS]
    origin = policy.allowed_origin(request)
    if origin is not None:
        response.headers.update(policy.headers(origin))
    elif policy.varies(request) and "Vary" not in response.headers:
        response.headers["Vary"] = "Origin"
