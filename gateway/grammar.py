"""PostgREST's query grammar for one table: a query string in, a syntax tree out.

Theory of operation. This module does no I/O and knows no SQL and no catalog: it
reads ``?col=op.value``, ``or=(...)``, ``select=``, ``order=``, ``limit``, ``offset``,
``on_conflict`` and ``columns`` the way PostgREST documents them, and returns a
:class:`Query`. Names in the tree are only names: whether a column exists, and how a
value is compared with it, is decided by whoever compiles the tree (the REST handlers
compile it to SQL with identifiers from the catalog and values as parameters; the hub
will compile it to a predicate for filtered subscriptions). A query it cannot read is
a :class:`GrammarError` that says where and what to write instead.

The parser follows PostgREST's own (``src/PostgREST/ApiRequest/QueryParams.hs``):
a top-level value is taken literally after its operator (``?a=eq.x,y(z)`` compares
with ``x,y(z)``); inside ``or=(...)``/``and=(...)`` and ``in.(...)`` a value that holds
``,`` ``.`` ``:`` ``(`` or ``)`` is double-quoted, with ``\\`` escaping the next
character; a name that holds them is double-quoted everywhere. Error messages copy
PostgREST's PGRST100 (``"failed to parse filter (0)" (line 1, column 1)``, details
``unexpected "0" expecting "not" or operator (eq, gt, ...)``) and add a hint.

Where this parser is stricter than PostgREST, on purpose: text left over after a
complete parse (``?id=is.nullx``, ``?or=(a.eq.1))``, ``?on_conflict=a,b)``) is an error,
where PostgREST ignores it; ``limit`` and ``offset`` are digits or an error (PostgREST
ignores what it cannot read); resource embedding (``select=rel(*)``, ``?rel.col=``,
``order=rel(col)``) and aggregates (``count()``, ``col.sum()``) are errors.

``like``/``ilike`` values stay as sent, ``*`` included: the compilers turn every ``*``
into ``%`` with :func:`like_pattern`, as PostgREST does when it writes the SQL.
Repeated parameters: filters add up (AND); the first ``select``, ``order``,
``on_conflict`` and ``columns`` win and the last ``limit`` and ``offset``, as in PostgREST.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeVar
from urllib.parse import parse_qsl


class GrammarError(ValueError):
    """A query the grammar cannot read: PostgREST's PGRST100 ("failed to parse ...").

    ``message`` says what failed (``"failed to parse filter (eq3)" (line 1, column 3)``),
    ``details`` where (``unexpected "3" expecting "(" or delimiter (.)``), ``hint`` what
    to write instead (``id=eq.3``), as in PostgREST's error body.
    """

    def __init__(self, message: str, details: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.hint = hint


class Operator(StrEnum):
    """PostgREST's filter operators. A compiler that has no meaning for one (the hub
    has none for ``fts``) rejects it with a 400 of its own, it does not guess."""

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
    CS = "cs"  # @>  contains
    CD = "cd"  # <@  contained in
    OV = "ov"  # &&  overlaps
    SL = "sl"  # <<  strictly left of
    SR = "sr"  # >>  strictly right of
    NXR = "nxr"  # &<  does not extend to the right of
    NXL = "nxl"  # &>  does not extend to the left of
    ADJ = "adj"  # -|- is adjacent to
    FTS = "fts"  # @@ to_tsquery
    PLFTS = "plfts"  # @@ plainto_tsquery
    PHFTS = "phfts"  # @@ phraseto_tsquery
    WFTS = "wfts"  # @@ websearch_to_tsquery


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

    ``key`` is an ``int`` when the step is written as digits, optionally signed
    (``->0``, ``->-1``: an array index, as PostgREST sends it), else the key's text.
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
    """``field=[not.]op[(any|all)|(language)].value``.

    ``value`` is a ``str`` for most operators (for ``like``/``ilike`` with its ``*``
    wildcards, see :func:`like_pattern`), a tuple of strings for ``in`` (quotes
    removed, as PostgREST reads ``in.("a,b",c)``; ``in.()`` is the empty tuple) and an
    :class:`IsValue` for ``is``. ``quantifier`` is PostgREST's ``eq(any).{a,b}``
    modifier (``value`` is then the array literal as sent); ``language`` is the text
    search configuration of ``fts(english).word``.
    """

    field: Field
    op: Operator
    value: str | tuple[str, ...] | IsValue
    negated: bool = False
    quantifier: Literal["any", "all"] | None = None
    language: str | None = None


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
    """A whole query string. ``filters`` are ANDed; ``select`` None means ``*`` (an
    empty ``select=`` is the empty tuple: no columns, as in PostgREST)."""

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


def like_pattern(value: str) -> str:
    """A ``like``/``ilike`` value as the SQL pattern: PostgREST's ``*`` is ``%`` (every
    one: PostgREST has no escape for a literal ``*``, so neither has this)."""
    return value.replace("*", "%")


def parse_query(params: Sequence[tuple[str, str]]) -> Query:
    """Every parameter of a query string, in order (repeats allowed: ``id=gt.1&id=lt.9``)."""
    filters: list[Filter] = []
    select: tuple[SelectItem, ...] | None = None
    order: tuple[OrderTerm, ...] | None = None
    limit: int | None = None
    offset: int | None = None
    on_conflict: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    for key, value in params:
        if key not in _SHAPE_KEYS:
            filters.append(_filter(key, value))
        elif key == "select":
            if select is None:
                select = parse_select(value)
        elif key == "order":
            terms = parse_order(value)
            order = terms if order is None else order
        elif key == "limit":
            limit = _count("limit", value)
        elif key == "offset":
            offset = _count("offset", value)
        elif key == "on_conflict":
            if on_conflict is None:
                on_conflict = _run(_Scanner(value), f"failed to parse on_conflict parameter ({value})", _Scanner.names)
        elif columns is None:
            names = _run(_Scanner(value), f"failed to parse columns parameter ({value})", _Scanner.names)
            columns = tuple(dict.fromkeys(names))  # a set in PostgREST; kept in the order written
    return Query(tuple(filters), select, order or (), limit, offset, on_conflict, columns)


def parse_filter(key: str, value: str) -> Filter:
    """One filter parameter: ``("id", "not.eq.3")``, ``("or", "(a.eq.1,b.is.null)")``."""
    if key in RESERVED and key not in _LOGIC_KEYS:
        raise GrammarError(
            f"'{key}' is a reserved parameter, not a filter",
            f"{', '.join(sorted(_SHAPE_KEYS))} shape the answer; a filter is column=operator.value",
            f"a column named {key} is filtered as and=({key}.eq.value)",
        )
    return _filter(key, value)


def parse_filters(text: str) -> tuple[Filter, ...]:
    """A query-string fragment of filters only, ANDed: ``owner=eq.user-1&done=is.false``
    (a token's ``rows`` claim). Decoded like a URL's query string (``%xx``, ``+``)."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError as error:
        raise GrammarError(
            f"failed to parse filters ({text})",
            str(error),
            "filters are key=value joined by &: owner=eq.me&done=is.false",
        ) from None
    return tuple(parse_filter(key, value) for key, value in pairs)


def parse_select(text: str) -> tuple[SelectItem, ...]:
    """``select=*,id,alias:col,col::text,alias:data->>x::int``; ``""`` is no column."""
    if text == "*":
        return _ALL  # what every postgrest-js read sends
    return _run(_Scanner(text), f"failed to parse select parameter ({text})", _Scanner.select)


def parse_order(text: str) -> tuple[OrderTerm, ...]:
    """``order=col.desc.nullslast,col2,data->a.asc``."""
    name, dot, suffix = text.partition(".")
    if (way := _ORDER_WAYS.get(dot + suffix)) is not None and _SIMPLE_NAME.fullmatch(name):
        return (OrderTerm(Field(name), *way),)  # one plain column, the common case
    return _run(_Scanner(text), f"failed to parse order ({text})", _Scanner.order)


_LOGIC_KEYS = frozenset({"or", "and", "not.or", "not.and"})
_SHAPE_KEYS = RESERVED - _LOGIC_KEYS
_OPERATORS = {op.value: op for op in Operator}
# Operators whose value is the rest of the parameter: ``id=eq.3`` needs no scanner.
_LITERAL_OPERATORS = {name: op for name, op in _OPERATORS.items() if op not in (Operator.IN, Operator.IS)}
# ``eq(any).{a,b}``: the operators PostgREST lets ``any``/``all`` modify.
_QUANTIFIABLE = frozenset(
    {Operator.EQ, Operator.GT, Operator.GTE, Operator.LT, Operator.LTE}
    | {Operator.LIKE, Operator.ILIKE, Operator.MATCH, Operator.IMATCH}
)
_TEXT_SEARCH = frozenset({Operator.FTS, Operator.PLFTS, Operator.PHFTS, Operator.WFTS})
_IS_VALUES = {value.value: value for value in IsValue}
_OPERATOR_LIST = ", ".join(_OPERATORS)
_SIMPLE_NAME = re.compile(r"[A-Za-z0-9_$]+")
_UP_TO_COMMA_OR_PAREN = re.compile(r"[^,)]*")
_INT4 = 2**31 - 1
_MAX_DEPTH = 64
_STAR = SelectItem(None)
_ALL = (_STAR,)
_ORDER_WAYS: dict[str, tuple[bool, Literal["first", "last"] | None]] = {
    "": (False, None),
    ".asc": (False, None),
    ".desc": (True, None),
    ".nullsfirst": (False, "first"),
    ".nullslast": (False, "last"),
    ".asc.nullsfirst": (False, "first"),
    ".asc.nullslast": (False, "last"),
    ".desc.nullsfirst": (True, "first"),
    ".desc.nullslast": (True, "last"),
}

# Parsec's words for what it expected, so details read as PostgREST's do.
_FIELD_NAME = "field name (* or [a..z0..9_$])"
_DELIMITER = "delimiter (.)"
_END = "end of input"
_NAME_GOES_ON = ("letter", "digit", '"-"', '"->>"', '"->"')
_LOGIC_OPERATOR = "logic operator (and, or)"
_JSON_KEY = "any non reserved character different from: .,>()"
_ORDER_HINT = "order=col.desc.nullslast,col2,data->key.asc"
_AGGREGATES = ("sum()", "avg()", "count()", "max()", "min()")

T = TypeVar("T")


def _filter(key: str, value: str) -> Filter:
    if key in _LOGIC_KEYS:
        return _run(_Scanner(key + value, key, value), f"failed to parse logic tree ({value})", _Scanner.top_logic)
    if _SIMPLE_NAME.fullmatch(key):
        field = Field(key)
        word, dot, rest = value.partition(".")
        if dot and (op := _LITERAL_OPERATORS.get(word)) is not None:
            return Condition(field, op, rest)  # the common case, ``id=eq.3``
        if word == "is" and dot and rest.isascii() and (is_value := _IS_VALUES.get(rest.lower())) is not None:
            return Condition(field, Operator.IS, is_value)
    else:
        field = _run(_Scanner(key, key, value), f"failed to parse tree path ({key})", _Scanner.filter_key)
    return _run(_Scanner(value, key, value), f"failed to parse filter ({value})", lambda it: it.condition(field, False))


def _count(name: str, value: str) -> int:
    """``limit``/``offset``: digits (at most 18, so the number fits a bigint)."""
    hint = f"{name}=20: a number of rows, digits only"
    if value.isascii() and value.isdigit():
        if len(value) <= 18:
            return int(value)
        message = f'"failed to parse {name} parameter ({value})" (line 1, column 19)'
        raise GrammarError(message, "unexpected digit: at most 18 digits", hint)
    at = next(i for i, c in enumerate(value + "$") if not "0" <= c <= "9")
    found = _END if at == len(value) else f'"{value[at]}"'
    message = f'"failed to parse {name} parameter ({value})" (line 1, column {at + 1})'
    raise GrammarError(message, f"unexpected {found} expecting digit", hint)


class _Fail(Exception):
    """A failure at ``pos`` inside one scan; :func:`_run` makes it a GrammarError.

    ``consumed`` is Parsec's notion: the alternative got past its first token, so no
    other alternative is tried (``or(...)`` inside a tree is a logic tree, not a column
    named ``or``) and its error is the one reported.
    """

    def __init__(self, pos: int, expecting: tuple[str, ...], found: str | None, hint: str | None) -> None:
        super().__init__(pos)
        self.pos = pos
        self.expecting = expecting
        self.found = found
        self.hint = hint
        self.details: str | None = None
        self.consumed = False


def _run(scanner: _Scanner, what: str, parse: Callable[[_Scanner], T]) -> T:
    try:
        return parse(scanner)
    except _Fail as fail:
        s, pos = scanner.s, fail.pos
        line = s.count("\n", 0, pos) + 1
        column = pos - (s.rfind("\n", 0, pos) + 1) + 1
        details = fail.details
        if details is None:
            found = fail.found if fail.found is not None else s[pos : pos + 1]
            # Parsec quotes the character with ' when end of input was expected (eof's own
            # message wins), with " when a token or keyword was
            quote = "'" if _END in fail.expecting else '"'
            shown = f"{quote}{found}{quote}" if found else _END
            wanted = list(dict.fromkeys(fail.expecting))
            listed = wanted[0] if len(wanted) == 1 else ", ".join(wanted[:-1]) + " or " + wanted[-1]
            details = f"unexpected {shown} expecting {listed}"
        raise GrammarError(f'"{what}" (line {line}, column {column})', details, fail.hint) from None


def _ident(c: str) -> bool:
    """Parsec's ``letter <|> digit <|> oneOf "_ $"``: the characters of a bare name."""
    return c.isalpha() or c in "0123456789_ $"


class _Scanner:
    """One string and a position: the pieces of PostgREST's grammar as methods."""

    __slots__ = ("depth", "i", "key", "n", "s", "value")

    def __init__(self, s: str, key: str = "", value: str = "") -> None:
        self.s, self.i, self.n = s, 0, len(s)
        self.key, self.value = key, value  # for hints
        self.depth = 0  # of logic trees, bounded: a parser's recursion is not a client's to spend

    def fail(self, *expecting: str, pos: int | None = None, found: str | None = None, hint: str | None = None) -> _Fail:
        return _Fail(self.i if pos is None else pos, expecting, found, hint)

    def refuse(self, pos: int, details: str, hint: str | None) -> _Fail:
        fail = _Fail(pos, (), None, hint)
        fail.details, fail.consumed = details, True
        return fail

    def ws(self) -> None:
        s, i, n = self.s, self.i, self.n
        while i < n and s[i] in " \t":
            i += 1
        self.i = i

    def at(self, text: str) -> bool:
        return self.s.startswith(text, self.i)

    def end(self, *expecting: str) -> None:
        self.ws()
        if self.i < self.n:
            raise self.fail(*expecting, _END)

    # Names, quoted text and JSON paths.

    def name(self) -> str:
        """A quoted name, or bare names joined by ``-`` (not ``->``), each stripped."""
        s, n = self.s, self.n
        if self.i < n and s[self.i] == '"':
            return self.quoted()
        parts = []
        while True:
            start = i = self.i
            while i < n and _ident(s[i]):
                i += 1
            part = s[start:i].strip()
            if not part:
                raise self.fail(_FIELD_NAME, pos=start)
            parts.append(part)
            self.i = i
            if i < n and s[i] == "-" and not s.startswith("->", i):
                self.i = i + 1
                continue
            return "-".join(parts)

    def quoted(self) -> str:
        """``"..."`` with ``\\`` taking the next character as it is."""
        s, n, i = self.s, self.n, self.i + 1
        out = []
        while True:
            j = i
            while j < n and s[j] != '"' and s[j] != "\\":
                j += 1
            out.append(s[i:j])
            if j < n and s[j] == '"':
                self.i = j + 1
                return "".join(out)
            if j + 1 >= n:  # no closing quote, or a backslash with nothing to escape
                raise self.fail('"\\\\"', '"\\""', pos=n)
            out.append(s[j + 1])
            i = j + 2

    def json_path(self) -> tuple[JsonStep, ...]:
        steps = []
        while self.at("->"):
            as_text = self.at("->>")
            self.i += 3 if as_text else 2
            steps.append(JsonStep(self.json_key(), as_text))
        return tuple(steps)

    def json_key(self) -> str | int:
        s, n, start = self.s, self.n, self.i
        j = start + 1 if start < n and s[start] == "-" else start  # an index may be negative
        k = j
        while k < n and "0" <= s[k] <= "9":
            k += 1
        if k > j and (k == n or s.startswith(("->", "::", ".", ","), k)):
            index = int(s[start:k]) if k - j <= 10 else _INT4 + 1
            if abs(index) > _INT4:
                raise self.refuse(start, f"the JSON array index {s[start:k]} is out of range", "an index fits in int4")
            self.i = k
            return index
        if start < n and s[start] == '"':
            return self.quoted()
        parts = []
        while True:
            seg = i = self.i
            while i < n and s[i] not in "(-:.,>)":
                i += 1
            part = s[seg:i].strip()
            if not part:
                if seg == start and k > j:  # ``->-78xy``: the index went further, so it is the error
                    raise self.fail("digit", '"->"', '"::"', '"."', '","', _END, pos=k)
                if seg == start and start < n and s[start] == "-":
                    raise self.fail("digit", pos=start + 1)
                raise self.fail('"-"', "digit", _JSON_KEY, pos=seg)
            parts.append(part)
            self.i = i
            if i < n and s[i] == "-" and not s.startswith("->", i):
                self.i = i + 1
                continue
            return "-".join(parts)

    def field(self) -> Field:
        self.ws()
        name = self.name()
        path = self.json_path() if self.at("->") else ()
        self.ws()
        return Field(name, path)

    def names(self) -> tuple[str, ...]:
        """``on_conflict=`` and ``columns=``: names, comma-separated."""
        self.ws()
        names = [self.name()]
        self.ws()
        while self.at(","):
            self.i += 1
            self.ws()
            names.append(self.name())
            self.ws()
        self.end(*_NAME_GOES_ON[:3], '","')
        return tuple(names)

    def filter_key(self) -> Field:
        name = self.name()
        if self.at("."):
            raise self.refuse(
                self.i,
                f"filters on embedded resources ({self.key}) are not supported here: /api serves one table",
                f'a column whose name has a dot is quoted: "{self.key}"={self.value}',
            )
        path = self.json_path() if self.at("->") else ()
        if self.i < self.n:
            raise self.fail(*_NAME_GOES_ON, _DELIMITER, _END)
        return Field(name, path)

    # Filters: ``[not.]op.value`` and logic trees.

    def condition(self, field: Field, in_logic: bool) -> Condition:
        s, n = self.s, self.n
        negated = self.at("not.")
        if negated:
            self.i += 4
        start = j = self.i
        while j < n and "a" <= s[j] <= "z":
            j += 1
        word = s[start:j]
        op = _OPERATORS.get(word)
        if op is None:
            expecting = ("operator (eq, gt, ...)",) if negated else ('"not"', "operator (eq, gt, ...)")
            raise self.fail(*expecting, pos=start, hint=self.operator_hint(s[start:], in_logic))
        self.i = j
        quantifier: Literal["any", "all"] | None = None
        language = None
        if self.at("(") and op in _QUANTIFIABLE:
            quantifier = self.quantifier()
        elif self.at("(") and op in _TEXT_SEARCH:
            language = self.language()
        if not self.at("."):
            modifiable = (op in _QUANTIFIABLE or op in _TEXT_SEARCH) and not (quantifier or language)
            prefix = "not." if negated else ""
            hint = self.logic_hint() if in_logic else f"{self.key}={prefix}{s[start : self.i]}.{s[self.i :]}"
            raise self.fail(*(('"("',) if modifiable else ()), _DELIMITER, hint=hint)
        self.i += 1
        value: str | tuple[str, ...] | IsValue
        if op is Operator.IN:
            value = self.in_list(in_logic)
        elif op is Operator.IS:
            value = self.is_value(in_logic)
        elif in_logic:
            value = self.logic_value()
        else:
            value, self.i = s[self.i :], n
        return Condition(field, op, value, negated, quantifier, language)

    def quantifier(self) -> Literal["any", "all"]:
        for word in ("any", "all"):
            if self.at(f"({word})"):
                self.i += len(word) + 2
                return "any" if word == "any" else "all"
        raise self.fail('"any"', '"all"', pos=self.i + 1, hint=f"{self.key}=eq(any).{{a,b}} or eq(all).{{a,b}}")

    def language(self) -> str:
        s, n = self.s, self.n
        start = i = self.i + 1
        while i < n and _ident(s[i]):
            i += 1
        if not s[start:i].strip():
            raise self.fail("letter or digit", pos=i, hint=f"{self.key}=fts(english).word")
        if not s.startswith(")", i):
            raise self.fail('")"', pos=i, hint=f"{self.key}=fts(english).word")
        self.i = i + 1
        return s[start:i].strip()

    def in_list(self, in_logic: bool) -> tuple[str, ...]:
        self.ws()
        if not self.at("("):
            raise self.fail('"("', hint=self.logic_hint() if in_logic else f"{self.key}=in.({self.s[self.i :]})")
        self.i += 1
        self.ws()
        items = [self.list_item()]
        while self.at(","):
            self.i += 1
            items.append(self.list_item())
        self.ws()
        if not self.at(")"):
            raise self.fail('","', '")"', hint=None if in_logic else f'{self.key}=in.(a,"b,c")')
        self.i += 1
        if not in_logic:
            self.end()
        return () if items == [None] else tuple("" if item is None else item for item in items)

    def list_item(self) -> str | None:
        """One element of ``in.(...)``: quoted only if the quotes end it; None is an
        empty unquoted element (``in.()`` is the empty list)."""
        s, start = self.s, self.i
        if self.at('"'):
            try:
                item = self.quoted()
            except _Fail:
                item = None
            if item is not None and (self.i == self.n or s[self.i] in ",)"):
                return item
            self.i = start
        match = _UP_TO_COMMA_OR_PAREN.match(s, start)
        assert match is not None
        self.i = match.end()
        return s[start : self.i] or None

    def is_value(self, in_logic: bool) -> IsValue:
        s, n, start = self.s, self.n, self.i
        j = start
        if in_logic:
            while j < n and (s[j].isalpha() or s[j] == "_"):
                j += 1
            word = s[start:j]
        else:
            word, j = s[start:].rstrip(" \t"), n
        value = _IS_VALUES.get(word.lower()) if word.isascii() else None
        if value is None:
            hint = f"{self.key}=is.null: is. takes null, not_null, true, false or unknown; to compare use eq."
            raise self.fail("isVal: (null, not_null, true, false, unknown)", pos=start, hint=hint)
        self.i = j
        return value

    def logic_value(self) -> str:
        """A value inside a logic tree: quoted, ``{array,literal}``, or up to ``,``/``)``."""
        s, n, start = self.s, self.n, self.i
        if self.at('"'):
            try:
                value = self.quoted()
                if self.i == n or s[self.i] in ",)":
                    return value
            except _Fail:
                pass
            self.i = start
        elif self.at("{"):
            j = start + 1
            while j < n and s[j] not in "{}":
                j += 1
            if j < n and s[j] == "}":
                self.i = j + 1
                return s[start : self.i]
        match = _UP_TO_COMMA_OR_PAREN.match(s, start)
        assert match is not None
        self.i = match.end()
        return s[start : self.i]

    def top_logic(self) -> Logic:
        tree = self.logic()
        if self.i < self.n:  # PostgREST ignores it; a stray ")" more likely means a misplaced one
            raise self.fail(_END, hint=f"{self.key}=(...) ends at its closing parenthesis; count the parentheses")
        return tree

    def logic(self) -> Logic:
        """``[not.](and|or)(item,...)``."""
        s = self.s
        negated = self.at("not.")
        if negated:
            self.i += 4
        conjunction: Literal["and", "or"]
        if self.at("and"):
            conjunction, self.i = "and", self.i + 3
        elif self.at("or"):
            conjunction, self.i = "or", self.i + 2
        else:
            expecting = (_LOGIC_OPERATOR,) if negated else ("negation operator (not)", _LOGIC_OPERATOR)
            miss = self.at("o")  # Parsec's ``string "or"`` has eaten the ``o``
            hint = f"{self.key}=(a.eq.1,b.not.is.null): not. negates a condition after its column" if negated else None
            fail = self.fail(
                *(('"or"',) if miss else expecting), found=s[self.i + 1 : self.i + 2] if miss else None, hint=hint
            )
            fail.consumed = negated or miss
            raise fail
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.refuse(self.i, f"logic trees nest at most {_MAX_DEPTH} deep", "write the condition flatter")
        try:
            self.ws()
            if not self.at("("):
                raise self.fail('"("', hint=self.logic_hint())
            self.i += 1
            self.ws()
            children = [self.logic_item()]
            self.ws()
            while self.at(","):
                self.i += 1
                self.ws()
                children.append(self.logic_item())
                self.ws()
            if not self.at(")"):
                raise self.fail('","', '")"', hint=self.logic_hint())
            self.i += 1
            self.ws()
        except _Fail as fail:
            fail.consumed = True
            raise
        self.depth -= 1
        return Logic(conjunction, tuple(children), negated)

    def logic_item(self) -> Filter:
        """``field.[not.]op.value`` or a nested tree: PostgREST tries the condition
        first, so ``or_col.eq.1`` is a column and ``or(...)`` a tree."""
        start = self.i
        try:
            field = self.field()
            if not self.at("."):
                raise self.fail(_DELIMITER, hint=self.logic_hint())
            self.i += 1
            return self.condition(field, in_logic=True)
        except _Fail as as_condition:
            self.i = start
            try:
                return self.logic()
            except _Fail as as_logic:
                if as_logic.consumed or as_condition.pos < as_logic.pos:
                    raise as_logic from None
                if as_condition.pos == as_logic.pos:
                    as_condition.expecting += as_logic.expecting
                    as_condition.hint = as_condition.hint or self.logic_hint()
                raise as_condition from None

    def operator_hint(self, text: str, in_logic: bool) -> str:
        """A bare value (``?col=value``) gets ``col=eq.value``; a word in an operator's
        place (``?col=eqq.3``, ``?col=EQ.3``) the closest operator."""
        if in_logic:  # often a discarded try (``not.and(`` read as a column first): kept cheap
            return f"{self.logic_hint()} (operators: {_OPERATOR_LIST}; not. negates)"
        word = text[: next((i for i, ch in enumerate(text) if not ch.isalpha()), len(text))]
        rest = text[len(word) :]
        close = difflib.get_close_matches(word.lower(), _OPERATORS, 1) if word and rest[:1] in (".", "(") else []
        if close:
            return f"did you mean {self.key}={close[0]}{rest}? (operators: {_OPERATOR_LIST}; not. negates)"
        return f"{self.key}=eq.{self.value} (a filter is column=operator.value; operators: {_OPERATOR_LIST})"

    def logic_hint(self) -> str:
        return f'{self.key}=(col.eq.1,col2.is.null,and(col.gt.0,col.lt.9)); quote values with , . : ( ): col.eq."a,b"'

    # ``select=`` and ``order=``.

    def select(self) -> tuple[SelectItem, ...]:
        if not self.s:
            return ()
        items = [self.select_item()]
        while self.at(","):
            self.i += 1
            items.append(self.select_item())
        return tuple(items)

    def select_item(self) -> SelectItem:
        self.ws()
        s, start = self.s, self.i
        if self.at("..."):
            raise self.embedding(start)
        if self.at("*"):
            self.i += 1
            self.ws()
            if self.i < self.n and not self.at(","):
                raise self.fail('")"', '","', _END)
            return _STAR
        quoted = self.at('"')
        name = self.name()
        alias = None
        if self.at(":") and not self.at("::"):
            self.i += 1
            self.ws()
            alias, quoted, name = name, self.at('"'), self.name()
        if self.at("(") or self.at("!"):
            if name == "count" and self.at("()"):
                raise self.refuse(self.i, "aggregate functions (count(), col.sum(), ...) are not supported here", None)
            raise self.embedding(start)
        path = self.json_path() if self.at("->") else ()
        self.ws()
        cast = None
        if self.at("::"):
            self.i += 2
            cast = self.cast()
        if self.at(".") and s.startswith(_AGGREGATES, self.i + 1):
            raise self.refuse(self.i, "aggregate functions (count(), col.sum(), ...) are not supported here", None)
        self.ws()
        if self.i < self.n and not self.at(","):
            goes_on = ("letter or digit",) if cast else _NAME_GOES_ON[3:] if quoted or path else _NAME_GOES_ON
            raise self.fail(*goes_on, *(() if cast else ('"::"',)), '"."', '")"', '","', _END)
        return SelectItem(Field(name, path), alias, cast)

    def cast(self) -> str:
        s, n = self.s, self.n
        start = i = self.i
        while i < n and _ident(s[i]):
            i += 1
        if not s[start:i].strip():
            raise self.fail("letter or digit", pos=i)
        self.i = i
        return s[start:i].strip()

    def item(self, start: int) -> str:
        """The text of one select or order item, for a message: up to its ``,``, or to
        the ``)`` that closes its first ``(``."""
        s, depth = self.s, 0
        for i in range(start, self.n):
            if s[i] == "(":
                depth += 1
            elif s[i] == ")":
                depth -= 1
                if depth == 0:
                    return s[start : i + 1]
            elif s[i] == "," and depth == 0:
                return s[start:i]
        return s[start:]

    def embedding(self, start: int) -> _Fail:
        item = self.item(start)
        return self.refuse(
            start,
            f"resource embedding ({item}) is not supported here: /api serves one table",
            "select this table's columns: select=id,alias:col,col::text,data->>key",
        )

    def order(self) -> tuple[OrderTerm, ...]:
        terms = [self.order_term()]
        while self.at(","):
            self.i += 1
            terms.append(self.order_term())
        return tuple(terms)

    def order_term(self) -> OrderTerm:
        self.ws()
        s, start = self.s, self.i
        quoted = self.at('"')
        name = self.name()
        if self.at("("):
            raise self.refuse(
                start,
                f"ordering by an embedded resource ({self.item(start)}) is not supported here",
                _ORDER_HINT,
            )
        path = self.json_path() if self.at("->") else ()
        self.ws()
        descending, direction = False, False
        nulls: Literal["first", "last"] | None = None
        if self.at(".asc") or self.at(".desc"):
            descending, direction = self.at(".desc"), True
            self.i += 5 if descending else 4
        if self.at(".nullsfirst") or self.at(".nullslast"):
            nulls = "first" if self.at(".nullsfirst") else "last"
            self.i += 11 if nulls == "first" else 10
        elif self.at("."):
            word = "nullsfirst" if direction else "asc"  # Parsec reports the first alternative's miss
            found = next((c for c, w in zip(s[self.i + 1 :], word, strict=False) if c != w), "")
            words = ('"nullsfirst"', '"nullslast"') if direction else ('"asc"', '"desc"', '"nullsfirst"', '"nullslast"')
            raise self.fail(*words, pos=self.i + 1, found=found, hint=_ORDER_HINT)
        self.ws()
        if self.i < self.n and not self.at(","):
            goes_on = () if direction or nulls else _NAME_GOES_ON[3:] if quoted or path else _NAME_GOES_ON
            raise self.fail(*goes_on, *(() if nulls else (_DELIMITER,)), '","', _END, hint=_ORDER_HINT)
        return OrderTerm(Field(name, path), descending, nulls)
