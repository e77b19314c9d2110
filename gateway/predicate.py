"""A PostgREST filter, compiled for one table into a Python predicate over journal rows.

Theory of operation. A filtered subscription (``/events/<table>?done=is.false``) is
decided in the hub, for every change, without asking Postgres. So the predicate
must answer what Postgres answers for the same filter on ``/api`` and in replays,
or a subscriber would see rows its GET does not (or miss some). :func:`compile_filters`
takes the grammar's tree (gateway.grammar) and a catalog :class:`~gateway.catalog.Table`
and returns a :class:`Compiled` filter, or raises an ApiError that names the column
and the operator: it refuses, at compile time, every filter it cannot evaluate
exactly. It never guesses.

A row is the JSON the journal carries (``row_to_json(t.*)``), read by :func:`read_row`
with every number kept as its text. Each value is turned into a *key* by its column's
type, and the filter's value (an untyped literal in Postgres: it takes the column's
type) into a key the same way, once, at compile time; conditions compare keys.

Three-valued logic, as in SQL: a condition on a null value is unknown (None), ``not``
of unknown is unknown, ``and``/``or`` follow Kleene's tables, and a row matches only
when the whole filter is true. ``is`` and ``isdistinct`` are never unknown.

What is evaluated here, by the column's base type (a domain's is its base's):

* ``smallint``, ``integer``, ``bigint``: Python ints; a value is decimal digits with an
  optional sign and surrounding white space, in the type's range.
* ``numeric``: ``decimal.Decimal``, exact (``1.0 = 1.00``); ``NaN`` equals itself and
  sorts above ``Infinity``, as in Postgres. A value has at most 1000 digits and an
  exponent within +-1000. The column's typmod does not apply to the value (Postgres
  compares ``numeric(5,2)`` with ``'1.005'`` unrounded).
* ``double precision``: Python floats (both are IEEE doubles, parsed correctly
  rounded); ``NaN`` equals itself and sorts above everything; a value that overflows or
  underflows to zero is refused, as Postgres refuses it.
* ``boolean``: the words Postgres' boolin takes (``t``, ``yes``, ``of``, ``1``, ...).
* ``text`` and ``varchar``: equality (``eq``, ``neq``, ``in``, ``isdistinct``) and
  ``like`` under any deterministic collation (equal means byte-equal); ordering
  (``gt``...) only under a code-point-order collation (libc ``C``/``POSIX``, builtin
  ``C``/``C.UTF-8``, in a UTF8 database); ``ilike`` only where ``lower()`` folds
  ASCII alone (libc ``C``/``POSIX`` ctype, builtin ``C``). ``like``'s ``_``, ``%`` and
  ``\\`` escapes are Postgres'; a pattern ending in a lone ``\\`` is refused.
* ``uuid``: its 16 bytes, in Postgres' byte order; the value in any form uuid_in reads.
* enums: labels by their sort order from the catalog (``pg_enum.enumsortorder``).
  A row holding a label added since the catalog was read compares as unknown.
* ``timestamptz``: exact microseconds since the epoch, ``infinity`` and
  ``-infinity``; a value is ISO 8601 with an explicit offset
  (``2026-01-01T10:00:00.5+02:00``, ``...Z``), years 0001-9999, at most 6 fractional
  digits: a value without an offset would depend on the session's TimeZone.
* ``is.null``/``is.not_null`` on any column but json, jsonb and composite ones (in
  the row's JSON a SQL null and a JSON ``null``, or a row of nulls, look alike).
* ``is.true``/``is.false``/``is.unknown`` on booleans.
* ``eq``, ``gt``, ``gte``, ``lt``, ``lte``, ``like``, ``ilike`` with ``(any)``/``(all)``
  (``id=eq(any).{1,2}``): a one-dimensional array literal read as array_in reads it
  (quotes, backslashes, ``NULL``), each element a value as above.

Refused here (``unsupported_filter``, 400; the hint says what to write instead):
``match``/``imatch`` (POSIX regular expressions in Postgres' dialect, not Python's),
the full-text operators, the range and array operators (``cs``, ``cd``, ``ov``, ``sl``,
``sr``, ``nxr``, ``nxl``, ``adj``), JSON paths
(``data->>key``), ordering text under any other collation (``en_US``, ICU, libc's
``C.UTF-8`` whose order depends on the C library's version), ``ilike`` under a
collation whose ``lower()`` is not ASCII's, nondeterministic collations, and every
other type (``date``, ``timestamp``, ``real``, ``char(n)``, ``bytea``, arrays,
json...). These are for SQL to evaluate (``/api``), not the hub. A value the type
does not read (``id=eq.abc``) is ``22P02`` (400), as from Postgres.
"""

