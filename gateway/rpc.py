"""``/api/rpc/<function>``: call a function named in GATEWAY_RPC, as PostgREST's /rpc does.

``POST`` takes a JSON object of named arguments (postgrest-js's ``.rpc('fn', {a: 1})``);
``GET`` takes them as query parameters, for STABLE and IMMUTABLE functions only (a
GET must not change anything). The call is ``fn(a => $1, b => $2)`` with every name
from the function's catalog entry (:mod:`gateway.functions`, quoted with the catalog's
:class:`~gateway.catalog.Identifier`) and every value a parameter, written as
:mod:`gateway.literals` writes a column's and cast to the argument's type (an
argument has no type modifier, so the cast is Postgres' own input function, as for
an untyped literal; it also picks the overload chosen here).

A function with one unnamed json or jsonb argument gets a POST's whole body as that
argument, and ``Prefer: params=single-object`` passes the whole body to a function's
one json or jsonb argument, whatever its name (PostgREST's rules).

The answer is PostgREST's: a scalar function's value itself, an array of values for
SETOF a scalar, an object for one composite, an array of objects for SETOF a row
type or RETURNS TABLE, and 204 without a body for a void function. With auth on,
the call runs as the token's role (:mod:`gateway.request_role`), so EXECUTE grants
and the row-level security of whatever the function reads apply.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from psycopg2 import sql

from . import exactjson
from .auth import grant_of
from .body import read_body, require_json
from .catalog import Column, Identifier, placeholder_safe
from .codes import Code
from .errors import ApiError
from .functions import Function, Returns
from .literals import array_literal, to_param
from .members import decode_body, member_texts
from .request_role import role_cursor
from .state import FUNCTIONS, POOL

TOKEN_PARAM = "access_token"

# How each kind of result becomes one JSON text (pgrst_t: the call's alias).
_ANSWER = {
    Returns.SCALAR: "SELECT coalesce(to_json({call}), 'null')::text",  # a NULL result is null, not no body
    Returns.VOID: "SELECT {call}::text",
    Returns.SCALARS: "SELECT coalesce(json_agg(pgrst_t.v), '[]')::text FROM {call} AS pgrst_t(v)",
    Returns.ROW: "SELECT coalesce(json_agg(pgrst_t.*) -> 0, 'null')::text FROM {call} AS pgrst_t",
    Returns.ROWS: "SELECT coalesce(json_agg(pgrst_t.*), '[]')::text FROM {call} AS pgrst_t",
}


def _overloads(request: web.Request) -> tuple[str, tuple[Function, ...]]:
    name = request.match_info["function"]
    functions = request.app[FUNCTIONS]
    overloads = functions.get(name)
    if overloads is None:
        exposed = ", ".join(sorted(functions)) or "none (GATEWAY_RPC is empty)"
        raise ApiError(Code.UNKNOWN_FUNCTION, f"function {name!r} is not exposed; exposed: {exposed}")
    return name, overloads


def _choose(name: str, overloads: tuple[Function, ...], given: frozenset[str]) -> Function:
    """The one overload whose arguments the call names: all its required ones, no others."""
    fits = [f for f in overloads if f.required <= given <= f.names]
    if len(fits) == 1:
        return fits[0]
    if fits:
        raise ApiError(
            Code.AMBIGUOUS_FUNCTION,
            f"more than one function {name!r} takes these arguments: " + "; ".join(f.signature for f in fits),
            hint="name the arguments of only one of them, or rename the overloads",
        )
    first = overloads[0]
    if len(overloads) == 1 and not given <= first.names:
        unknown = ", ".join(repr(n) for n in sorted(given - first.names))
        raise ApiError(
            Code.BAD_ARGUMENTS,
            f"function {name!r} has no argument {unknown}; its arguments: {_listed(first)}",
            details=first.signature,
        )
    if len(overloads) == 1:
        missing = ", ".join(repr(a.name) for a in first.arguments if a.name in first.required - given)
        raise ApiError(Code.BAD_ARGUMENTS, f"function {name!r} needs the argument {missing}", details=first.signature)
    raise ApiError(
        Code.BAD_ARGUMENTS,
        f"no function {name!r} takes the arguments {', '.join(sorted(given)) or '(none)'}",
        details="; ".join(f.signature for f in overloads),
    )


def _listed(function: Function) -> str:
    return ", ".join(a.name for a in function.arguments if a.name) or "none"


def _argument(function: Function, name: str) -> Column:
    return next(a for a in function.arguments if a.name == name)


def _call(
    function: Function, values: list[tuple[Column, Any]], positional: bool = False
) -> tuple[sql.Composable, dict[str, Any]]:
    """``schema.fn(a => %(a0)s::type, ...)`` and its named parameters (``a0``...: no clash
    with the ``p0``... of gateway.pgrest_sql, should filters on the result join it)."""
    parts = []
    params: dict[str, Any] = {}
    for argument, value in values:
        key = f"a{len(params)}"
        params[key] = value
        cast = sql.Placeholder(key) + sql.SQL("::" + placeholder_safe(argument.type_sql))
        variadic = sql.SQL("VARIADIC ") if function.variadic and argument is function.arguments[-1] else sql.SQL("")
        if positional:
            parts.append(variadic + cast)
        else:
            parts.append(variadic + sql.SQL("{} => ").format(Identifier(argument.name)) + cast)
    call = function.ident + sql.SQL("(") + sql.SQL(", ").join(parts) + sql.SQL(")")
    return sql.SQL(_ANSWER[function.returns]).format(call=call), params


async def _post_call(
    request: web.Request, name: str, overloads: tuple[Function, ...]
) -> tuple[Function, list[tuple[Column, Any]], bool]:
    require_json(request)
    raw = await read_body(request)
    try:
        body = exactjson.loads(raw or b"{}")
    except exactjson.JSONError as exc:
        raise ApiError(Code.BAD_JSON, f"the body is not valid JSON: {exc}") from None
    text = decode_body(raw) if raw else "{}"
    whole = [f for f in overloads if f.takes_body]
    if "params=single-object" in request.headers.get("Prefer", ""):
        whole = [f for f in overloads if len(f.arguments) == 1 and f.arguments[0].is_json]
        if len(whole) != 1:
            raise ApiError(
                Code.BAD_ARGUMENTS,
                f"Prefer: params=single-object needs a function {name!r} of one json or jsonb argument",
            )
    elif isinstance(body, dict) and any(not f.takes_body for f in overloads):
        whole = []
    if whole:
        function = whole[0]
        (argument,) = function.arguments
        value = text if argument.keeps_text else to_param(argument, body)
        return function, [(argument, value)], not argument.name
    if not isinstance(body, dict):
        raise ApiError(Code.BAD_JSON, "the body must be a JSON object of argument: value")
    function = _choose(name, overloads, frozenset(body))
    texts = member_texts(text) if any(_argument(function, n).keeps_text for n in body) else {}
    values = []
    for key, value in body.items():
        argument = _argument(function, key)
        values.append(
            (argument, texts[key] if argument.keeps_text and value is not None else to_param(argument, value))
        )
    return function, values, False


def _get_call(
    request: web.Request, name: str, overloads: tuple[Function, ...]
) -> tuple[Function, list[tuple[Column, Any]]]:
    given = frozenset(k for k in request.query if k != TOKEN_PARAM)
    function = _choose(name, overloads, given)
    if function.volatile:
        raise ApiError(
            Code.METHOD_NOT_ALLOWED,
            f"function {name!r} is VOLATILE: call it with POST (GET is for STABLE and IMMUTABLE functions)",
            headers={"Allow": "POST"},
        )
    values = []
    for key in sorted(given, key=[a.name for a in function.arguments].index):
        argument = _argument(function, key)
        sent = request.query.getall(key)
        if len(sent) == 1:
            values.append((argument, sent[0]))
        elif function.variadic and argument is function.arguments[-1]:
            values.append((argument, array_literal(argument, list(sent))))
        else:
            raise ApiError(Code.BAD_ARGUMENTS, f"?{key}= is given {len(sent)} times; argument {key!r} takes one value")
    return function, values


async def call_function(request: web.Request) -> web.Response:
    name, overloads = _overloads(request)
    if request.method == "GET":
        function, values = _get_call(request, name, overloads)
        positional = False
    else:
        extra = sorted(k for k in request.query if k != TOKEN_PARAM)
        if extra:
            raise ApiError(
                Code.PARSE_ERROR,
                f"a POST to /api/rpc takes its arguments in the body; filters, select and order on its "
                f"result are not supported yet (got {', '.join(extra)})",
            )
        function, values, positional = await _post_call(request, name, overloads)
    query, params = _call(function, values, positional)
    async with role_cursor(request.app[POOL], grant_of(request)) as cur:
        try:
            await cur.execute(query, params)
        except (ValueError, UnicodeEncodeError) as exc:  # NUL bytes, lone surrogates
            raise ApiError(Code.BAD_VALUE, f"a value cannot be sent as text: {exc}") from None
        row = await cur.fetchone()
    if function.returns is Returns.VOID:
        return web.Response(status=204)
    return web.Response(text=row[0], content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/rpc/{function}", call_function)
    app.router.add_get("/api/rpc/{function}", call_function)
