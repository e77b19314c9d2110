"""PostgREST's query grammar for one table: a query string in, a syntax tree out.

Theory of operation. This module does no I/O and knows no SQL and no catalog: it
reads ``?col=op.value``, ``or=(...)``, ``select=``, ``order=``, ``limit``, ``offset``,
``on_conflict`` and ``columns`` the way PostgREST documents them, and returns a
:class:`Query`. Names in the tree are only names: whether a column exists, and how a
value is compared with it, is decided by whoever compiles the tree (the REST handlers
compile it to SQL with identifiers from the catalog and values as parameters; the hub
will compile it to a predicate for filtered subscriptions). A query it cannot read is
a :class:`GrammarError` that says where and what to write instead.

STUB: the types and signatures below are the contract the parser and the compilers
share; the parser is being written (issue 11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class GrammarError(ValueError):
    """A query the grammar cannot read: PostgREST's PGRST100 ("failed to parse ...").

    ``message`` says what failed (``failed to parse filter (eq3)``), ``details`` where
    (the unexpected text), ``hint`` what to write instead (``id=eq.3``), as in
    PostgREST's error body.
    """

    def __init__(self, message: str, details: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.hint = hint


class Operator(StrEnum):
    EQ = "eq"
    NEQ = "neq"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    LIKE = "like"
    ILIKE = "ilike"
    MATCH = "match"  # ~ (POSIX regular expression)
    IMATCH = "imatch"  # ~*
    IN = "in"
    IS = "is"
    ISDISTINCT = "isdistinct"  # IS DISTINCT FROM


class IsValue(StrEnum):
    """The operand of ``is.``: PostgREST accepts exactly these (case-insensitively)."""

    NULL = "null"
    NOT_NULL = "not_null"
    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class JsonStep:
    """One arrow of a JSON path: ``->key`` (json out) or ``->>key`` (text out).

    ``key`` is an ``int`` when the step is written as digits (``->0``: an array index,
    as PostgREST sends it), else the key's text.
    """

    key: str | int
    as_text: bool


@dataclass(frozen=True)
class Field:
    """A column, or a path into a json/jsonb column: ``data->a->>b`` is
    ``Field("data", (JsonStep("a", False), JsonStep("b", True)))``."""

    column: str
    path: tuple[JsonStep, ...] = ()


@dataclass(frozen=True)
class Condition:
    """``field=[not.]op.value``. ``value`` is a ``str`` for most operators, a tuple of
    strings for ``in`` (quotes removed, as PostgREST reads ``in.("a,b",c)``) and an
    :class:`IsValue` for ``is``."""

    field: Field
    op: Operator
    value: str | tuple[str, ...] | IsValue
    negated: bool = False


@dataclass(frozen=True)
class Logic:
    """``or=(...)`` / ``and=(...)`` / ``not.or=(...)``, nested as written."""

    conjunction: Literal["and", "or"]
    children: tuple[Condition | Logic, ...]
    negated: bool = False


Filter = Condition | Logic


@dataclass(frozen=True)
class SelectItem:
    """One entry of ``select=``: ``alias:field::cast``. ``field`` None is ``*``."""

    field: Field | None
    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True)
class OrderTerm:
    """One entry of ``order=``: ``field[.asc|.desc][.nullsfirst|.nullslast]``."""

    field: Field
    descending: bool = False
    nulls: Literal["first", "last"] | None = None


@dataclass(frozen=True)
class Query:
    """A whole query string. ``filters`` are ANDed; ``select`` None means ``*``."""

    filters: tuple[Filter, ...] = ()
    select: tuple[SelectItem, ...] | None = None
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int | None = None
    on_conflict: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None


# Parameters that are not filters. A column with one of these names is filtered
# through ``and=(name.eq.x)``, as in PostgREST.
RESERVED = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns", "or", "and", "not.or", "not.and"})


def parse_query(params: Sequence[tuple[str, str]]) -> Query:
    """Every parameter of a query string, in order (repeats allowed: ``id=gt.1&id=lt.9``)."""
    raise NotImplementedError


def parse_filter(key: str, value: str) -> Filter:
    """One filter parameter: ``("id", "not.eq.3")``, ``("or", "(a.eq.1,b.is.null)")``."""
    raise NotImplementedError


def parse_select(text: str) -> tuple[SelectItem, ...]:
    raise NotImplementedError


def parse_order(text: str) -> tuple[OrderTerm, ...]:
    raise NotImplementedError