from __future__ import annotations

import calendar
import json
import operator
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .catalog import Column, Table
from .codes import Code
from .errors import ApiError
from .grammar import Condition, Filter, IsValue, Logic, Operator, like_pattern
from .pgrest_sql import undefined_column

Row = Mapping[str, Any]
Truth = bool | None  # SQL's true, false and unknown
Test = Callable[[Row], Truth]
Key = Hashable


def read_row(text: str | None) -> dict[str, Any] | None:
    """A journal row's JSON text as a dict, numbers kept as their text (no float rounding)."""
    if text is None:
        return None
    row: dict[str, Any] = json.loads(text, parse_int=str, parse_float=str)
    return row


@dataclass(frozen=True)
class Equality:
    """A ``column=eq.value`` (or ``in.(...)``) that a filter requires: the hub's index.

    ``values`` are the keys a row's value must have (a tuple without repeats: most
    filters have one, and a one-element frozenset costs 216 bytes per subscription);
    :meth:`row_key` is a row's key
    for ``column`` (None for null, or a value this compile cannot place), so a row
    whose key is not among ``values`` cannot match.
    """

    column: str
    values: tuple[Key, ...]
    key: Callable[[Any], Key]

    def row_key(self, row: Row) -> Key | None:
        value = row.get(self.column)
        if value is None:
            return None
        try:
            return self.key(value)
        except _Unknowable:
            return None


@dataclass(frozen=True)
class Compiled:
    """A filter compiled for one table.

    ``test`` is the three-valued answer for a row; :meth:`matches` is what a
    subscription takes (true only). ``equality``, if any, is a top-level condition
    the filter requires (see :class:`Equality`).
    """

    test: Test
    equality: Equality | None = None

    def matches(self, row: Row | None) -> bool:
        return row is not None and self.test(row) is True


class _BadValue(Exception):
    """A filter value the column's type does not read (Postgres' 22P02 or 22003)."""

    def __init__(self, message: str, sqlstate: str = "22P02", hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.hint = hint


class _Unknowable(Exception):
    """A row value this compile cannot place (an enum label newer than the catalog)."""


@dataclass(frozen=True)
class _Kind:
    """How one column type's values become keys, and which operators it has here."""

    name: str  # for messages: "integer"
    literal: Callable[[str], Key]  # a filter's value -> key (raises _BadValue)
    key: Callable[[Any], Key]  # the row's JSON value (never None) -> key
    ordered: bool = True
    boolean: bool = False
    text: bool = False


def compile_filters(table: Table, filters: Sequence[Filter]) -> Compiled:
    """The predicate of ``filters`` ANDed (as a query string's are), for ``table``'s rows."""
    tests = [_compile(table, f) for f in filters]
    equality = None
    for f in filters:
        if (
            isinstance(f, Condition)
            and not f.negated
            and f.op in (Operator.EQ, Operator.IN)
            and f.quantifier is None
            and not f.field.path
        ):
            column = table.columns[f.field.column]
            kind = _kind(table, column, f)
            values = (f.value,) if isinstance(f.value, str) else f.value
            assert isinstance(values, tuple)
            equality = Equality(column.name, tuple(dict.fromkeys(kind.literal(v) for v in values)), kind.key)
            break
    if not tests:
        return Compiled(lambda _row: True, None)
    return Compiled(tests[0] if len(tests) == 1 else _and(tests), equality)


def _compile(table: Table, f: Filter) -> Test:
    if isinstance(f, Logic):
        children = [_compile(table, child) for child in f.children]
        test = _and(children) if f.conjunction == "and" else _or(children)
        return _not(test) if f.negated else test
    test = _condition(table, f)
    return _not(test) if f.negated else test


def _and(tests: list[Test]) -> Test:
    def test(row: Row) -> Truth:
        answer: Truth = True
        for t in tests:
            value = t(row)
            if value is False:
                return False
            if value is None:
                answer = None
        return answer

    return test


def _or(tests: list[Test]) -> Test:
    def test(row: Row) -> Truth:
        answer: Truth = False
        for t in tests:
            value = t(row)
            if value is True:
                return True
            if value is None:
                answer = None
        return answer

    return test


def _not(inner: Test) -> Test:
    def test(row: Row) -> Truth:
        value = inner(row)
        return None if value is None else not value

    return test


_COMPARISONS: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.EQ: operator.eq,
    Operator.NEQ: operator.ne,
    Operator.GT: operator.gt,
    Operator.GTE: operator.ge,
    Operator.LT: operator.lt,
    Operator.LTE: operator.le,
}
_ORDERING = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})
_FOR_SQL = {
    Operator.MATCH: "POSIX regular expressions follow Postgres' dialect, not Python's",
    Operator.IMATCH: "POSIX regular expressions follow Postgres' dialect, not Python's",
    Operator.FTS: "full-text search needs Postgres' parser and dictionaries",
    Operator.PLFTS: "full-text search needs Postgres' parser and dictionaries",
    Operator.PHFTS: "full-text search needs Postgres' parser and dictionaries",
    Operator.WFTS: "full-text search needs Postgres' parser and dictionaries",
}
_HINT = "filter /events on eq, neq, gt, gte, lt, lte, in, is, isdistinct, like or ilike; use /api for the rest"


