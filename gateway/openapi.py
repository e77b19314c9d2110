"""``GET /api/``: an OpenAPI 3.1 document of what the gateway serves, built from the catalog.

Theory of operation: :func:`document` is a pure function of the catalog (the exposed
tables, the GATEWAY_RPC functions) and whether auth is on. :func:`routes` registers
``GET /api/`` and ``GET /api`` and a catalog listener (:mod:`gateway.reload`) that
builds the document's JSON text once at start-up and again after every reload, in the
same synchronous step as the swap: the document always describes the catalog the
handlers use. The route needs no token, like PostgREST's root (:mod:`gateway.auth`).

What it describes is PostgREST's grammar for one table, as the README's HTTP API
states it: a path per exposed table (``/{table}``, and ``/{table}/{pk}`` for a table
with a single-column primary key), each column a filter parameter (``op.value``),
``select``, ``order``, ``limit``, ``offset``, ``on_conflict``, ``columns``, the ``Range``
and ``Prefer`` headers, ``Content-Range`` on reads, and every error as the ``Error``
component ({code, message, details, hint}); ``/rpc/{function}`` for each GATEWAY_RPC
function; and ``/events``, tagged ``streaming`` and marked ``x-streaming: true`` so a
fuzzer can leave it out.

The paths come from :mod:`gateway.openapi_paths`, each column's JSON schema from
:mod:`gateway.column_schema`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from .catalog import Table
from .column_schema import insert_schema, row_schema, update_schema
from .functions import Function
from .openapi_paths import (
    CONTENT_RANGE_PATTERN,
    ERROR_REF,
    LOGIC_PATTERN,
    STATUS_TEXT,
    STREAMING_TAG,
    TOKEN_PARAM,
    component_names,
    events_path,
    filtered_events_path,
    query,
    rpc_path,
    table_paths,
)
from .state import AUTHENTICATOR, CATALOG_LISTENERS, FUNCTIONS, OPENAPI, TABLES

MEDIA_TYPE = "application/openapi+json"
FILTERED_STREAMS = "/events/{table}"


def _components(tables: Iterable[Table], names: dict[str, str], auth: bool) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "description": "PostgREST's error shape: code is a PGRST code, a SQLSTATE, or one of the gateway's own",
            "required": ["code", "message", "details", "hint"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": ["string", "null"]},
                "hint": {"type": ["string", "null"]},
            },
        }
    }
    for table in tables:
        name = names[table.name]
        schemas[name] = row_schema(table)
        schemas[f"{name}.insert"] = insert_schema(table)
        schemas[f"{name}.update"] = update_schema(table)
    responses = {
        status: {"description": text, "content": {"application/json": {"schema": ERROR_REF}}}
        for status, text in STATUS_TEXT.items()
    }
    responses["401"]["headers"] = {
        "WWW-Authenticate": {"required": True, "schema": {"type": "string"}, "description": "The Bearer challenge"}
    }
    parameters = {
        "select": query(
            "select", "Columns to answer with: col, alias:col, col::type, json paths col->key; * is every one"
        ),
        "order": query("order", "col[.asc|.desc][.nullsfirst|.nullslast], comma-separated"),
        "limit": query("limit", "At most this many rows", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}),
        "offset": query("offset", "Skip this many rows", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}),
        "on_conflict": query("on_conflict", "The unique columns an upsert matches on, comma-separated"),
        "columns": query("columns", "The body's keys to write, comma-separated; others are ignored"),
        "or": query(
            "or",
            "Filters of which one must hold: (col.op.value,col2.op.value), nested with and(...)",
            {"type": "string", "pattern": LOGIC_PATTERN},
        ),
        "and": query(
            "and", "Filters that must all hold: (col.op.value,or(...))", {"type": "string", "pattern": LOGIC_PATTERN}
        ),
        "Range": {
            "name": "Range",
            "in": "header",
            "required": False,
            "description": "Rows first-last, counted from 0 (with Range-Unit: items)",
            "schema": {"type": "string", "pattern": "^[0-9]+-[0-9]*$"},
        },
        "Range-Unit": {
            "name": "Range-Unit",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "enum": ["items"]},
        },
    }
    components: dict[str, Any] = {
        "schemas": schemas,
        "parameters": parameters,
        "responses": responses,
        "headers": {
            "Content-Range": {
                "description": "first-last/total of the rows answered (* for an empty range or an unknown total)",
                "required": True,
                "schema": {"type": "string", "pattern": CONTENT_RANGE_PATTERN},
            },
            "Preference-Applied": {
                "description": "The Prefer preferences this answer honoured, comma-separated",
                "schema": {"type": "string"},
            },
        },
    }
    if auth:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "token_query": {"type": "apiKey", "in": "query", "name": TOKEN_PARAM},
            "token_cookie": {"type": "apiKey", "in": "cookie", "name": TOKEN_PARAM},
        }
    return components


def document(
    tables: dict[str, Table],
    functions: dict[str, tuple[Function, ...]],
    auth: bool = False,
    filtered_streams: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``tables`` (by URL name), ``functions`` (GATEWAY_RPC's) and
    /events; ``filtered_streams``: the gateway serves ``/events/<table>?<filter>`` too."""
    from . import __version__  # the package's __init__ imports this module (through app)

    names = component_names(tables)
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "operationId": "openapi",
                "summary": "This document (no token needed)",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {MEDIA_TYPE: {"schema": {"type": "object"}}},
                    }
                },
            }
        }
    }
    for table in sorted(tables.values(), key=lambda t: t.name):
        paths.update(table_paths(table, names[table.name]))
    for name in sorted(functions):
        paths.update(rpc_path(name, functions[name]))
    paths.update(events_path())
    if filtered_streams:
        for table in sorted(tables.values(), key=lambda t: t.name):
            paths.update(filtered_events_path(table, names[table.name]))
    _unique_operation_ids(paths)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "pg-sse-gateway",
            "version": __version__,
            "description": "PostgREST's grammar over the exposed tables, and Server-Sent Events of their changes.",
        },
        "servers": [{"url": "/api"}],
        "tags": [
            {"name": "meta", "description": "About the API"},
            {"name": "tables", "description": "The exposed tables, in PostgREST's grammar"},
            {"name": "rpc", "description": "The functions named in GATEWAY_RPC"},
            {"name": STREAMING_TAG, "description": "Streams that do not end on their own (x-streaming: true)"},
        ],
        "paths": paths,
        "components": _components(tables.values(), names, auth),
    }
    if auth:
        doc["security"] = [{"bearer": []}, {"token_query": []}, {"token_cookie": []}]
    return doc


