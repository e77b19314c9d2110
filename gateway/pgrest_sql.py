"""The grammar's tree as SQL for one table: filters, select list and order.

Theory of operation. :mod:`gateway.grammar` reads a query string into names and
values; this module turns them into psycopg2 ``sql.Composed`` pieces for one
:class:`~gateway.catalog.Table`, aliased ``t`` in every statement. Every identifier
comes from the catalog (a name the table does not have is a 400 before any SQL
exists) and every value is a named parameter (``%(p0)s``...: no clash with the
``jwt_*`` of :func:`gateway.request_role.role_prologue` nor the ``a*`` of /api/rpc),
collected in :class:`Params`. Values go as untyped literals, as in
:mod:`gateway.literals`, so Postgres reads each one with the column's own type, as it
reads a hand-written ``WHERE v = 'abc'``; a composite column's value is cast to its
row type (Postgres cannot read an untyped literal as a record of no known type).

JSON keys in a path are parameters too (``t.data->%(p1)s``: an untyped literal that
``->`` reads as text); an array index is an int, written as a number. A ``::cast`` in
``select=`` is a type name of letters, digits and ``_`` (or one of the few SQL types
of two words), so it cannot carry anything but a type; Postgres says whether it is
one. No I/O here: the handlers run what this builds.

The SQL is built as plain text, not as psycopg2 ``sql.Composed`` trees: a GET by
filter composed some twenty Composed objects, and their checks and copies cost more
than the rest of the request's Python. Identifiers are quoted here exactly as
``quote_ident`` quotes them (double quotes, a quote inside doubled), only for names
the catalog has, with each ``%`` doubled (the statement runs with parameters), and
each name's quoting is computed once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .catalog import Column, Table, placeholder_safe
from .codes import Code
from .errors import ApiError
from .grammar import Condition, Field, Filter, IsValue, Logic, Operator, OrderTerm, SelectItem, like_pattern


class Params:
    """The named parameters of one statement: each value added gets the next ``%(pN)s``."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        key = f"p{len(self.values)}"
        self.values[key] = value
        return f"%({key})s"


_QUOTED: dict[str, str] = {}


def ident(name: str) -> str:
    """``name`` quoted as an SQL identifier, ``%`` doubled; call it only with catalog names."""
    quoted = _QUOTED.get(name)
    if quoted is None:
        quoted = _QUOTED[name] = ('"' + name.replace('"', '""') + '"').replace("%", "%%")
    return quoted


def table_sql(table: Table) -> str:
    """The table's qualified name, quoted: ``"public"."todos"``."""
    return ".".join(ident(part) for part in table.ident.strings)  # type: ignore[attr-defined]


def column_sql(name: str) -> str:
    """``t."col"``: the column of the row aliased ``t``."""
    return "t." + ident(name)


_COMPARISONS = {
    Operator.EQ: "=",
    Operator.NEQ: "<>",
    Operator.GT: ">",
    Operator.GTE: ">=",
    Operator.LT: "<",
    Operator.LTE: "<=",
    Operator.LIKE: "LIKE",
    Operator.ILIKE: "ILIKE",
    Operator.MATCH: "~",
    Operator.IMATCH: "~*",
    Operator.ISDISTINCT: "IS DISTINCT FROM",
    Operator.CS: "@>",
    Operator.CD: "<@",
    Operator.OV: "&&",
    Operator.SL: "<<",
    Operator.SR: ">>",
    Operator.NXR: "&<",
    Operator.NXL: "&>",
    Operator.ADJ: "-|-",
}
_OPS = {op: f" {text} " for op, text in _COMPARISONS.items()}
_TEXT_SEARCH = {
    Operator.FTS: "to_tsquery",
    Operator.PLFTS: "plainto_tsquery",
    Operator.PHFTS: "phraseto_tsquery",
    Operator.WFTS: "websearch_to_tsquery",
}
_IS = {
    IsValue.NULL: " IS NULL",
    IsValue.NOT_NULL: " IS NOT NULL",
    IsValue.TRUE: " IS TRUE",
    IsValue.FALSE: " IS FALSE",
    IsValue.UNKNOWN: " IS UNKNOWN",
}
_LIKE = frozenset({Operator.LIKE, Operator.ILIKE})
_CAST = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TWO_WORD_TYPES = frozenset(
    {
        "double precision",
        "character varying",
        "bit varying",
        "timestamp with time zone",
        "timestamp without time zone",
        "time with time zone",
        "time without time zone",
    }
)


def column(table: Table, name: str) -> Column:
    """The table's column ``name``, or the 400 that lists the columns it has."""
    found = table.columns.get(name)
    if found is None:
        raise ApiError(
            Code.UNKNOWN_COLUMN,
            f"table {table.name!r} has no column {name!r}",
            details=f"columns: {', '.join(table.columns)}",
            hint=f'check the spelling; a name with a dot or a comma is quoted: "{name}"',
        )
    return found


def undefined_column(table: Table, name: str) -> ApiError:
    """A filter, select or order naming no column: Postgres' 42703, as PostgREST passes it on."""
    return ApiError(
        Code.UNDEFINED_COLUMN,
        f"column {table.name}.{name} does not exist",
        details=f"columns: {', '.join(table.columns)}",
        hint=f'check the spelling; a name with a dot or a comma is quoted: "{name}"',
    )