def _refuse(column: str, op: Operator | str, why: str, hint: str | None = _HINT) -> ApiError:
    return ApiError(
        Code.UNSUPPORTED_FILTER,
        f"cannot filter column {column!r} with {op} here: {why}",
        details=f"the filter {column}={op}... on /events is evaluated by the gateway, not by Postgres",
        hint=hint,
    )


def _condition(table: Table, c: Condition) -> Test:
    name = c.field.column
    column = table.columns.get(name)
    if column is None:
        raise undefined_column(table, name)
    op = c.op
    if c.field.path:
        raise _refuse(name, op, "JSON paths (->, ->>) are not evaluated by the hub")
    if op in _FOR_SQL:
        raise _refuse(name, op, _FOR_SQL[op])
    if c.quantifier is not None:
        return _quantified(table, column, c)
    if op is Operator.IS:
        assert isinstance(c.value, IsValue)
        return _is(column, c.value)
    kind = _kind(table, column, c)
    if op in _COMPARISONS:
        if op in _ORDERING and not kind.ordered:
            raise _refuse(name, op, _unordered_reason(column, kind), "filter this column with eq, neq, in or like")
        assert isinstance(c.value, str)
        return _comparison(name, kind, _COMPARISONS[op], _literal(name, kind, c.value))
    if op is Operator.IN:
        assert isinstance(c.value, tuple)
        return _in(name, kind, frozenset(_literal(name, kind, v) for v in c.value))
    if op is Operator.ISDISTINCT:
        assert isinstance(c.value, str)
        return _distinct(name, kind, _literal(name, kind, c.value))
    if op in (Operator.LIKE, Operator.ILIKE):
        assert isinstance(c.value, str)
        return _like(column, kind, op, c.value)
    raise _refuse(name, op, "range and array operators are not evaluated by the hub")


def _quantified(table: Table, column: Column, c: Condition) -> Test:
    """``col=eq(any).{a,b}``: ``col = ANY('{a,b}')`` (``all``: ALL), the array literal read as
    Postgres' array_in reads it, each element as the operator's value; a NULL element
    is unknown. ``ANY`` of no element is false and ``ALL`` true, whatever the row."""
    assert isinstance(c.value, str) and c.quantifier is not None
    op, every = c.op, c.quantifier == "all"
    kind = _kind(table, column, c)  # the operator must suit the column even with no element to compare
    if op in _ORDERING and not kind.ordered:
        raise _refuse(column.name, op, _unordered_reason(column, kind), "filter this column with eq, neq, in or like")
    if op in (Operator.LIKE, Operator.ILIKE):
        _like(column, kind, op, "")
    text = like_pattern(c.value) if op in (Operator.LIKE, Operator.ILIKE) else c.value  # as PostgREST writes it
    try:
        elements = _array_elements(text)
    except _BadValue as bad:
        raise ApiError(
            Code.BAD_VALUE, bad.message, details=f"the {op}({c.quantifier}) value for column {column.name!r}"
        ) from None
    tests = [None if element is None else _condition(table, Condition(c.field, op, element)) for element in elements]

    def test(row: Row) -> Truth:
        if not tests:
            return every
        answer: Truth = every
        for t in tests:
            value = None if t is None else t(row)
            if value is None:
                answer = None
            elif value is not every:
                return value
        return answer

    return test


