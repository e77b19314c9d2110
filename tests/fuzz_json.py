"""JSON values that remember the exact text they were sent as, for the fuzz test.

A client's number ``1182751036259450098810.880`` must reach Postgres digit for
digit, and a ``json`` column must keep the bytes it was sent. To check that, the
test cannot build bodies with ``json.dumps`` (it would round numbers through
floats and pick its own escapes and spacing): each generated value carries its
own JSON text, written by these strategies with varied escapes and whitespace,
and what it means (the literal of a number, the decoded text of a string, the
items of an array or object).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


@dataclass(frozen=True)
class J:
    """One JSON value: its kind, the exact text sent, and what that text means.

    ``value`` is: None for null, a bool, the number's literal text, the decoded str,
    a tuple of J for an array, a tuple of (key, J) for an object (keys decoded, in
    order, duplicates kept). ``deep`` marks a value nested too deep to decode here.
    """

    kind: str
    text: str
    value: Any
    deep: bool = False

    def __repr__(self) -> str:  # the text is what was sent
        text = self.text if len(self.text) <= 200 else self.text[:100] + f"...({len(self.text)} chars)"
        return f"J({text!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints with this
        printer.text(repr(self))


WHITESPACE = st.sampled_from(["", "", "", " ", "\n", "\t", " \r\n  "])

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _u_escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:  # astral: a surrogate pair of escapes
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04X}"
    return f"\\u{code:04x}"


def _escape(char: str, style: int) -> str:
    """One character of a JSON string: escaped where JSON requires it, and sometimes where not."""
    code = ord(char)
    if code < 0x20 or char in '"\\' or 0xD800 <= code <= 0xDFFF:
        return _SHORT_ESCAPES[char] if char in _SHORT_ESCAPES and style % 3 else _u_escape(char)
    if char == "/" and style % 5 == 0:
        return "\\/"
    if style % 2 and (code > 0x7E or style % 7 == 0):
        return _u_escape(char)
    return char


def _string_text(text: str, style: int) -> str:
    return '"' + "".join(_escape(char, style + i) for i, char in enumerate(text)) + '"'


SPECIAL_STRINGS = [
    "",
    " ",
    "abcde",
    "abcdefgh",
    "abcde   ",
    "a\x00b",
    "\x00",
    "\ud800",
    "x\udfffy",
    "\U0001f600",
    "é",
    "NULL",
    "null",
    "{a,b}",
    '{"x",NULL}',
    "{}",
    "0x10",
    "1_000",
    " 42 ",
    "12.50",
    "-0",
    "1e400",
    "NaN",
    "Infinity",
    "-inf",
    "t",
    "yes",
    "off",
    "maybe",
    "epoch",
    "infinity",
    "2024-01-01T00:00:00Z",
    "2024-02-30 12:00",
    "2024-06-01 12:34:56.789+05:30",
    "99999-01-01",
    "1999-12-31 23:59:60",
    "\\",
    '"',
    "'; DROP TABLE fuzz; --",
]

# Texts whose meaning as a timestamp changes with the clock: never generated.
_CLOCK_WORDS = ("now", "today", "tomorrow", "yesterday")

raw_strings = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=12),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=6),  # surrogates, controls
).filter(lambda s: not any(word in s.lower() for word in _CLOCK_WORDS))


@st.composite
def strings(draw: st.DrawFn, text: st.SearchStrategy[str] = raw_strings) -> J:
    value = draw(text)
    encoded = _string_text(value, draw(st.integers(0, 29)))
    return J("string", encoded, json.loads(encoded))


def _digits(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=min_size, max_size=max_size)


@st.composite
def _number_literals(draw: st.DrawFn) -> str:
    """A number exactly as RFC 8259 writes one: -?int(.frac)?([eE][+-]?exp)?"""
    sign = draw(st.sampled_from(["", "", "-"]))
    whole = draw(st.one_of(st.just("0"), st.builds(lambda a, b: a + b, st.sampled_from("123456789"), _digits(0, 30))))
    frac = draw(st.one_of(st.just(""), _digits(1, 30).map(lambda d: "." + d)))
    exp = draw(
        st.one_of(
            st.just(""),
            st.builds(
                lambda e, s, d: e + s + d,
                st.sampled_from("eE"),
                st.sampled_from(["", "+", "-"]),
                _digits(1, 3),
            ),
        )
    )
    return sign + whole + frac + exp


SPECIAL_NUMBERS = [
    "0",
    "-0",
    "-0.0",
    "1.0",
    "1e2",
    "1E+2",
    "1e400",
    "-1e400",
    "1e-400",
    "5e-324",
    "2.4e-324",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1182751036259450098810.880",
    "0.1000000000000000055511151231257827",
    "123456789012345678901234567890.123456789",
    "100000000000000000000000000000000000000000000000001",
    "1e200000",
]

number_literals = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.integers(-(10**20), 10**20).map(str),
    st.integers(-5, 40).map(str),
    _number_literals(),
)
numbers = number_literals.map(lambda literal: J("number", literal, literal))

nulls = st.just(J("null", "null", None))
bools = st.sampled_from([J("bool", "true", True), J("bool", "false", False)])
scalars = st.one_of(nulls, bools, numbers, strings())


@st.composite
def _arrays(draw: st.DrawFn, items: st.SearchStrategy[J]) -> J:
    values = draw(st.lists(items, max_size=4))
    ws = [draw(WHITESPACE) for _ in range(len(values) + 1)]
    inner = ",".join(ws[i] + v.text for i, v in enumerate(values)) + ws[-1]
    return J("array", "[" + inner + "]", tuple(values))


keys = st.one_of(st.sampled_from(["a", "x", "", "id", "label", "é", "\x00", "\ud800"]), st.text(max_size=5))


@st.composite
def _objects(draw: st.DrawFn, items: st.SearchStrategy[J]) -> J:
    pairs = draw(st.lists(st.tuples(strings(keys), items), max_size=4))
    return object_of(pairs, [draw(WHITESPACE) for _ in range(4 * len(pairs) + 1)])


def object_of(pairs: list[tuple[J, J]], ws: list[str]) -> J:
    """An object from (key as J string, value) pairs, spaced by ``ws`` (4 per pair + 1)."""
    parts = []
    for i, (key, value) in enumerate(pairs):
        a, b, c, d = ws[4 * i : 4 * i + 4]
        parts.append(f"{a}{key.text}{b}:{c}{value.text}{d}")
    text = "{" + ",".join(parts) + (ws[-1] if not pairs else "") + "}"
    return J("object", text, tuple((key.value, value) for key, value in pairs))


@st.composite
def deep(draw: st.DrawFn) -> J:
    """Valid JSON nested far deeper than Python's json module can decode (item 4's case)."""
    depth = draw(st.sampled_from([100, 999, 1000, 5000, 20000]))
    if draw(st.booleans()):
        return J("array", "[" * depth + "]" * depth, (), deep=True)
    return J("object", '{"a":' * depth + "1" + "}" * depth, (), deep=True)


json_values = st.recursive(scalars, lambda items: st.one_of(_arrays(items), _objects(items)), max_leaves=8)
any_json = st.one_of(json_values, deep())


def arrays_of(items: st.SearchStrategy[J]) -> st.SearchStrategy[J]:
    return _arrays(items)
