"""What every /api/<table> handler reads from its request: the table, the query's tree, the key of /<pk>."""

from __future__ import annotations

from aiohttp import web

from .catalog import Table
from .codes import Code
from .errors import ApiError
from .grammar import Condition, Field, GrammarError, Operator, Query, parse_query
from .state import TABLES

TOKEN_PARAM = "access_token"  # read by gateway.auth, never a filter


def table_of(request: web.Request) -> Table:
    tables: dict[str, Table] = request.app[TABLES]
    name = request.match_info["table"]
    table = tables.get(name)
    if table is None:
        exposed = ", ".join(sorted(tables)) or "none"
        raise ApiError(Code.UNKNOWN_TABLE, f"table {name!r} is not exposed; exposed: {exposed}")
    return table


def query_of(request: web.Request) -> Query:
    """The query string as the grammar's tree; a PGRST100 with PostgREST's message and a hint."""
    pairs = [(k, v) for k, v in request.query.items() if k != TOKEN_PARAM]
    try:
        return parse_query(pairs)
    except GrammarError as exc:
        raise ApiError(Code.PARSE_ERROR, exc.message, details=exc.details, hint=exc.hint) from None


def key_filter(table: Table, pk: str) -> Condition:
    """``<pk>=eq.<value>`` for /api/<table>/<pk>."""
    key = table.key
    if key is None:
        raise ApiError(
            Code.NO_SINGLE_KEY,
            f"table {table.name!r} has no single-column primary key",
            hint=f"filter instead: /api/{table.name}?col=eq.value",
        )
    return Condition(Field(key.name), Operator.EQ, pk)


def not_found(table: Table, pk: str) -> ApiError:
    return ApiError(Code.NOT_FOUND, f"no row in {table.name!r} with {table.primary_key[0]} = {pk!r}")