_ARRAY_SPACE = " \t\n\v\f\r"


def _array_elements(text: str) -> list[str | None]:
    """The elements of a one-dimensional array literal (``{a,"b c",NULL}``), as array_in reads them."""
    s, n = text, len(text)

    def bad() -> _BadValue:
        return _BadValue(f'malformed array literal: "{text}"')

    def skip(i: int) -> int:
        while i < n and s[i] in _ARRAY_SPACE:
            i += 1
        return i

    i = skip(0)
    if i >= n or s[i] != "{":
        raise bad()
    items: list[str | None] = []
    i = skip(i + 1)
    if i < n and s[i] == "}":
        i += 1
    else:
        while True:
            i = skip(i)
            if i >= n:
                raise bad()
            buf: list[str] = []
            if s[i] == '"':
                i += 1
                while True:
                    if i >= n:
                        raise bad()
                    ch = s[i]
                    if ch == "\\":
                        if i + 1 >= n:
                            raise bad()
                        buf.append(s[i + 1])
                        i += 2
                    elif ch == '"':
                        i += 1
                        break
                    else:
                        buf.append(ch)
                        i += 1
                items.append("".join(buf))
                i = skip(i)
            else:
                plain, kept = True, 0  # kept: the length up to the last escaped or non-space character
                while i < n and s[i] not in ",}":
                    ch = s[i]
                    if ch in '{"':
                        raise bad()  # a nested array or a stray quote: not for the hub
                    if ch == "\\":
                        if i + 1 >= n:
                            raise bad()
                        buf.append(s[i + 1])
                        i += 2
                        plain, kept = False, len(buf)
                    else:
                        buf.append(ch)
                        i += 1
                        if ch not in _ARRAY_SPACE:
                            kept = len(buf)
                element = "".join(buf[:kept])
                if not element:
                    raise bad()
                items.append(None if plain and element.isascii() and element.lower() == "null" else element)
            if i >= n:
                raise bad()
            if s[i] == ",":
                i += 1
                continue
            if s[i] == "}":
                i += 1
                break
            raise bad()
    if skip(i) != n:
        raise bad()
    return items


def _unordered_reason(column: Column, kind: _Kind) -> str:
    collation = column.collation
    if kind.text and collation is not None:
        return (
            f'its collation "{collation.name}" ({collation.locale or collation.provider}) does not sort by code '
            'point, and the hub compares text by code point only (as COLLATE "C" does)'
        )
    return f"{kind.name} has no order the hub evaluates"


def _literal(name: str, kind: _Kind, value: str) -> Key:
    try:
        return kind.literal(value)
    except _BadValue as bad:
        raise ApiError(
            Code.BAD_VALUE,
            bad.message,
            details=f"the filter's value for column {name!r}",
            hint=bad.hint,
            sqlstate=bad.sqlstate,
        ) from None


def _comparison(name: str, kind: _Kind, compare: Callable[[Any, Any], bool], literal: Key) -> Test:
    key = kind.key

    def test(row: Row) -> Truth:
        value = row.get(name)
        if value is None:
            return None
        try:
            return compare(key(value), literal)
        except _Unknowable:
            return None

    return test


def _in(name: str, kind: _Kind, literals: frozenset[Key]) -> Test:
    key = kind.key
    if not literals:  # PostgREST's in.() is = ANY('{}'): false, even for null
        return lambda _row: False

    def test(row: Row) -> Truth:
        value = row.get(name)
        if value is None:
            return None
        try:
            return key(value) in literals
        except _Unknowable:
            return None

    return test


def _distinct(name: str, kind: _Kind, literal: Key) -> Test:
    key = kind.key

    def test(row: Row) -> Truth:
        value = row.get(name)
        if value is None:
            return True
        try:
            return key(value) != literal
        except _Unknowable:
            return None

    return test


def _is(column: Column, what: IsValue) -> Test:
    name = column.name
    if what in (IsValue.NULL, IsValue.NOT_NULL):
        if column.is_json or column.is_composite:
            why = (
                "in the row's JSON a json null and SQL null look alike"
                if column.is_json
                else "a composite's IS NULL looks at its fields, which the row's JSON does not tell apart"
            )
            raise _refuse(name, "is", why, None)
        if what is IsValue.NULL:
            return lambda row: row.get(name) is None
        return lambda row: row.get(name) is not None
    if column.base_type != "bool":
        raise _refuse(
            name, "is", f"is.{what} takes a boolean column; {name!r} is {column.type_sql}", "is.null or is.not_null"
        )
    if what is IsValue.TRUE:
        return lambda row: row.get(name) is True
    if what is IsValue.FALSE:
        return lambda row: row.get(name) is False
    return lambda row: row.get(name) is None  # unknown