def field(table: Table, target: Field, params: Params) -> tuple[str, Column]:
    """``t."col"`` or ``(t."col"->'a')->>'b'`` (keys as parameters), and the column."""
    col = table.columns.get(target.column)
    if col is None:
        raise undefined_column(table, target.column)
    expr = column_sql(col.name)
    for step in target.path:
        arrow = "->>" if step.as_text else "->"
        key = str(step.key) if isinstance(step.key, int) else params.add(step.key)
        expr = f"({expr}{arrow}{key})"
    return expr, col


def where(table: Table, filters: Sequence[Filter], params: Params) -> str | None:
    """The filters ANDed, or None when there are none."""
    if not filters:
        return None
    if len(filters) == 1:
        return condition(table, filters[0], params)
    return " AND ".join(condition(table, f, params) for f in filters)


def condition(table: Table, node: Filter, params: Params) -> str:
    if isinstance(node, Logic):
        joiner = " AND " if node.conjunction == "and" else " OR "
        inner = "(" + joiner.join(condition(table, c, params) for c in node.children) + ")"
        return "NOT " + inner if node.negated else inner
    expr = _comparison(table, node, params)
    return f"NOT ({expr})" if node.negated else expr


def _comparison(table: Table, cond: Condition, params: Params) -> str:
    lhs, col = field(table, cond.field, params)
    op, value = cond.op, cond.value
    if op is Operator.IS:
        assert isinstance(value, IsValue)
        return lhs + _IS[value]
    if op is Operator.IN:
        assert isinstance(value, tuple)
        if not value:
            return "false"  # PostgREST's = ANY('{}'): no row
        return lhs + " IN (" + ", ".join(_value(col, cond.field, v, params) for v in value) + ")"
    assert isinstance(value, str)
    if op in _TEXT_SEARCH:
        args = params.add(value) if cond.language is None else params.add(cond.language) + ", " + params.add(value)
        return f"{lhs} @@ {_TEXT_SEARCH[op]}({args})"
    text = like_pattern(value) if op in _LIKE else value
    if cond.quantifier is not None:
        # eq(any).{a,b}: the array literal as sent, read as an array of the column's type
        return f"{lhs}{_OPS[op]}{cond.quantifier.upper()}({params.add(text)})"
    return lhs + _OPS[op] + _value(col, cond.field, text, params)


def _value(col: Column, target: Field, text: str, params: Params) -> str:
    """An untyped literal; a whole composite column's is cast to its row type."""
    placeholder = params.add(text)
    if col.is_composite and not target.path:
        return placeholder + "::" + placeholder_safe(col.type_sql)
    return placeholder


def output_name(item: SelectItem) -> str:
    """The key of a select item in the answer: its alias, else its last JSON key, else the column."""
    assert item.field is not None
    if item.alias is not None:
        return item.alias
    if item.field.path:
        return str(item.field.path[-1].key)
    return item.field.column


def cast(name: str) -> str:
    """``::type`` for a select item: a type name's shape only, Postgres checks the name."""
    normal = " ".join(name.split())
    if _CAST.fullmatch(normal) or normal.lower() in _TWO_WORD_TYPES:
        return "::" + normal
    raise ApiError(
        Code.PARSE_ERROR,
        f"cannot cast to {name!r}: a cast names a type (letters, digits and _)",
        hint="select=col::text,col2::int",
    )


def projection(table: Table, items: Sequence[SelectItem] | None, params: Params) -> list[tuple[str, str]]:
    """Each output column's expression and its name, ``*`` expanded from the catalog."""
    out: list[tuple[str, str]] = []
    for item in items if items is not None else (SelectItem(None),):
        if item.field is None:
            out.extend((column_sql(name), name) for name in table.columns)
            continue
        expr, _ = field(table, item.field, params)
        if item.cast is not None:
            expr = f"({expr}){cast(item.cast)}"
        out.append((expr, output_name(item)))
    return out


def listed(columns: Sequence[tuple[str, str]]) -> str:
    """``expr AS "name", ...``."""
    return ", ".join(f"{expr} AS {ident(name)}" for expr, name in columns)


def as_json(columns: Sequence[tuple[str, str]], source: str) -> str:
    """One JSON object per row of ``source`` (its rows aliased ``t``): ``row_to_json`` of the columns."""
    return f"SELECT row_to_json(s.*)::text FROM (SELECT {listed(columns)} FROM {source}) AS s"


def as_text(columns: Sequence[tuple[str, str]]) -> str:
    """The columns as text, for CSV."""
    return ", ".join(f"({expr})::text" for expr, _ in columns)


def order_by(table: Table, terms: Sequence[OrderTerm], params: Params) -> str | None:
    """``t."a" DESC NULLS LAST, t."b"``; None for no order (see :func:`default_order`)."""
    if not terms:
        return None
    parts = []
    for term in terms:
        expr, _ = field(table, term.field, params)
        if term.descending:
            expr += " DESC"
        if term.nulls is not None:
            expr += " NULLS FIRST" if term.nulls == "first" else " NULLS LAST"
        parts.append(expr)
    return ", ".join(parts)


def default_order(table: Table) -> str | None:
    """The primary key, so pages are stable (PostgREST leaves the order to the plan)."""
    if not table.primary_key:
        return None
    return ", ".join(column_sql(k) for k in table.primary_key)