def _unique_operation_ids(paths: dict[str, Any]) -> None:
    """OpenAPI wants each operationId once: a second ``read_x_by_key`` (a table named
    ``x_by_key`` next to ``x``) becomes ``read_x_by_key_2``."""
    seen: set[str] = set()
    for item in paths.values():
        for operation in item.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            base = key = operation["operationId"]
            n = 1
            while key in seen:
                n += 1
                key = f"{base}_{n}"
            seen.add(key)
            operation["operationId"] = key


class Served:
    """The document as served: its JSON text, replaced whole after each catalog load."""

    __slots__ = ("body",)

    def __init__(self) -> None:
        self.body = b""


def _rebuild(app: web.Application) -> None:
    """The catalog listener: the document's text, built once per catalog."""
    # /events/<table> where the app routes it (filtered streams: issue 12).
    filtered = any(r.canonical == FILTERED_STREAMS for r in app.router.resources())
    doc = document(app[TABLES], app[FUNCTIONS], app[AUTHENTICATOR].enabled, filtered)
    app[OPENAPI].body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


async def serve(request: web.Request) -> web.Response:
    # PostgREST's media type for its root document.
    return web.Response(body=request.app[OPENAPI].body, content_type=MEDIA_TYPE)


def routes(app: web.Application) -> None:
    """``GET /api/`` and ``GET /api``, and the listener that keeps the document equal to the catalog."""
    app[OPENAPI] = Served()
    app[CATALOG_LISTENERS].append(_rebuild)
    app.router.add_get("/api/", serve)
    app.router.add_get("/api", serve)