_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _like(column: Column, kind: _Kind, op: Operator, value: str) -> Test:
    name = column.name
    if not kind.text:
        raise _refuse(name, op, f"{op} takes a text column; {name!r} is {column.type_sql}", "use eq or in")
    collation = column.collation
    assert collation is not None
    insensitive = op is Operator.ILIKE
    if insensitive and not collation.ascii_case:
        raise _refuse(
            name,
            op,
            f'under its collation "{collation.name}" ({collation.locale or collation.provider}) lower() is not '
            "ASCII's, and the hub folds case as the C collation does only",
            "use like with the cases spelled out (like.*[Dd]one* is not LIKE either: write two like filters in or=)",
        )
    pattern = like_pattern(value)
    if insensitive:
        pattern = pattern.translate(_FOLD)
    regex = _like_regex(name, op, pattern)
    match = regex.fullmatch

    if insensitive:

        def test(row: Row) -> Truth:
            text = row.get(name)
            return None if text is None else match(text.translate(_FOLD)) is not None

    else:

        def test(row: Row) -> Truth:
            text = row.get(name)
            return None if text is None else match(text) is not None

    return test


def _like_regex(name: str, op: Operator, pattern: str) -> re.Pattern[str]:
    """Postgres' LIKE: ``%`` any run, ``_`` one character, ``\\`` takes the next one literally."""
    if "\x00" in pattern:
        raise _literal_error(name, ValueError("a value cannot hold a NUL character"))
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 == n:
                raise ApiError(
                    Code.BAD_VALUE,
                    "LIKE pattern must not end with escape character",
                    details=f"the {op} pattern for column {name!r}",
                    hint="a literal backslash is written \\\\",
                    sqlstate="22025",
                )
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "%":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _literal_error(name: str, exc: Exception) -> ApiError:
    return ApiError(Code.BAD_VALUE, str(exc), details=f"the filter's value for column {name!r}", sqlstate="22P02")


# Kinds of column. The key of a row's value must equal the key of a literal exactly when
# Postgres' = says so, and order as Postgres' < does.

_SPACE = " \t\n\v\f\r"  # C's isspace: what Postgres' input functions trim
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?")
_INFINITE = {"inf": 1, "+inf": 1, "infinity": 1, "+infinity": 1, "-inf": -1, "-infinity": -1}


def _integer_kind(name: str, bits: int) -> _Kind:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def literal(text: str) -> Key:
        stripped = text.strip(_SPACE)
        if not _INTEGER.fullmatch(stripped):
            raise _BadValue(
                f'invalid input syntax for type {name}: "{text}"',
                hint="the hub reads integers as decimal digits with an optional sign: id=eq.42",
            )
        value = int(stripped)
        if not low <= value <= high:
            raise _BadValue(f'value "{text}" is out of range for type {name}', "22003")
        return value

    return _Kind(name, literal, int)


def _numeric_key(value: Decimal) -> Key:
    if value.is_nan():
        return (3, Decimal(0))
    if value.is_infinite():
        return (0 if value < 0 else 2, Decimal(0))
    return (1, value)


def _numeric_literal(text: str) -> Key:
    stripped = text.strip(_SPACE)
    lowered = stripped.lower() if stripped.isascii() else stripped
    if lowered == "nan":
        return (3, Decimal(0))
    if lowered in _INFINITE:
        return (0 if _INFINITE[lowered] < 0 else 2, Decimal(0))
    match = _DECIMAL.fullmatch(stripped)
    hint = "the hub reads numbers as 12, -1.5, 2.5e-3, NaN or Infinity"
    if match is None:
        raise _BadValue(f'invalid input syntax for type numeric: "{text}"', hint=hint)
    digits = sum(ch.isdigit() for ch in match.group(2))
    exponent = int(match.group(3) or 0)
    if digits > 1000 or abs(exponent) > 1000:
        raise _BadValue(f'numeric value "{text}" is too long for the hub (over 1000 digits or e+-1000)', hint=hint)
    return (1, Decimal(stripped))


