"""Who may subscribe to what and who may write: JWT bearer tokens.

Off unless GATEWAY_JWT_SECRET (HS256), GATEWAY_JWT_PUBLIC_KEY (a PEM: RS256,
ES256 or EdDSA by its key type) or GATEWAY_JWT_JWKS_URL (an identity provider's key
set, :mod:`gateway.jwks`) is set. With one set, ``/events``, ``/api`` and ``/inspect`` refuse a request
without a valid, unexpired token (401) and refuse a topic, a write, a publish or the inspector the token
does not grant (403).

Claims the gateway reads::

    {"sub": "user-1", "exp": 1767225600,
     "topics": ["todos", "chat/*"],   # topic patterns: only * is a wildcard (any text, "/" included)
     "write": true,                    # or a list of tables: ["todos"]
     "publish": ["chat/*"],            # topic patterns POST /events/publish may publish to
     "inspect": true,                  # may open /inspect (it lists every topic and can tail any)
     "role": "app_user"}               # optional: the database role of its /api requests

With a ``role`` claim, each /api request runs as that database role (``SET LOCAL
ROLE`` inside its transaction) and every request of a token sees its claims as
``current_setting('request.jwt.claims', true)``, as in PostgREST, so the
database's own privileges and row-level security policies apply
(:mod:`gateway.request_role`). Without the claim, the gateway's own database role.

A topic pattern that grants a table topic (``todos``) grants its row topics too
(``todos/42``): a table subscriber sees every row's changes anyway. Reading
``/api/<table>`` needs the table topic; ``/api/<table>/<pk>`` the row topic.

The token comes from ``Authorization: Bearer``, the ``access_token`` query
parameter, or the ``access_token`` cookie (an EventSource cannot set headers). It
is never logged: the access log has no query strings or header values, and
messages never echo it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web

from .codes import Code
from .config import ONE_KEY, ConfigError
from .errors import CHALLENGE, ApiError, Deferred
from .jwks import KeySet
from .keys import Keyring, Refused, UnknownKey, VerifyKey, choose, keyring_from_pem, keyring_from_secret, read_header
from .state import AUTHENTICATOR, GRANT

TOKEN_NAME = "access_token"
_PROTECTED_PREFIXES = ("/events", "/api/", "/api", "/inspect")
# The OpenAPI document (gateway.openapi) needs no token, like PostgREST's root.
_OPEN_PATHS = frozenset({"/api", "/api/"})
# The last second of the year 9999: a later (or astronomically large) exp is treated
# as this, so a timer can be set for it and a float can hold it.
LATEST_EXPIRY = 253402300799


def topic_pattern(pattern: str) -> tuple[str, ...]:
    """A grant pattern as its literal pieces between ``*``s (see :func:`topic_matches`)."""
    return tuple(pattern.split("*"))


def topic_matches(pieces: tuple[str, ...], topic: str) -> bool:
    """Whether ``topic`` matches a pattern split by :func:`topic_pattern`: ``*`` matches any
    text (``/`` included), nothing else is special.

    Not ``fnmatch``: there ``?`` and ``[...]`` are wildcards too, so ``chat/room?``
    would grant ``chat/roomZ``; topic names may contain those characters literally.
    Not a regex either: ``.*`` per star backtracks, so a grant such as ``*a*a*a*a*a*b``
    against a 200-character topic of ``a``s took minutes, with the event loop (every
    stream of the process) stopped meanwhile. Taking each middle piece at its first
    place after the previous one is enough when ``*`` is the only wildcard, and is
    linear in the topic's length for each piece.
    """
    first, last = pieces[0], pieces[-1]
    if len(pieces) == 1:
        return topic == first
    if len(topic) < len(first) + len(last) or not topic.startswith(first) or not topic.endswith(last):
        return False
    start, end = len(first), len(topic) - len(last)
    for piece in pieces[1:-1]:
        found = topic.find(piece, start, end)
        if found < 0:
            return False
        start = found + len(piece)
    return True


@dataclass(frozen=True)
class Grant:
    """What one request may do."""

    topics: tuple[str, ...]
    write: bool | frozenset[str]
    subject: str | None = None
    expires_at: float | None = None
    role: str | None = None  # the database role of its /api requests; None: the gateway's own
    publish: tuple[str, ...] = ()  # topic patterns it may publish to (gateway.publish)
    inspect: bool = False  # may open the inspector (gateway.inspector)
    claims: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)  # None: auth off
    _patterns: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    _publish_patterns: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_patterns", tuple(topic_pattern(p) for p in self.topics))
        object.__setattr__(self, "_publish_patterns", tuple(topic_pattern(p) for p in self.publish))

    def may_read(self, topic: str) -> bool:
        table, slash, _ = topic.partition("/")
        for pattern in self._patterns:
            if topic_matches(pattern, topic) or (slash and topic_matches(pattern, table)):
                return True
        return False

    def may_write(self, table: str) -> bool:
        if isinstance(self.write, bool):
            return self.write
        return table in self.write

    def may_publish(self, topic: str) -> bool:
        """Whether a ``publish`` pattern matches the topic itself (a custom topic has no rows)."""
        return any(topic_matches(pattern, topic) for pattern in self._publish_patterns)

    def require_publish(self, topic: str) -> None:
        if not self.may_publish(topic):
            raise ApiError(
                Code.FORBIDDEN,
                f"the token does not grant publishing to topic {topic!r}",
                hint="its 'publish' claim lists the topic patterns it may publish to, e.g. [\"chat/*\"]",
            )

    def require_inspect(self) -> None:
        if not self.inspect:
            raise ApiError(
                Code.FORBIDDEN,
                "the token does not grant the inspector",
                hint="the inspector lists every topic and can tail any: it needs a token with the claim inspect: true",
            )

    def require_read(self, topic: str) -> None:
        if not self.may_read(topic):
            raise ApiError(Code.FORBIDDEN, f"the token does not grant topic {topic!r}")

    def require_write(self, table: str) -> None:
        if not self.may_write(table):
            raise ApiError(Code.FORBIDDEN, f"the token does not grant writes to {table!r}")


# Auth off: anyone may read, write and publish anything, and open the inspector where it is on.
EVERYTHING = Grant(topics=("*",), write=True, publish=("*",), inspect=True)


class Authenticator:
    """Verifies tokens with the configured key or key set; ``enabled`` is False without one.

    Which key and algorithm verify a token is :func:`gateway.keys.choose`'s decision;
    with a key set, :class:`gateway.jwks.KeySet` fetches the keys (its task belongs to
    the app: ``key_set.run()``).
    """

    def __init__(self, secret: str = "", public_key: str = "", audience: str = "", jwks_url: str = "") -> None:
        if sum(map(bool, (secret, public_key, jwks_url))) > 1:
            raise ConfigError(ONE_KEY)
        self._keyring: Keyring | None = None
        self.key_set = KeySet(jwks_url) if jwks_url else None
        if secret:
            self._keyring = keyring_from_secret(secret)
        elif public_key:
            try:  # fail at start, not on the first request, if the PEM is unusable
                self._keyring = keyring_from_pem(public_key)
            except ValueError as exc:
                raise ConfigError(f"GATEWAY_JWT_PUBLIC_KEY: {exc}") from None
        self._audience = audience or None
        self.enabled = self._keyring is not None or self.key_set is not None

    def grant(self, request: web.Request) -> Grant:
        """The request's grant; raises a 401 ApiError when auth is on and the token is bad,
        a 503 when its key set could not be fetched, Deferred while it is being fetched."""
        if not self.enabled:
            return EVERYTHING
        token = _token(request)
        if token is None:
            raise _unauthorized(
                "a token is required",
                Code.TOKEN_REQUIRED,
                hint=f"send it as Authorization: Bearer <jwt>, ?{TOKEN_NAME}= or a cookie {TOKEN_NAME}",
            )
        if not token.isascii():  # a raw byte in a header or cookie; PyJWT would fail to encode it (a 500)
            raise _unauthorized("the token is not valid: a JWT is ASCII (base64url parts joined by dots)")
        try:
            key, algorithm = self._key_for(jwt.get_unverified_header(token))
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self._audience,
                options={"require": ["exp"], "verify_aud": self._audience is not None},
            )
        except Refused as exc:
            raise _unauthorized(f"the token is not valid: {exc}") from None
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired", Code.INVALID_CLAIMS) from None
        except _CLAIM_ERRORS as exc:
            raise _unauthorized(f"the token is not valid: {exc}", Code.INVALID_CLAIMS) from None
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"the token is not valid: {exc}") from None
        return _grant_from(claims)

    def _key_for(self, header: dict[str, Any]) -> tuple[VerifyKey, str]:
        if self.key_set is None:
            assert self._keyring is not None
            return choose(self._keyring, header)
        keys = self.key_set.keyring
        try:
            if keys is None:
                raise UnknownKey(read_header(header)[1])  # a header no key could verify is a 401, keys or not
            return choose(keys, header)
        except UnknownKey as missing:
            refused = self._missing(missing.kid)
            fetch = self.key_set.refetch()
            if fetch is None:
                raise refused from None
            raise Deferred(fetch, refused) from None

    def _missing(self, kid: str | None) -> ApiError:
        """The answer to a token whose key is not there, once no fetch may bring it."""
        assert self.key_set is not None
        if self.key_set.keyring is None or self.key_set.failing:
            what = (
                "no key set could be fetched yet" if self.key_set.keyring is None else "the key set cannot be fetched"
            )
            return ApiError(
                Code.KEYS_UNAVAILABLE,
                f"the token cannot be checked: {what} from GATEWAY_JWT_JWKS_URL; try again shortly",
                headers={"Retry-After": str(self.key_set.retry_after())},
            )
        return _unauthorized(
            f"the token is not valid: the issuer's key set has no key {kid!r}",
            hint=f"the keys it has: {', '.join(map(repr, self.key_set.keyring.kids)) or 'none with a kid'}",
        )


def _grant_from(claims: dict[str, Any]) -> Grant:
    topics = claims.get("topics", [])
    write = claims.get("write", False)
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise _unauthorized("the token's 'topics' claim must be a list of topic patterns", Code.INVALID_CLAIMS)
    if isinstance(write, list) and all(isinstance(t, str) for t in write):
        write_grant: bool | frozenset[str] = frozenset(write)
    elif isinstance(write, bool):
        write_grant = write
    else:
        raise _unauthorized("the token's 'write' claim must be true, false or a list of tables", Code.INVALID_CLAIMS)
    role = claims.get("role")
    if role is not None and (not isinstance(role, str) or not role):
        raise _unauthorized("the token's 'role' claim must be the name of a database role", Code.INVALID_CLAIMS)
    publish = claims.get("publish", [])
    if not isinstance(publish, list) or not all(isinstance(t, str) for t in publish):
        raise _unauthorized("the token's 'publish' claim must be a list of topic patterns", Code.INVALID_CLAIMS)
    inspect = claims.get("inspect", False)
    if not isinstance(inspect, bool):
        raise _unauthorized("the token's 'inspect' claim must be true or false", Code.INVALID_CLAIMS)
    return Grant(
        topics=tuple(topics),
        write=write_grant,
        subject=claims.get("sub"),
        expires_at=_expiry(claims),
        role=role,
        publish=tuple(publish),
        inspect=inspect,
        claims=claims,
    )


def _expiry(claims: dict[str, Any]) -> float:
    """The token's ``exp`` as seconds since the epoch, capped at LATEST_EXPIRY.

    PyJWT has checked that ``int(exp)`` is not in the past, which a numeric string
    (``"1767225600"``) and ``true`` also pass; RFC 7519 makes exp a JSON number, and a
    stream's end timer needs one, so anything else is refused here. A huge integer
    (``10**400``) is a valid far future, but no float holds it: it is capped.
    """
    exp = claims.get("exp")
    if (
        isinstance(exp, bool)
        or not isinstance(exp, (int, float))
        or (isinstance(exp, float) and not math.isfinite(exp))
    ):
        raise _unauthorized(
            "the token's 'exp' claim must be a number: seconds since 1970-01-01 UTC", Code.INVALID_CLAIMS
        )
    return float(min(exp, LATEST_EXPIRY))


def _token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get(TOKEN_NAME) or request.cookies.get(TOKEN_NAME) or None


# A token that decodes and is signed right but whose claims do not hold: PostgREST's PGRST303.
_CLAIM_ERRORS = (
    jwt.ImmatureSignatureError,
    jwt.InvalidAudienceError,
    jwt.InvalidIssuedAtError,
    jwt.MissingRequiredClaimError,
)


def _unauthorized(message: str, code: Code = Code.UNAUTHORIZED, hint: str | None = None) -> ApiError:
    return ApiError(code, message, headers={"WWW-Authenticate": CHALLENGE}, hint=hint)


def authenticate(request: web.Request) -> None:
    """Guard: attach the request's Grant (or refuse it) before /events and /api handlers run."""
    if request.method != "OPTIONS" and request.path.startswith(_PROTECTED_PREFIXES) and request.path not in _OPEN_PATHS:
        grant = request.app[AUTHENTICATOR].grant(request)
        if grant is not EVERYTHING:  # grant_of's default: no request state dict (it lives as long as a stream)
            request[GRANT] = grant


def grant_of(request: web.Request) -> Grant:
    grant: Grant = request.get(GRANT, EVERYTHING)
    return grant
