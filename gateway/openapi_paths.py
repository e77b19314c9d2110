"""The paths of the OpenAPI document (:mod:`gateway.openapi`): what each operation takes and answers.

Pure: catalog entries in, path items out. A table's paths speak PostgREST's grammar
(filters as ``op.value``, ``select``, ``order``, ``limit``/``offset``, ``Range``,
``Prefer``, ``on_conflict``, ``columns``; reads answer ``Content-Range``); a
function's path is PostgREST's ``/rpc/<fn>``; ``/events`` is tagged ``streaming`` and
marked ``x-streaming: true``. Every error answer is a reference to the document's
``Error`` responses, by status.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from .catalog import Column, Table
from .column_schema import JsonSchema, or_null, type_schema, value_schema
from .functions import Function, Returns
from .grammar import RESERVED, Operator

ERROR_REF = {"$ref": "#/components/schemas/Error"}
STREAMING_TAG = "streaming"
TOKEN_PARAM = "access_token"
# Not filters: the grammar's own parameters and the token's.
NOT_FILTERS = RESERVED | {TOKEN_PARAM}

# A filter's value, "op.value" (with not., and PostgREST's (any|all) or (language)
# modifier), "in.(...)" or "is.<null|not_null|true|false|unknown>".
_VALUE_OPERATORS = "|".join(op.value for op in Operator if op not in (Operator.IN, Operator.IS))
FILTER_PATTERN = rf"^(not\.)?(({_VALUE_OPERATORS})(\([^()]*\))?\..*|in\.\(.*\)|is\.(null|not_null|true|false|unknown))$"
LOGIC_PATTERN = r"^\(.*\)$"
CONTENT_RANGE_PATTERN = r"^(\*|[0-9]+-[0-9]+)/(\*|[0-9]+)$"

_PREFERENCES = {
    "return": "return=(minimal|headers-only|representation)",
    "count": "count=(exact|planned|estimated)",
    "resolution": "resolution=(merge-duplicates|ignore-duplicates)",
    "missing": "missing=(default|null)",
    "handling": "handling=(strict|lenient)",
    "params": "params=single-object",
    "tx": "tx=(commit|rollback)",
}

# The errors each kind of operation can answer with (all of them the Error shape).
_READ_ERRORS = ("400", "401", "403", "404", "406", "416", "503", "504")
_WRITE_ERRORS = ("400", "401", "403", "404", "406", "408", "409", "413", "415", "503", "504")
STATUS_TEXT = {
    "300": "More than one overload of the function takes the arguments named (PGRST203)",
    "400": "The request is malformed, or Postgres refused a value (PGRST1xx, SQLSTATE 22*, 23*)",
    "401": "Auth is on and the token is missing, invalid or expired",
    "403": "The token does not grant this, or the database refused the role",
    "404": "No such table, row, function or operator",
    "405": "The function is VOLATILE: call it with POST",
    "406": "The Accept header asks for a representation the answer cannot have (PGRST107, PGRST116)",
    "408": "The request body did not arrive in time",
    "409": "A unique or foreign key constraint refused the row",
    "413": "The request body is larger than GATEWAY_MAX_BODY",
    "415": "The body is not sent as JSON",
    "416": "The Range or limit/offset asks for rows outside what there is (PGRST103)",
    "429": "This client holds too many streams",
    "503": "The database cannot be reached, or the gateway holds too many streams",
    "504": "The database did not answer in time",
}


def component_name(name: str) -> str:
    """A table's or function's name as a component key (``^[a-zA-Z0-9._-]+$``)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name) or "_"


def component_names(names: Iterable[str]) -> dict[str, str]:
    """Each table's component key, unique with the keys made from it (``<key>.insert``,
    ``<key>.update``) and ``Error``: a name that reads as another's (``a b`` and ``a_b``,
    ``todos.insert`` and the insert body of ``todos``) gets ``_2`` after it, and so on."""
    keys: dict[str, str] = {}
    taken = {"Error"}
    for name in sorted(names):
        base = component_name(name)
        key, n = base, 1
        while {key, f"{key}.insert", f"{key}.update"} & taken:
            n += 1
            key = f"{base}_{n}"
        taken |= {key, f"{key}.insert", f"{key}.update"}
        keys[name] = key
    return keys


def _ref(name: str) -> JsonSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def _param_ref(name: str) -> JsonSchema:
    return {"$ref": f"#/components/parameters/{name}"}


def _errors(statuses: Iterable[str]) -> dict[str, Any]:
    return {status: {"$ref": f"#/components/responses/{status}"} for status in statuses}