def _numeric_row(value: Any) -> Key:
    return _numeric_key(Decimal(value))


def _float_literal(text: str) -> Key:
    stripped = text.strip(_SPACE)
    lowered = stripped.lower() if stripped.isascii() else stripped
    if lowered == "nan":
        return (1, 0.0)
    if lowered in _INFINITE:
        return (0, float(_INFINITE[lowered]) * float("inf"))
    match = _DECIMAL.fullmatch(stripped)
    if match is None:
        raise _BadValue(
            f'invalid input syntax for type double precision: "{text}"',
            hint="the hub reads numbers as 12, -1.5, 2.5e-3, NaN or Infinity",
        )
    value = float(stripped)
    mantissa_nonzero = any(ch in "123456789" for ch in match.group(2))
    if value in (float("inf"), float("-inf")) or (value == 0.0 and mantissa_nonzero):
        raise _BadValue(f'"{text}" is out of range for type double precision', "22003")
    return (0, value)


def _float_row(value: Any) -> Key:
    number = float(value)
    return (1, 0.0) if number != number else (0, number)


def _bool_literal(text: str) -> Key:
    """Postgres' parse_bool: words and their unique prefixes, case-insensitively, trimmed."""
    word = text.strip(_SPACE)
    lowered = word.lower() if word.isascii() else ""
    answer: bool | None = None
    if lowered:
        first = lowered[0]
        if first == "t" and "true".startswith(lowered):
            answer = True
        elif first == "f" and "false".startswith(lowered):
            answer = False
        elif first == "y" and "yes".startswith(lowered):
            answer = True
        elif first == "n" and "no".startswith(lowered):
            answer = False
        elif lowered == "on":
            answer = True
        elif len(lowered) >= 2 and "off".startswith(lowered):
            answer = False
        elif lowered == "1":
            answer = True
        elif lowered == "0":
            answer = False
    if answer is None:
        raise _BadValue(f'invalid input syntax for type boolean: "{text}"')
    return answer


def _bool_row(value: Any) -> Key:
    return bool(value)


_HEX = frozenset("0123456789abcdefABCDEF")


def _uuid_literal(text: str) -> Key:
    """Postgres' string_to_uuid: 32 hex digits, a ``-`` allowed after any group of four, braces."""
    s, i, n = text, 0, len(text)
    braces = s.startswith("{")
    if braces:
        i = 1
    out = bytearray()
    for index in range(16):
        if i + 2 > n or s[i] not in _HEX or s[i + 1] not in _HEX:
            raise _BadValue(f'invalid input syntax for type uuid: "{text}"')
        out.append(int(s[i : i + 2], 16))
        i += 2
        if i < n and s[i] == "-" and index % 2 == 1 and index < 15:
            i += 1
    if braces:
        if i >= n or s[i] != "}":
            raise _BadValue(f'invalid input syntax for type uuid: "{text}"')
        i += 1
    if i != n:
        raise _BadValue(f'invalid input syntax for type uuid: "{text}"')
    return bytes(out)


def _uuid_row(value: Any) -> Key:
    return bytes.fromhex(str(value).replace("-", ""))


def _text_literal(text: str) -> Key:
    if "\x00" in text:
        raise _BadValue("invalid byte sequence: a text value cannot hold a NUL character", "22021")
    return text


def _text_row(value: Any) -> Key:
    return str(value)


def _enum_kind(column: Column, labels: tuple[str, ...]) -> _Kind:
    rank = {label: i for i, label in enumerate(labels)}
    type_name = column.base_type

    def literal(text: str) -> Key:
        if text not in rank:
            raise _BadValue(f'invalid input value for enum {type_name}: "{text}"', hint=f"labels: {', '.join(labels)}")
        return rank[text]

    def key(value: Any) -> Key:
        position = rank.get(value)
        if position is None:
            raise _Unknowable(value)
        return position

    return _Kind(column.type_sql, literal, key)


_EPOCH_DAYS = 719468  # days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar
_DAY_US = 86_400_000_000


