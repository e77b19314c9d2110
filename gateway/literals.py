"""A JSON value from a request as the literal text Postgres reads for a column.

Theory of operation: every value reaches Postgres the way it would in a statement
typed by hand, as a quoted literal of no type yet (``INSERT ... VALUES ('abc')``,
``WHERE v = 'abc'``). Postgres gives the literal its column's type with the rules
of plain SQL, so it alone decides what is valid and nothing is changed on the way:

* a write is an assignment: ``varchar(5)``, ``char(n)``, ``bit(n)`` and domains over
  them refuse a value that does not fit, with Postgres' own message (an explicit cast
  such as ``'abcdefgh'::varchar(5)`` would silently keep ``'abcde'``);
  ``numeric(p,s)`` and ``timestamp(p)`` round as they do for any client;
* a filter compares the column with the value as sent, so a value longer than the
  column matches no row rather than the row holding its first n characters (only a
  composite column's value is cast to its row type, which has no modifier: Postgres
  cannot read an untyped literal as a record);
* an array goes as one array literal (``{"a","b",NULL}``), not as ``ARRAY[...]``,
  which psycopg2 would send typed ``text[]``; the element of a json or jsonb array
  is its JSON text, and a nested array is a dimension;
* a domain is written as its base type (a domain over jsonb takes any JSON value);
* a number is the literal the client sent (a :class:`~gateway.exactjson.Number`),
  digit for digit, alone or inside an array or a json/jsonb document.

psycopg2 quotes each literal itself; no request text is ever part of the SQL.
"""

from __future__ import annotations

from typing import Any

from .catalog import Column
from .codes import Code
from .errors import ApiError
from .exactjson import JSONError, dumps


def to_param(column: Column, value: Any) -> str | None:
    """The literal text for ``column`` (None for SQL NULL), or a 400 for a value of the wrong shape.

    ``value`` comes from :func:`gateway.exactjson.loads`: its numbers are Numbers.
    """
    if value is None:
        return None
    if column.is_json:
        try:
            return dumps(value)
        except JSONError as exc:
            raise ApiError(Code.BAD_JSON, f"column {column.name!r}: {exc}") from None
    if isinstance(value, list) and column.is_array:
        return array_literal(column, value)
    if isinstance(value, (bool, str)):
        return _scalar(value)
    kind = "an array" if isinstance(value, list) else "an object"
    raise ApiError(Code.BAD_VALUE, f"column {column.name!r} is {column.type_sql}; got {kind}")


def array_literal(column: Column, items: list[Any]) -> str:
    """``{"a","b\\"c",NULL}``: every element double-quoted, so no text can split it.

    Elements are separated by the element type's own delimiter (``;`` for box, whose
    values contain commas). An element of a json or jsonb array is its JSON text, so
    ``["1"]`` stays the string ``"1"`` rather than becoming the number 1; any other
    element is a scalar, and a nested array is a dimension (Postgres checks that the
    sub-arrays match).
    """
    elements = []
    for item in items:
        if item is None:
            elements.append("NULL")
            continue
        if column.json_elements:
            try:
                text = dumps(item)
            except JSONError as exc:
                raise ApiError(Code.BAD_JSON, f"column {column.name!r}: {exc}") from None
        elif isinstance(item, list):
            elements.append(array_literal(column, item))
            continue
        elif isinstance(item, (bool, str)):
            text = _scalar(item)
        else:
            raise ApiError(Code.BAD_VALUE, f"column {column.name!r} takes an array of scalars or of arrays")
        elements.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + column.delimiter.join(elements) + "}"


def _scalar(value: bool | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # a Number's text, or a string