def _prefer(*kinds: str) -> JsonSchema:
    """A Prefer header of the given kinds, comma-separated (PostgREST ignores any other)."""
    one = "(" + "|".join(_PREFERENCES[kind] for kind in kinds) + ")"
    return {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": "RFC 7240 preferences, comma-separated: " + ", ".join(_PREFERENCES[k] for k in kinds),
        "schema": {"type": "string", "pattern": f"^{one}( ?, ?{one})*$"},
    }


def _filters(table: Table) -> list[JsonSchema]:
    """One filter parameter per column (a column named like a reserved parameter is
    filtered inside and=(...)), and or= / and=."""
    params: list[JsonSchema] = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"PostgREST filter on {name} ({column.type_sql}): op.value, e.g. eq.1, in.(1,2), is.null",
            "schema": {"type": "string", "pattern": FILTER_PATTERN},
        }
        for name, column in table.columns.items()
        if name not in NOT_FILTERS
    ]
    return [*params, _param_ref("or"), _param_ref("and")]


def _row_content(name: str, many: bool) -> dict[str, Any]:
    """The representations of an answer's rows: JSON (an array, or one object), one
    object with PostgREST's single-object type, CSV."""
    row = _ref(name)
    return {
        "application/json": {"schema": {"type": "array", "items": row} if many else row},
        "application/vnd.pgrst.object+json": {"schema": row},
        "text/csv": {"schema": {"type": "string"}},
    }


def _rows_response(name: str, description: str, *, many: bool = True, content_range: bool = False) -> JsonSchema:
    headers: dict[str, Any] = {"Preference-Applied": APPLIED}
    if content_range:
        headers["Content-Range"] = {"$ref": "#/components/headers/Content-Range"}
    return {"description": description, "content": _row_content(name, many), "headers": headers}


# The preferences a write or a read honoured (RFC 7240), as PostgREST answers them.
APPLIED = {"$ref": "#/components/headers/Preference-Applied"}
_DONE = {"description": "Done, no body (PostgREST's default)", "headers": {"Preference-Applied": APPLIED}}


def table_paths(table: Table, name: str) -> dict[str, Any]:
    """``/<table>`` and ``/<table>/{pk}``; ``name``: the table's component key (:func:`component_names`)."""
    tags = ["tables"]
    filters = _filters(table)
    inserted = {
        "Location": {
            "description": "The row's URL (one row inserted, Prefer: return=headers-only)",
            "schema": {"type": "string"},
        },
        "Content-Range": {"$ref": "#/components/headers/Content-Range"},
        "Preference-Applied": APPLIED,
    }
    collection: dict[str, Any] = {
        "get": {
            "operationId": f"read_{name}",
            "summary": f"Rows of {table.name}",
            "description": table.comment or f"Rows of {table.name} that match every filter.",
            "tags": tags,
            "parameters": [
                *filters,
                *(_param_ref(p) for p in ("select", "order", "limit", "offset", "Range", "Range-Unit")),
                _prefer("count", "handling"),
            ],
            "responses": {
                "200": _rows_response(name, "The rows", content_range=True),
                "206": _rows_response(name, "A range of the rows (Range, limit or offset)", content_range=True),
                **_errors(_READ_ERRORS),
            },
        },
        "post": {
            "operationId": f"insert_{name}",
            "summary": f"Insert rows into {table.name}",
            "description": "One object or an array of objects, in one statement: all or nothing. "
            "Prefer: resolution=merge-duplicates|ignore-duplicates with on_conflict= upserts.",
            "tags": tags,
            "parameters": [
                *(_param_ref(p) for p in ("select", "columns", "on_conflict")),
                _prefer("return", "count", "resolution", "missing", "handling", "tx"),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                _ref(f"{name}.insert"),
                                {"type": "array", "items": _ref(f"{name}.insert")},
                            ]
                        }
                    }
                },
            },
            "responses": {
                "201": {
                    **_rows_response(name, "Inserted: the rows with Prefer: return=representation, else no body"),
                    "headers": inserted,
                },
                "200": {
                    **_rows_response(name, "An upsert (merge-duplicates) whose every row was there already"),
                    "headers": inserted,
                },
                **_errors(_WRITE_ERRORS),
            },
        },
    }
    for method, verb, what in (("patch", "update", "Change"), ("delete", "delete", "Delete")):
        operation: dict[str, Any] = {
            "operationId": f"{verb}_{name}",
            "summary": f"{what} the rows of {table.name} that match the filters",
            "description": "At least one filter: an unfiltered request is refused with a 400 (it would "
            f"{verb} every row; PostgREST would, this gateway chooses safety). No limit, offset or order.",
            "tags": tags,
            "parameters": [
                *filters,
                *(_param_ref(p) for p in (("select", "columns") if method == "patch" else ("select",))),
                _prefer("return", "handling", "tx"),
            ],
            "responses": {
                "200": _rows_response(
                    name, "The rows as they were changed (Prefer: return=representation)", content_range=False
                ),
                "204": _DONE,
                **_errors(_WRITE_ERRORS),
            },
        }
        if method == "patch":
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(f"{name}.update")}},
            }
        collection[method] = operation
    paths = {"/" + quote(table.name, safe=""): collection}
    key = table.key
    if key is not None:
        pk = {
            "name": "pk",
            "in": "path",
            "required": True,
            "description": f"The row's {key.name} ({key.type_sql})",
            "schema": type_schema(key.base_type, key.enum_labels, key.max_length)
            if not key.is_array and not key.is_composite and not key.is_json
            else {"type": "string"},
        }
        one = {"description": f"The row whose {key.name} is pk", "content": _row_content(name, many=False)}
        paths["/" + quote(table.name, safe="") + "/{pk}"] = {
            "parameters": [pk],
            "get": {
                "operationId": f"read_{name}_by_key",
                "summary": f"One row of {table.name} by its key",
                "tags": tags,
                "parameters": [_param_ref("select")],
                "responses": {"200": one, **_errors(_READ_ERRORS)},
            },
            "patch": {
                "operationId": f"update_{name}_by_key",
                "summary": f"Change one row of {table.name} by its key",
                "tags": tags,
                "parameters": [_param_ref("select"), _param_ref("columns"), _prefer("return", "handling", "tx")],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(f"{name}.update")}},
                },
                "responses": {
                    "200": one,
                    "204": _DONE,
                    **_errors(_WRITE_ERRORS),
                },
            },
            "delete": {
                "operationId": f"delete_{name}_by_key",
                "summary": f"Delete one row of {table.name} by its key",
                "tags": tags,
                "parameters": [_param_ref("select"), _prefer("return", "handling", "tx")],
                "responses": {
                    "200": one,
                    "204": _DONE,
                    **_errors(_WRITE_ERRORS),
                },
            },
        }
    return paths