def _days(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of an astronomical-year Gregorian date (Hinnant's days_from_civil)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - _EPOCH_DAYS


# row_to_json's timestamptz: ISO 8601 with the writer's offset (seconds when it has
# them, "+00:17:30"), years past 9999 in full, " BC" for years before 1.
_ROW_TIMESTAMP = re.compile(
    r"([0-9]{4,})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
    r"([+-])([0-9]{2})(?::([0-9]{2})(?::([0-9]{2}))?)?( BC)?"
)
_LITERAL_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?"
    r"(?:([zZ])|([+-])([0-9]{2})(?::?([0-9]{2}))?)"
)
_INFINITE_TIME = {"infinity": (1, 0), "+infinity": (1, 0), "-infinity": (-1, 0)}


def _timestamp_literal(text: str) -> Key:
    stripped = text.strip(_SPACE)
    lowered = stripped.lower() if stripped.isascii() else ""
    if lowered in _INFINITE_TIME:
        return _INFINITE_TIME[lowered]
    match = _LITERAL_TIMESTAMP.fullmatch(stripped)
    hint = "the hub reads 2026-01-31T09:30:00.5+02:00 (an offset or Z is required), infinity or -infinity"
    if match is None:
        raise _BadValue(
            f'cannot read "{text}" as timestamp with time zone here: it must be ISO 8601 with an offset or Z',
            hint=hint,
        )
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    fraction = (match.group(7) or "").ljust(6, "0")
    sign = -1 if match.group(9) == "-" else 1
    off_hours = int(match.group(10) or 0)
    off_minutes = int(match.group(11) or 0)
    valid = (
        year >= 1
        and 1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour <= 23
        and minute <= 59
        and second <= 59
        and off_hours <= 15
        and off_minutes <= 59
    )
    if not valid:
        raise _BadValue(f'date/time field value out of range: "{text}"', "22008", hint)
    offset = sign * (off_hours * 3600 + off_minutes * 60)
    seconds = _days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    return (0, seconds * 1_000_000 + int(fraction))


def _timestamp_row(value: Any) -> Key:
    text = str(value)
    if text in _INFINITE_TIME:
        return _INFINITE_TIME[text]
    match = _ROW_TIMESTAMP.fullmatch(text)
    if match is None:
        raise _Unknowable(text)
    year = int(match.group(1))
    if match.group(12):
        year = 1 - year  # 1 BC is year 0
    month, day, hour, minute, second = (int(match.group(i)) for i in range(2, 7))
    fraction = (match.group(7) or "").ljust(6, "0")
    offset = int(match.group(9)) * 3600 + int(match.group(10) or 0) * 60 + int(match.group(11) or 0)
    if match.group(8) == "-":
        offset = -offset
    seconds = _days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    return (0, seconds * 1_000_000 + int(fraction))


_INT2 = _integer_kind("smallint", 16)
_INT4 = _integer_kind("integer", 32)
_INT8 = _integer_kind("bigint", 64)
_KINDS: dict[str, _Kind] = {
    "int2": _INT2,
    "int4": _INT4,
    "int8": _INT8,
    "numeric": _Kind("numeric", _numeric_literal, _numeric_row),
    "float8": _Kind("double precision", _float_literal, _float_row),
    "bool": _Kind("boolean", _bool_literal, _bool_row, boolean=True),
    "uuid": _Kind("uuid", _uuid_literal, _uuid_row),
    "timestamptz": _Kind("timestamp with time zone", _timestamp_literal, _timestamp_row),
}
_TEXT_TYPES = {"text": "text", "varchar": "character varying"}
_SUPPORTED = "smallint, integer, bigint, numeric, double precision, boolean, text, varchar, uuid, enums, timestamptz"


def _kind(table: Table, column: Column, c: Condition) -> _Kind:
    """The kind of ``column`` for condition ``c``, or a refusal naming both."""
    base = column.base_type
    if column.is_array or column.is_json or column.is_composite:
        raise _refuse(column.name, c.op, f"{column.type_sql} values are not compared by the hub", _HINT)
    kind = _KINDS.get(base)
    if kind is not None:
        return kind
    if column.enum_labels is not None:
        return _enum_kind(column, column.enum_labels)
    if base in _TEXT_TYPES:
        collation = column.collation
        if collation is None or not collation.deterministic:
            raise _refuse(
                column.name,
                c.op,
                f'its collation "{collation.name if collation else "?"}" is nondeterministic: equal text need '
                "not be equal bytes",
                None,
            )
        return _Kind(_TEXT_TYPES[base], _text_literal, _text_row, ordered=collation.codepoint_order, text=True)
    raise _refuse(
        column.name,
        c.op,
        f"the hub compares {_SUPPORTED}; {column.name!r} is {column.type_sql}",
        "filter on another column, or only with is.null / is.not_null",
    )
