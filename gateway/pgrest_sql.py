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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from psycopg2 import sql

from .catalog import Column, Identifier, Table, placeholder_safe
from .codes import Code
from .errors import ApiError
from .grammar import Condition, Field, Filter, IsValue, Logic, Operator, OrderTerm, SelectItem, like_pattern


class Params:
    """The named parameters of one statement: each value added gets the next ``%(pN)s``."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> sql.Composable:
        key = f"p{len(self.values)}"
        self.values[key] = value
        return sql.Placeholder(key)


T = sql.SQL("t.")

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
_TEXT_SEARCH = {
    Operator.FTS: "to_tsquery",
    Operator.PLFTS: "plainto_tsquery",
    Operator.PHFTS: "phraseto_tsquery",
    Operator.WFTS: "websearch_to_tsquery",
}
_IS = {
    IsValue.NULL: "IS NULL",
    IsValue.NOT_NULL: "IS NOT NULL",
    IsValue.TRUE: "IS TRUE",
    IsValue.FALSE: "IS FALSE",
    IsValue.UNKNOWN: "IS UNKNOWN",
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
_OPS = {op: sql.SQL(f" {text} ") for op, text in _COMPARISONS.items()}


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


def field(table: Table, target: Field, params: Params) -> tuple[sql.Composable, Column]:
    """``t.col`` or ``t.col->'a'->>'b'`` (keys as parameters), and the column."""
    col = column(table, target.column)
    expr: sql.Composable = T + Identifier(col.name)
    for step in target.path:
        arrow = sql.SQL("->>" if step.as_text else "->")
        key = sql.SQL(str(step.key)) if isinstance(step.key, int) else params.add(step.key)
        expr = sql.SQL("(") + expr + arrow + key + sql.SQL(")")
    return expr, col


def where(table: Table, filters: Sequence[Filter], params: Params) -> sql.Composable | None:
    """The filters ANDed, or None when there are none."""
    if not filters:
        return None
    if len(filters) == 1:
        return condition(table, filters[0], params)
    return sql.SQL(" AND ").join(condition(table, f, params) for f in filters)


def condition(table: Table, node: Filter, params: Params) -> sql.Composable:
    if isinstance(node, Logic):
        joiner = sql.SQL(" AND " if node.conjunction == "and" else " OR ")
        inner = sql.SQL("(") + joiner.join(condition(table, c, params) for c in node.children) + sql.SQL(")")
        return sql.SQL("NOT ") + inner if node.negated else inner
    expr = _comparison(table, node, params)
    return sql.SQL("NOT (") + expr + sql.SQL(")") if node.negated else expr


def _comparison(table: Table, cond: Condition, params: Params) -> sql.Composable:
    lhs, col = field(table, cond.field, params)
    op, value = cond.op, cond.value
    if op is Operator.IS:
        assert isinstance(value, IsValue)
        return lhs + sql.SQL(" " + _IS[value])
    if op is Operator.IN:
        assert isinstance(value, tuple)
        if not value:
            return sql.SQL("false")  # PostgREST's = ANY('{}'): no row
        items = sql.SQL(", ").join(_value(col, cond.field, v, params) for v in value)
        return lhs + sql.SQL(" IN (") + items + sql.SQL(")")
    assert isinstance(value, str)
    if op in _TEXT_SEARCH:
        function = sql.SQL(_TEXT_SEARCH[op])
        args = (
            params.add(value)
            if cond.language is None
            else params.add(cond.language) + sql.SQL(", ") + params.add(value)
        )
        return lhs + sql.SQL(" @@ ") + function + sql.SQL("(") + args + sql.SQL(")")
    text = like_pattern(value) if op in _LIKE else value
    if cond.quantifier is not None:
        # eq(any).{a,b}: the array literal as sent, read as an array of the column's type
        return lhs + _OPS[op] + sql.SQL(cond.quantifier.upper() + "(") + params.add(text) + sql.SQL(")")
    return lhs + _OPS[op] + _value(col, cond.field, text, params)


def _value(col: Column, target: Field, text: str, params: Params) -> sql.Composable:
    """An untyped literal; a whole composite column's is cast to its row type."""
    placeholder = params.add(text)
    if col.is_composite and not target.path:
        return placeholder + sql.SQL("::" + placeholder_safe(col.type_sql))
    return placeholder


def output_name(item: SelectItem) -> str:
    """The key of a select item in the answer: its alias, else its last JSON key, else the column."""
    assert item.field is not None
    if item.alias is not None:
        return item.alias
    if item.field.path:
        return str(item.field.path[-1].key)
    return item.field.column


def cast(name: str) -> sql.Composable:
    """``::type`` for a select item: a type name's shape only, Postgres checks the name."""
    normal = " ".join(name.split())
    if _CAST.fullmatch(normal) or normal.lower() in _TWO_WORD_TYPES:
        return sql.SQL("::" + normal)
    raise ApiError(
        Code.PARSE_ERROR,
        f"cannot cast to {name!r}: a cast names a type (letters, digits and _)",
        hint="select=col::text,col2::int",
    )


def projection(table: Table, items: Sequence[SelectItem] | None, params: Params) -> list[tuple[sql.Composable, str]]:
    """Each output column's expression and its name, ``*`` expanded from the catalog."""
    out: list[tuple[sql.Composable, str]] = []
    for item in items if items is not None else (SelectItem(None),):
        if item.field is None:
            out.extend((T + Identifier(name), name) for name in table.columns)
            continue
        expr, _ = field(table, item.field, params)
        if item.cast is not None:
            expr = sql.SQL("(") + expr + sql.SQL(")") + cast(item.cast)
        out.append((expr, output_name(item)))
    return out


def as_json(columns: Sequence[tuple[sql.Composable, str]], source: sql.Composable) -> sql.Composable:
    """One JSON object per row of ``source`` (its rows aliased ``t``): ``row_to_json`` of the columns."""
    listed = sql.SQL(", ").join(expr + sql.SQL(" AS ") + Identifier(name) for expr, name in columns)
    return (
        sql.SQL("SELECT row_to_json(s.*)::text FROM (SELECT ") + listed + sql.SQL(" FROM ") + source + sql.SQL(") AS s")
    )


def as_text(columns: Sequence[tuple[sql.Composable, str]]) -> sql.Composable:
    """The columns as text, for CSV."""
    return sql.SQL(", ").join(sql.SQL("(") + expr + sql.SQL(")::text") for expr, _ in columns)


def order_by(table: Table, terms: Sequence[OrderTerm], params: Params) -> sql.Composable | None:
    """``t.a DESC NULLS LAST, t.b``; None for no order (see :func:`default_order`)."""
    if not terms:
        return None
    parts = []
    for term in terms:
        expr, _ = field(table, term.field, params)
        suffix = " DESC" if term.descending else ""
        if term.nulls is not None:
            suffix += " NULLS FIRST" if term.nulls == "first" else " NULLS LAST"
        parts.append(expr + sql.SQL(suffix))
    return sql.SQL(", ").join(parts)


def default_order(table: Table) -> sql.Composable | None:
    """The primary key, so pages are stable (PostgREST leaves the order to the plan)."""
    if not table.primary_key:
        return None
    return sql.SQL(", ").join(T + Identifier(k) for k in table.primary_key)