def _argument_schema(argument: Column, variadic: bool) -> JsonSchema:
    schema = or_null(value_schema(argument))
    if variadic:
        schema = {"type": "array", "items": schema}
    return schema


def _query_argument_schema(argument: Column) -> JsonSchema:
    """An argument given in a GET's query string: the value's own schema where the
    text of a query value is the value (a number, a boolean, a word), else a string."""
    if argument.is_json or argument.is_array or argument.is_composite:
        return {"type": "string"}
    return type_schema(argument.base_type, argument.enum_labels, argument.max_length)


def _result_schema(function: Function) -> JsonSchema | None:
    """What a call answers with; None for a void function (204, no body)."""
    row: JsonSchema = {
        "type": "object",
        "properties": {name: or_null(value_schema(column)) for name, column in function.result.items()},
    }
    value = or_null(value_schema(function.value)) if function.value is not None else {}
    return {
        Returns.VOID: None,
        Returns.SCALAR: value,
        Returns.SCALARS: {"type": "array", "items": value},
        Returns.ROW: or_null(row),
        Returns.ROWS: {"type": "array", "items": row},
    }[function.returns]


def _any_of(schemas: list[JsonSchema]) -> JsonSchema:
    unique = [s for i, s in enumerate(schemas) if s not in schemas[:i]]
    return unique[0] if len(unique) == 1 else {"anyOf": unique}


