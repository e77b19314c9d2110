"""Every error code the gateway answers with: its HTTP status, and when it is sent.

The one place a code is defined. A raise site names a member
(``ApiError(Code.BAD_JSON, "...")``), never a string or a status of its own; the
README's error table lists the same rows (tests/test_readme.py holds them equal), and
:func:`gateway.errors.error_response` shapes them as PostgREST does.

The codes are PostgREST's where PostgREST has one (its src/PostgREST/Error.hs and
docs/references/errors.rst): ``PGRST...`` for what the gateway finds wrong with a
request, the SQLSTATE for what Postgres refused. A database error's body carries
Postgres' own SQLSTATE (``22003`` as well as ``22P02``); the member's code is the
typical one, and its status is the one PostgREST gives those SQLSTATEs. Errors
PostgREST has no code for (topics, cursors, stream limits, HTTP framing) keep
readable lower-case codes of ours. Several members may share a code: the member
says which raise site it was, the code what a client can switch on.
"""

from __future__ import annotations

import re
from enum import Enum, unique

_SQLSTATE = re.compile(r"[0-9A-Z]{5}")


@unique
class Code(Enum):
    """``code`` is what the body says; ``status`` is None where the status is the HTTP error's own."""

    code: str
    status: int | None
    when: str

    # The request is malformed.
    BAD_REQUEST = (
        "bad_request",
        400,
        "aiohttp could not read the request (malformed HTTP) or its body (not in its encoding)",
    )
    BAD_JSON = (
        "PGRST102",
        400,
        "the body is not JSON (no `NaN`, no key twice), not an object, or nests past 256 levels",
    )
    INVALID_BODY = ("PGRST102", 400, "a bulk body is not an array of objects, or its objects name different columns")
    EMPTY_UPDATE = ("PGRST102", 400, "a PATCH body names no column")
    UNSUPPORTED_MEDIA_TYPE = (
        "PGRST102",
        415,
        "a POST or PATCH body without `Content-Type: application/json` (or `+json`); PostgREST answers 400",
    )
    PARSE_ERROR = (
        "PGRST100",
        400,
        "the query string is not PostgREST's grammar (a bare `col=value`, a bad operator, select or order)",
    )
    BAD_PARAMETER = ("PGRST100", 400, "`limit`, `offset` or `order` is not of its form")
    INVALID_PREFERENCES = (
        "PGRST122",
        400,
        "`Prefer: handling=strict` and another preference the gateway does not know",
    )
    UNKNOWN_COLUMN = (
        "PGRST204",
        400,
        "a body key, `columns` or `on_conflict` names a column the table does not have",
    )
    UNDEFINED_COLUMN = (
        "42703",
        400,
        "a filter, `select` or `order` (on `/api` or a stream) names a column the table does not have, "
        "as Postgres would say",
    )
    UNFILTERED_WRITE = (
        "unfiltered_write",
        400,
        "a PATCH or DELETE on `/api/<table>` without a filter (it would change every row)",
    )
    MISSING_TOPIC = ("missing_topic", 400, "`/events` without `?topic=`")
    TOO_MANY_TOPICS = ("too_many_topics", 400, "more than 32 topics on one stream")
    BAD_TOPIC = ("bad_topic", 400, "a topic is not 1 to 200 characters without spaces or control characters")
    BAD_PUBLISH = (
        "PGRST102",
        400,
        '`POST /events/publish` with a body other than `{"topic": "...", "data": ...}` (`data` may be left out)',
    )
    TABLE_TOPIC = (
        "table_topic",
        400,
        "`POST /events/publish` to an exposed table's topic (`todos`, `todos/42`): only its triggers write those",
    )
    BAD_CURSOR = ("bad_cursor", 400, "`Last-Event-ID` or `?lastEventId=` is not an event id")
    UNSUPPORTED_FILTER = (
        "unsupported_filter",
        400,
        "a filter on `/events/<table>` that the hub cannot evaluate as Postgres does (an operator, a type or "
        "a collation it refuses), or an operator the column's type does not have",
    )
    # What Postgres refused: the body's code is its SQLSTATE, its DETAIL and HINT are `details` and `hint`.
    BAD_VALUE = (
        "22P02",
        400,
        "Postgres refused a value for its column's type (SQLSTATE 22*, 42804, 42601; 54*, a value too big, "
        "where PostgREST answers 500), or the JSON value cannot be one (an object for an integer)",
    )
    READ_ONLY_COLUMN = ("428C9", 400, "the body sets a column the database generates")
    FEATURE_NOT_SUPPORTED = ("0A000", 400, "the server cannot handle the value (`xml` on a Postgres without libxml)")
    INVALID_CONFLICT_TARGET = ("42P10", 400, "`on_conflict=` names columns without a unique constraint on them")
    NOT_NULL_VIOLATION = ("23502", 400, "a required column is missing or null")
    CHECK_VIOLATION = ("23514", 400, "a check constraint refused the row")
    EXCLUSION_VIOLATION = ("23P01", 400, "an exclusion constraint refused the row")
    CONSTRAINT_VIOLATION = ("23000", 400, "another integrity constraint refused the row (SQLSTATE 23*)")
    FOREIGN_KEY_VIOLATION = ("23503", 409, "a foreign key refused the row")
    UNIQUE_VIOLATION = ("23505", 409, "a unique constraint refused the row")
    UNDEFINED_FUNCTION = (
        "42883",
        404,
        "no operator for the column's type and the value (`like` on an integer): PostgREST's 404",
    )
    AMBIGUOUS_OPERATOR = (
        "42725",
        400,
        "the operator has several meanings for the column's type and a value of no type (`cd.` on a text column)",
    )
    SERIALIZATION_FAILURE = ("40001", 500, "a concurrent transaction got there first; retry (PostgREST's 500 for 40*)")
    DEADLOCK_DETECTED = ("40P01", 500, "Postgres broke a deadlock by ending this statement; retry")
    # Auth.
    TOKEN_REQUIRED = ("PGRST302", 401, "auth is on and the request carries no token")
    UNAUTHORIZED = (
        "PGRST301",
        401,
        "auth is on and the token cannot be decoded or its signature is wrong",
    )
    INVALID_CLAIMS = (
        "PGRST303",
        401,
        "the token has expired, is not valid yet, is for another audience, or a claim is malformed",
    )
    UNKNOWN_ROLE = ("22023", 401, "the token's `role` claim names no database role")
    FORBIDDEN = (
        "forbidden",
        403,
        "the token does not grant that topic, write, publish or the inspector; a CORS preflight from another origin",
    )
    INSUFFICIENT_PRIVILEGE = (
        "42501",
        403,
        "the database refused the role (a grant, a row-level security policy; also 28*, 0L*, 0P*)",
    )
    KEYS_UNAVAILABLE = (
        "keys_unavailable",
        503,
        "`GATEWAY_JWT_JWKS_URL` could not be fetched yet (or not since the token's `kid` appeared), so the token "
        "cannot be checked; `Retry-After` says when the next fetch is",
    )
    # The path names nothing, or not with that method or representation.
    INVALID_PATH = ("PGRST125", 404, "no such endpoint")
    UNKNOWN_TABLE = ("PGRST205", 404, "the table is not exposed")
    NOT_FOUND = ("not_found", 404, "`/api/<table>/<pk>` and no row has that key")
    NO_SINGLE_KEY = ("no_single_key", 404, "`/api/<table>/<pk>` on a table without a single-column primary key")
    UNKNOWN_FUNCTION = ("PGRST202", 404, "`/api/rpc/<function>` names no function of `GATEWAY_RPC`")
    BAD_ARGUMENTS = (
        "PGRST202",
        404,
        "an `/api/rpc` call names an argument the function does not have, or leaves out one without a default",
    )
    AMBIGUOUS_FUNCTION = ("PGRST203", 300, "more than one overload of the function takes the arguments named")
    METHOD_NOT_ALLOWED = ("PGRST117", 405, "wrong method for the path")
    NOT_ACCEPTABLE = ("PGRST107", 406, "the `Accept` header names no media type the gateway can answer with")
    NOT_SINGULAR = (
        "PGRST116",
        406,
        "`Accept: application/vnd.pgrst.object+json` and the result is not exactly one row",
    )
    INVALID_RANGE = (
        "PGRST103",
        416,
        "`Range` or `limit`/`offset` asks for rows outside what there is, or is malformed",
    )
    # The gateway's own limits.
    REQUEST_TIMEOUT = (
        "request_timeout",
        408,
        "the body did not arrive within `GATEWAY_REQUEST_BODY_TIMEOUT`; the connection is closed",
    )
    BODY_TOO_LARGE = ("body_too_large", 413, "the body is over `GATEWAY_MAX_BODY`")
    PAYLOAD_TOO_LARGE = (
        "payload_too_large",
        413,
        "a published event would be larger than `GATEWAY_SUBSCRIBER_BUFFER`, so no resuming subscriber could take it",
    )
    EXPECTATION_FAILED = ("expectation_failed", 417, "an `Expect` header other than `100-continue`")
    TOO_MANY_STREAMS = (
        "too_many_streams",
        429,
        "this client address holds `GATEWAY_MAX_SUBSCRIBERS_PER_CLIENT` streams already",
    )
    TOO_MANY_SUBSCRIBERS = (
        "too_many_subscribers",
        503,
        "the gateway (every worker) holds `GATEWAY_MAX_SUBSCRIBERS` streams",
    )
    # The server.
    INTERNAL = ("internal", 500, "a bug: the gateway logged it with its traceback")
    DATABASE_UNAVAILABLE = (
        "PGRST000",
        503,
        "the database cannot be reached; or Postgres says it cannot serve now (its SQLSTATE: 08*, 53*, 57P01; "
        "57P02 and 57P03, where PostgREST answers 500)",
    )
    DATABASE_TIMEOUT = (
        "PGRST003",
        504,
        "the database did not answer in time (no pool connection came free, or a query hung)",
    )
    ERROR = ("error", None, "any other HTTP error aiohttp raises while routing or reading the request")

    def __init__(self, code: str, status: int | None, when: str) -> None:
        self.code = code
        self.status = status
        self.when = when

    @property
    def source(self) -> str:
        """Whose code it is: ``PostgREST``, ``SQLSTATE`` (Postgres', as PostgREST forwards it) or ``ours``."""
        if self.code.startswith("PGRST"):
            return "PostgREST"
        if _SQLSTATE.fullmatch(self.code):
            return "SQLSTATE"
        return "ours"
