"""Every error code the gateway answers with: its HTTP status, and when it is sent.

The one place a code is defined. A raise site names a member
(``ApiError(Code.BAD_JSON, "...")``), never a string or a status of its own; the
README's error table lists the same rows (tests/test_readme.py holds them equal); and
a move to another error shape (PostgREST's ``PGRST...`` codes) changes this table and
:func:`gateway.errors.error_response`, nothing else.
"""

from __future__ import annotations

from enum import Enum, unique


@unique
class Code(Enum):
    """``code`` is the member's name in lower case; ``status`` is None where the status is the HTTP error's own."""

    status: int | None
    when: str

    # The request is malformed.
    BAD_REQUEST = (400, "aiohttp could not read the request or its body (malformed HTTP, a body not in its encoding)")
    BAD_JSON = (400, "the body is not JSON (no `NaN`, no key twice), not an object, or nests past 256 levels")
    UNKNOWN_COLUMN = (400, "a body key, filter or `order` names a column the table does not have")
    BAD_VALUE = (400, "Postgres refused a value for its column's type (invalid, out of range, too long)")
    READ_ONLY_COLUMN = (400, "the body sets a column the database generates")
    BAD_PARAMETER = (400, "`limit`, `offset` or `order` is not of its form")
    FEATURE_NOT_SUPPORTED = (400, "the server cannot handle the value (`xml` on a Postgres without libxml)")
    EMPTY_UPDATE = (400, "a PATCH body names no column")
    # The PostgREST grammar (issue 11): the errors helper gives each its PostgREST code.
    PARSE_ERROR = (
        400,
        "the query string is not PostgREST's grammar (a bare `col=value`, a bad operator, select or order)",
    )
    INVALID_BODY = (400, "a bulk body is not an array of objects, or its objects name different columns")
    UNFILTERED_WRITE = (400, "a PATCH or DELETE on `/api/<table>` without a filter (it would change every row)")
    INVALID_RANGE = (416, "`Range` or `limit`/`offset` asks for rows outside what there is, or is malformed")
    NOT_SINGULAR = (406, "`Accept: application/vnd.pgrst.object+json` and the result is not exactly one row")
    NOT_ACCEPTABLE = (406, "the `Accept` header names no media type the gateway can answer with")
    MISSING_TOPIC = (400, "`/events` without `?topic=`")
    TOO_MANY_TOPICS = (400, "more than 32 topics on one stream")
    BAD_TOPIC = (400, "a topic is not 1 to 200 characters without spaces or control characters")
    BAD_CURSOR = (400, "`Last-Event-ID` or `?lastEventId=` is not an event id")
    BAD_ARGUMENTS = (
        400,
        "an `/api/rpc` call names an argument the function does not have, or leaves out one without a default",
    )
    # Auth.
    UNAUTHORIZED = (401, "auth is on and the token is missing, invalid or expired")
    FORBIDDEN = (403, "the token does not grant that topic or write; a CORS preflight from another origin")
    UNKNOWN_ROLE = (401, "the token's `role` claim names no database role")
    INSUFFICIENT_PRIVILEGE = (
        403,
        "the database refused the request's role (SQLSTATE 42501): no GRANT on the table or function, "
        "a row-level security policy, or a `role` the gateway's database user may not take",
    )
    # The path names nothing.
    NOT_FOUND = (404, "no such endpoint, or no row with that key")
    UNKNOWN_TABLE = (404, "the table is not exposed")
    NO_SINGLE_KEY = (404, "`/api/<table>/<pk>` on a table without a single-column primary key")
    UNKNOWN_FUNCTION = (404, "`/api/rpc/<function>` names no function of `GATEWAY_RPC` (PostgREST's PGRST202)")
    AMBIGUOUS_FUNCTION = (
        300,
        "more than one overload of the function takes the arguments named (PostgREST's PGRST203)",
    )
    METHOD_NOT_ALLOWED = (405, "wrong method for the path")
    REQUEST_TIMEOUT = (408, "the body did not arrive within `GATEWAY_REQUEST_BODY_TIMEOUT`; the connection is closed")
    # Conflicts with another row or transaction.
    UNIQUE_VIOLATION = (409, "a unique constraint refused the row")
    EXCLUSION_VIOLATION = (409, "an exclusion constraint refused the row")
    SERIALIZATION_FAILURE = (409, "a concurrent transaction got there first; retry")
    DEADLOCK_DETECTED = (409, "Postgres broke a deadlock by ending this statement; retry")
    BODY_TOO_LARGE = (413, "the body is over `GATEWAY_MAX_BODY`")
    UNSUPPORTED_MEDIA_TYPE = (415, "a POST or PATCH body without `Content-Type: application/json` (or `+json`)")
    EXPECTATION_FAILED = (417, "an `Expect` header other than `100-continue`")
    # A constraint refused the row.
    CONSTRAINT_VIOLATION = (422, "a constraint refused the row")
    FOREIGN_KEY_VIOLATION = (422, "a foreign key refused the row")
    NOT_NULL_VIOLATION = (422, "a required column is missing or null")
    CHECK_VIOLATION = (422, "a check constraint refused the row")
    TOO_MANY_STREAMS = (429, "this client address holds `GATEWAY_MAX_SUBSCRIBERS_PER_CLIENT` streams already")
    INTERNAL = (500, "a bug: the gateway logged it with its traceback")
    DATABASE_UNAVAILABLE = (503, "the database cannot be reached or did not answer in time")
    TOO_MANY_SUBSCRIBERS = (503, "the process holds `GATEWAY_MAX_SUBSCRIBERS` streams")
    ERROR = (None, "any other HTTP error aiohttp raises while routing or reading the request")

    def __init__(self, status: int | None, when: str) -> None:
        self.status = status
        self.when = when

    @property
    def code(self) -> str:
        return self.name.lower()