def rpc_path(name: str, overloads: tuple[Function, ...]) -> dict[str, Any]:
    ident = component_name(name)
    tags = ["rpc"]
    results = [_result_schema(f) for f in overloads]
    responses: dict[str, Any] = {}
    if any(r is not None for r in results):
        responses["200"] = {
            "description": "The function's result",
            "content": {"application/json": {"schema": _any_of([r for r in results if r is not None])}},
        }
    if any(r is None for r in results):
        responses["204"] = {"description": "A void function: no body"}
    responses.update(_errors(("300", "400", "401", "403", "404", "408", "409", "413", "415", "503", "504")))
    bodies: list[JsonSchema] = []
    for function in overloads:
        if function.takes_body:
            bodies.append({})  # the whole body is its one json argument
            continue
        named = [a for a in function.arguments if a.name]
        last = function.arguments[-1] if function.arguments else None
        bodies.append(
            {
                "type": "object",
                "properties": {a.name: _argument_schema(a, function.variadic and a is last) for a in named},
                "required": sorted(n for n in function.required if n),  # an unnamed one cannot be named
                "additionalProperties": False,
            }
        )
    signatures = "; ".join(f.signature for f in overloads)
    item: dict[str, Any] = {
        "post": {
            "operationId": f"call_{ident}",
            "summary": f"Call {name}",
            "description": f"{signatures}. The arguments by name, as a JSON object.",
            "tags": tags,
            "parameters": [_prefer("params", "handling")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _any_of(bodies)}}},
            "responses": responses,
        }
    }
    readable = [f for f in overloads if not f.volatile and not f.takes_body]
    if readable:
        names = {a.name: a for f in readable for a in f.arguments if a.name}
        required = set.intersection(*(set(f.required) for f in readable)) if len(readable) == 1 else set()
        item["get"] = {
            "operationId": f"call_{ident}_get",
            "summary": f"Call {name} (STABLE or IMMUTABLE) with its arguments in the query string",
            "description": signatures,
            "tags": tags,
            "parameters": [
                {"name": n, "in": "query", "required": n in required, "schema": _query_argument_schema(a)}
                for n, a in names.items()
                if n != TOKEN_PARAM
            ],
            "responses": {k: v for k, v in responses.items() if k not in ("408", "413", "415")} | _errors(("405",)),
        }
    return {"/rpc/" + quote(name, safe=""): item}


# Resume and token parameters of every stream.
_STREAM_PARAMETERS: list[JsonSchema] = [
    {
        "name": "lastEventId",
        "in": "query",
        "required": False,
        "description": "Resume after this event (on a page's first connection)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "description": "Resume after this event (EventSource sends it when it reconnects)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": TOKEN_PARAM,
        "in": "query",
        "required": False,
        "description": "The token, where a client cannot send Authorization (EventSource)",
        "schema": {"type": "string"},
    },
]
_STREAM_RESPONSES = {
    "200": {
        "description": "The event stream: it does not end on its own",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **_errors(("400", "401", "403", "404", "429", "503")),
}
_VIEW_CHANGES = "(insert|update|delete|truncate)"


def events_path() -> dict[str, Any]:
    return {
        "/events": {
            "servers": [{"url": "/"}],
            "get": {
                "operationId": "events",
                "summary": "Server-Sent Events: the changes of tables and rows, and published messages",
                "description": "A stream that does not end on its own. Each event: id (its resume cursor), "
                "event (insert, update, delete, truncate or publish), data (one JSON object with id, topic, "
                "table, op, row, old). Resume with Last-Event-ID or ?lastEventId=.",
                "tags": [STREAMING_TAG],
                "x-streaming": True,
                "parameters": [
                    {
                        "name": "topic",
                        "in": "query",
                        "required": True,
                        "description": "A table (todos), a row (todos/42) or a custom topic (chat/room1); up to 32",
                        "style": "form",
                        "explode": True,
                        "schema": {
                            "type": "array",
                            "items": {"type": "string", "minLength": 1, "maxLength": 200},
                            "minItems": 1,
                            "maxItems": 32,
                        },
                    },
                    *_STREAM_PARAMETERS,
                ],
                "responses": _STREAM_RESPONSES,
            },
        }
    }


def filtered_events_path(table: Table, name: str) -> dict[str, Any]:
    """``/events/<table>?<filter>``: the live GET of the rows that match (where the gateway serves it)."""
    filters = [p for p in _filters(table) if p.get("name") != "on"]  # on= is the stream's own parameter
    return {
        "/events/" + quote(table.name, safe=""): {
            "servers": [{"url": "/"}],
            "get": {
                "operationId": f"events_{name}",
                "summary": f"Server-Sent Events: the changes of the rows of {table.name} that match the filters",
                "description": "A stream that does not end on its own. The event type is the change to the "
                "filtered view: an update that moves a row out arrives as delete, one that moves a row in as "
                "insert (data.moved says out or in); a TRUNCATE as truncate.",
                "tags": [STREAMING_TAG],
                "x-streaming": True,
                "parameters": [
                    *filters,
                    query("select", "The columns of row and old: plain names, * for all (the default)"),
                    query(
                        "on",
                        "The view changes wanted, comma-separated (all by default; a truncate always comes)",
                        {"type": "string", "pattern": f"^{_VIEW_CHANGES}(,{_VIEW_CHANGES})*$"},
                    ),
                    *_STREAM_PARAMETERS,
                ],
                "responses": _STREAM_RESPONSES,
            },
        }
    }


def query(name: str, description: str, schema: JsonSchema | None = None) -> JsonSchema:
    """An optional query parameter (a string unless ``schema`` says otherwise)."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }
