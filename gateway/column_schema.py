"""What the gateway sends for a column, as a JSON Schema (2020-12, as OpenAPI 3.1 has it).

Pure: a catalog :class:`~gateway.catalog.Column` in, a schema out, for
:mod:`gateway.openapi`. A row leaves as ``row_to_json``, so a column's JSON is what
Postgres writes for its base type (through domains): an integer type an integer within
its range, numeric and the float types a number (or one of the strings ``NaN``,
``Infinity``, ``-Infinity``, which Postgres writes as strings), boolean a boolean, json
and jsonb any JSON value, an array an array of its element type (elements may be
NULL), an enum one of its labels, a row type an object, anything else a string. The
formats named are uuid, date and date-time (timestamptz): what Postgres writes for
them, except ``infinity``, ``-infinity`` and dates BC or past year 9999, which no
format covers (a validator checks formats only when asked to). A column that may be
NULL takes null too.
"""

from __future__ import annotations

from typing import Any

from .catalog import Column, Table

JsonSchema = dict[str, Any]

_INT_RANGES = {"int2": 15, "int4": 31, "int8": 63}
_INT_FORMATS = {"int2": "int16", "int4": "int32", "int8": "int64"}
_NUMBERS = frozenset({"numeric", "float4", "float8"})
_NUMBER_FORMATS = {"float4": "float", "float8": "double"}
_NON_FINITE = ["NaN", "Infinity", "-Infinity"]
_JSON = frozenset({"json", "jsonb"})
# Types whose JSON text is a string of a format a JSON Schema validator checks.
_FORMATS = {"uuid": "uuid", "date": "date", "timestamptz": "date-time"}


def column_schema(column: Column) -> JsonSchema:
    """The JSON schema of what the gateway sends for ``column``, null included when it may be NULL."""
    schema = dict(value_schema(column))
    if not column.not_null:
        schema = or_null(schema)
    description = [column.type_sql]
    if column.comment:
        description.insert(0, column.comment)
    if column.default is not None:
        description.append(f"default: {column.default}")
    elif column.has_default:
        description.append("default: an identity")
    schema["description"] = "; ".join(description)
    if column.generated:
        schema["readOnly"] = True
    if column.has_default:
        schema["x-has-default"] = True
    return schema


def value_schema(column: Column) -> JsonSchema:
    if column.is_json:
        return {}
    if column.is_array:
        element = type_schema(column.element_type, column.element_labels, None)
        return {"type": "array", "items": or_null(element)}
    if column.is_composite:
        return {"type": "object"}
    return type_schema(column.base_type, column.enum_labels, column.max_length)


def type_schema(base: str, labels: tuple[str, ...] | None, max_length: int | None) -> JsonSchema:
    """One non-null value of the base type ``base`` (a pg_type.typname)."""
    if labels:
        return {"type": "string", "enum": list(labels)}
    if base in _INT_RANGES:
        bits = _INT_RANGES[base]
        return {"type": "integer", "format": _INT_FORMATS[base], "minimum": -(2**bits), "maximum": 2**bits - 1}
    if base in _NUMBERS:
        number: JsonSchema = {"type": "number"}
        if base in _NUMBER_FORMATS:
            number["format"] = _NUMBER_FORMATS[base]
        return {"anyOf": [number, {"type": "string", "enum": _NON_FINITE}]}
    if base == "bool":
        return {"type": "boolean"}
    if base in _JSON:
        return {}
    schema: JsonSchema = {"type": "string"}
    if base in _FORMATS:
        schema["format"] = _FORMATS[base]
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def or_null(schema: JsonSchema) -> JsonSchema:
    if not schema:  # any value already
        return schema
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    if "enum" in schema:
        return {**schema, "type": [schema["type"], "null"], "enum": [*schema["enum"], None]}
    return {**schema, "type": [schema["type"], "null"]}


def row_schema(table: Table) -> JsonSchema:
    """A row as the gateway answers with it: each column, typed."""
    schema: JsonSchema = {
        "type": "object",
        "properties": {name: column_schema(column) for name, column in table.columns.items()},
        "description": (
            (table.comment + ". " if table.comment else "")
            + "A row of the table: every column unless select= names others (an alias renames a column, "
            "a cast ::type changes its JSON type)."
        ),
    }
    return schema


def insert_schema(table: Table) -> JsonSchema:
    """One object of a POST body: columns a client may set; those NOT NULL without a default are required."""
    writable = {name: column for name, column in table.columns.items() if not column.generated}
    return {
        "type": "object",
        "properties": {name: _without_read_only(column_schema(column)) for name, column in writable.items()},
        "required": [name for name, column in writable.items() if column.not_null and not column.has_default],
        "additionalProperties": False,
    }


def update_schema(table: Table) -> JsonSchema:
    """A PATCH body: some of the columns a client may set, at least one."""
    writable = {name: column for name, column in table.columns.items() if not column.generated}
    return {
        "type": "object",
        "properties": {name: _without_read_only(column_schema(column)) for name, column in writable.items()},
        "minProperties": 1,
        "additionalProperties": False,
    }


def _without_read_only(schema: JsonSchema) -> JsonSchema:
    return {key: value for key, value in schema.items() if key != "readOnly"}
