"""The fuzz test's requests: hypothesis strategies for sequences of /api and /events requests.

Most requests are ones the gateway should accept (so that writes land and later
requests find rows), the rest odd: bodies of every kind of JSON value and bodies
that are not JSON, content types other than JSON (a missing one included), keys,
query strings, topics and cursors that are not what they should be. Each Request
carries what the test needs to judge its answer: the body's members when it is one
JSON object, whether it is strict JSON, and the key the server decodes from the URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from .fuzz_json import (
    WHITESPACE,
    J,
    any_json,
    arrays_of,
    bools,
    deep,
    json_values,
    nulls,
    number_literals,
    numbers,
    object_of,
    raw_strings,
    scalars,
    strings,
)
from .fuzz_model import COLUMNS

MAX_REQUESTS = 12
MAX_BODY = 1024 * 1024  # the gateway's default GATEWAY_MAX_BODY


@dataclass(frozen=True)
class Body:
    raw: bytes
    fields: tuple[tuple[str, J], ...] | None  # its members, when the body is one JSON object
    valid: bool | None  # strict RFC 8259 JSON: True, False, or None for debatable (a BOM)


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, exactly as sent (percent-encoded)
    kind: str  # create, update, delete, get, list, events, other
    body: Body | None = None
    content_type: str | None = None  # None: no Content-Type header at all
    key: str | None = None  # the URL's key as the server decodes it; None if it decodes to no integer
    headers: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        text = f"{self.method} {self.target}"
        if self.kind in ("create", "update"):
            text += f" Content-Type={self.content_type!r}"
        text += "".join(f" {name}={value!r}" for name, value in self.headers)
        if self.body is not None:
            raw = self.body.raw
            text += f" body={raw[:300]!r}" + (f"...({len(raw)} bytes)" if len(raw) > 300 else "")
        return text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints examples with this
        printer.text(repr(self))


JSON_TYPES = ["application/json", "application/json", "application/json; charset=utf-8", "Application/JSON"]
NOT_JSON_TYPES = [
    None,
    "",
    "text/x-notjson",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
]
DEBATABLE_TYPES = [
    "application/vnd.pgrst.object+json",
    "application/merge-patch+json",
    "text/json",
    "application/json; charset=iso-8859-1",
]


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each ``weight`` times as likely; shrinks towards the first."""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(lambda s: s)


content_types = weighted(
    (12, st.sampled_from(JSON_TYPES)), (2, st.sampled_from(NOT_JSON_TYPES)), (1, st.sampled_from(DEBATABLE_TYPES))
)


def media_of(content_type: str | None) -> str:
    if content_type in NOT_JSON_TYPES:
        return "not_json"
    return "json" if content_type in JSON_TYPES else "debatable"


def _strings_of(*texts: str) -> st.SearchStrategy[J]:
    return strings(st.sampled_from(texts))


def _numbers_of(values: st.SearchStrategy[str]) -> st.SearchStrategy[J]:
    return values.map(lambda literal: J("number", literal, literal))


_plain_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=10)
TIMESTAMPS = ("2024-01-01T00:00:00Z", "2024-06-01 12:34:56.789+05:30", "epoch", "infinity", "2024-02-30", "1")
# For each column: a value it takes (mostly), one it may refuse or store oddly, or any JSON value.
_GOOD: dict[str, st.SearchStrategy[J]] = {
    "id": _numbers_of(st.integers(1, 8).map(str)),
    "label": strings(_plain_text),
    "code": strings(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=5)),
    "qty": _numbers_of(st.integers(0, 100).map(str)),
    "big": _numbers_of(st.integers(-(2**63), 2**63 - 1).map(str)),
    "amount": numbers,
    "ratio": numbers,
    "flag": bools,
    "doc": json_values,
    "raw": json_values,
    "tags": arrays_of(st.one_of(strings(_plain_text), nulls, numbers, bools)),
    "at": _strings_of(*TIMESTAMPS),
    "t": strings(_plain_text),
}
_ODD: dict[str, st.SearchStrategy[J]] = {
    "id": _strings_of("3", " 4", "x", "5.0", "1e0", "-1"),
    "label": strings(),
    "code": _strings_of("abcdef", "abcde   ", "é😀abc", "\U0001f600" * 6, "", "a\x00"),
    "qty": st.one_of(numbers, _strings_of("7", " 8 ", "1_000", "0x10", "-1")),
    "big": st.one_of(numbers, _strings_of("9223372036854775807", "9223372036854775808", "-1")),
    "amount": _strings_of("12.50", "NaN", "Infinity", "1e400", "0x10", " 1 "),
    "ratio": _strings_of("1.5", "NaN", "-Infinity", "1e309", "5e-324", "1e-400"),
    "flag": st.one_of(_strings_of("t", "f", "yes", "off", "1", "maybe"), _numbers_of(st.sampled_from("012"))),
    "doc": deep(),
    "raw": deep(),
    "tags": st.one_of(arrays_of(scalars), arrays_of(arrays_of(scalars)), _strings_of("{a,b}", "{}", "{{a},{b}}", "{a")),
    "at": st.one_of(numbers, strings()),
    "t": st.one_of(strings(), numbers, bools),
}
VALUES = {name: weighted((6, _GOOD[name]), (2, _ODD[name]), (1, any_json)) for name in COLUMNS}
UNKNOWN_KEYS = st.one_of(
    st.sampled_from(["ID", "Label", "label ", "t", "row", "old", "nope", "", "__proto__", "id\x00"]),
    st.text(max_size=4),
).filter(lambda key: key not in COLUMNS)


@st.composite
def object_bodies(draw: st.DrawFn, create: bool) -> Body:
    names = draw(st.lists(st.sampled_from(list(COLUMNS)[1:]), max_size=4, unique=True))
    if draw(st.integers(0, 5)) == 0:
        names.append("id")
    if create and "label" not in names and draw(st.integers(0, 9)) < 8:
        names.insert(0, "label")  # label is NOT NULL: most creates name it
    pairs = [(draw(strings(st.just(name))), draw(VALUES[name])) for name in names]
    if draw(st.integers(0, 9)) == 0:
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(strings(UNKNOWN_KEYS)), draw(scalars)))
    if pairs and draw(st.integers(0, 9)) == 0:  # a duplicate key: the last one counts
        key = pairs[draw(st.integers(0, len(pairs) - 1))][0]
        pairs.append((key, draw(VALUES.get(key.value, scalars))))
    obj = object_of(pairs, [draw(WHITESPACE) for _ in range(4 * len(pairs) + 1)])
    text = draw(WHITESPACE) + obj.text + draw(WHITESPACE)
    return Body(text.encode(), obj.value, True)


NOT_JSON_BODIES = [
    b"",
    b"{",
    b"}",
    b'{"label": "a",}',
    b"{'label': 'a'}",
    b'{"label": NaN}',
    b'{"label":"x","ratio":NaN}',
    b'{"label":"x","ratio":Infinity}',
    b'{"ratio":-Infinity,"label":"x"}',
    b'{"label":"x","doc":{"n":NaN}}',
    b"NaN",
    b"[Infinity]",
    b'{"label":"a"} x',
    b'{"label":"a"}{"label":"b"}',
    b'{"label":"a\x01b"}',
    b'{"label":"a\nb"}',
    b'{"label":"\xff"}',
    b'{"label":"\xed\xa0\x80"}',
    b'{"label":"\xc3"}',
    b"[" * 20000,
    b'{"doc":' * 1000 + b"1" + b"}" * 999,
    b'{"label":"a" /* c */}',
    b"\x00",
    b'{"label":"a","qty":0x10}',
    b'{"label":"a","qty":01}',
    b'{"label":"a","ratio":.5}',
    b'{"label":"a","qty":+1}',
    b'{"label":"a","qty":1.}',
    b'{"label":"\\x41"}',
    b'{"label":"\\u12"}',
    b'{"label":tru}',
    b'{label:"a"}',
    b'{"label":"a",,"qty":1}',
    b'{"label" "a"}',
    b"label=a&qty=1",
]


@st.composite
def truncated_bodies(draw: st.DrawFn, create: bool) -> Body:
    """A valid object cut before its closing brace: never JSON."""
    raw = draw(object_bodies(create)).raw.rstrip()
    return Body(raw[: draw(st.integers(0, len(raw) - 1))], None, False)


def write_bodies(create: bool) -> st.SearchStrategy[Body]:
    objects = object_bodies(create)
    return weighted(
        (24, objects),
        (2, any_json.filter(lambda j: j.kind != "object").map(lambda j: Body(j.text.encode(), None, True))),
        (2, st.sampled_from(NOT_JSON_BODIES).map(lambda raw: Body(raw, None, False))),
        (2, truncated_bodies(create)),
        (1, objects.map(lambda body: Body(b"\xef\xbb\xbf" + body.raw, body.fields, None))),
        (1, st.just(Body(b" " * (MAX_BODY + 1), None, False))),
    )


KEYS = ["1", "2", "3", "4", "5", "6"]
ODD_KEYS = [" 1", "01", "+2", "1.0", "1e0", "0", "-1", "abc", "9223372036854775807", "9223372036854775808"]
ODD_KEYS += ["1_000", "0x1", "é", "\x00", "1 2", "", "/", "1/2", "%", "١"]
RAW_KEYS = ["%ff", "%ed%a0%80", "%zz", "%2531", "1%", "%C3"]  # sent as is; no decoding gives an integer


@st.composite
def keys(draw: st.DrawFn) -> tuple[str, str | None]:
    """(the key as it goes into the URL, the text the server decodes it to or None)."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from(RAW_KEYS)), None
    text = draw(weighted((16, st.sampled_from(KEYS)), (2, st.sampled_from(ODD_KEYS)), (1, raw_strings)))
    url_key = quote(text, safe="", errors="surrogatepass")  # a lone surrogate: bytes no UTF-8 decoder takes
    return url_key, None if any(0xD800 <= ord(char) <= 0xDFFF for char in text) else text


@st.composite
def creates(draw: st.DrawFn) -> Request:
    return Request("POST", "/api/fuzz", "create", draw(write_bodies(True)), draw(content_types))


def _addressed(draw: st.DrawFn, url_key: str) -> str:
    """The row's URL: /api/fuzz/<key>, or the filtered form /api/fuzz?id=eq.<key> (which may match no row)."""
    return f"/api/fuzz?id=eq.{url_key}" if draw(st.booleans()) else f"/api/fuzz/{url_key}"


@st.composite
def updates(draw: st.DrawFn) -> Request:
    url_key, key = draw(keys())
    body, content_type = draw(write_bodies(False)), draw(content_types)
    return Request("PATCH", _addressed(draw, url_key), "update", body, content_type, key)


@st.composite
def deletes(draw: st.DrawFn) -> Request:
    url_key, key = draw(keys())
    return Request("DELETE", _addressed(draw, url_key), "delete", key=key)


@st.composite
def gets(draw: st.DrawFn) -> Request:
    url_key, key = draw(keys())
    return Request("GET", f"/api/fuzz/{url_key}", "get", key=key)


LIMITS = ["0", "1", "5", "-1", "abc", "1e3", "999999999999999999999", "", " 2", "1000", "1001", "2.5"]
ORDERS = ["id", "-id", "label.desc", "qty.asc", "id.asc.desc", "nope", "", ",", "id,-label", "+id", "id.", ".desc"]
ORDERS += ["-", "doc", "raw", "tags.desc", "flag,at", "id.desc.nullslast", "label.nullsfirst,id", "doc->a.desc"]
ORDERS += ["doc->>a", '"label"', "label.asc.nullslast.x"]
FILTER_VALUES = ["eq.1", "in.(1,2)", "is.null", "gt.3", "1", "true", "{a}", '{"a":1}', "1e400", "NaN", "2024-01-01"]
FILTER_VALUES += ["not.eq.1", "like.*a*", "ilike.A%", "match.^a", "imatch.A", 'in.("a,b",c)', "in.()", "is.true"]
FILTER_VALUES += ["isdistinct.1", "cs.{a}", "cd.{a,b}", "ov.{a}", "fts.word", "plfts(english).a b", "neq.", "eqq.1"]
FILTER_VALUES += ["eq(any).{1,2}", "(id.eq.1,label.is.null)", "not.is.not_null", "lt.2024-01-01", "eq.1e400"]
OTHER_PARAMS = ["select", "or", "and", "not", "nope", "", "access_token", "lastEventId", "topic", "ID", "limit "]
OTHER_PARAMS += ["not.or", "doc->a", "doc->>a", "columns", "on_conflict"]
RAW_QUERY_PARTS = ["&", "=", "==", "a=b=c", "%", "%zz", "%ff", "%ed%a0%80", "id", "id=", "limit", "limit="]
RAW_QUERY_PARTS += ["%00=1", "+", "id=%2B1", "label=%00", "label=é", "é=1"]  # é: a raw non-ASCII byte
filter_values = st.one_of(st.sampled_from(FILTER_VALUES), raw_strings, number_literals)


def _param(name: str, value: str, safe: str) -> str:
    return f"{quote(name, safe='')}={quote(value, safe=safe, errors='surrogatepass')}"


query_parts = st.one_of(
    st.builds(_param, st.sampled_from(["limit", "offset"]), st.sampled_from(LIMITS), st.just("")),
    st.builds(_param, st.just("order"), st.sampled_from(ORDERS), st.sampled_from(["", ",."])),
    st.builds(_param, st.sampled_from(list(COLUMNS)), filter_values, st.sampled_from(["", ".,()"])),
    st.builds(_param, st.sampled_from(OTHER_PARAMS), filter_values, st.just("")),
    st.sampled_from(RAW_QUERY_PARTS),
)


@st.composite
def lists(draw: st.DrawFn) -> Request:
    parts = draw(st.lists(query_parts, max_size=4))
    query = "?" + "&".join(parts) if parts or draw(st.booleans()) else ""
    return Request("GET", "/api/fuzz" + query, "list")


GOOD_TOPICS = ["fuzz", "fuzz/1", "fuzz/2", "fuzz/3", "chat/room1"]
TOPICS = ["fuzz", "fuzz/1", "fuzz/abc", "todos", "*", "chat/room?", "chat/[ab]", "", " ", "a b", "\x00", "\x7f"]
TOPICS += ["é", "😀", "x" * 200, "x" * 201, "fuzz/", "/", "..", "%", "fuzz/\ud800"]
CURSORS = ["0", "1", "-1", "abc", "", " 5", "1e3", "٣", "99999999999999999999", "9223372036854775807"]
CURSORS += ["9223372036854775808", "9999999999999999999", "00000000000000000001"]
header_texts = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)


def _header_safe(text: str) -> bool:
    """What an HTTP client can put in a header at all (no CR, LF, NUL; Latin-1)."""
    return all(0x20 <= ord(char) <= 0xFF and char != "\x7f" for char in text)


@st.composite
def events(draw: st.DrawFn) -> Request:
    topic = weighted((6, st.sampled_from(GOOD_TOPICS)), (2, st.sampled_from(TOPICS)), (1, raw_strings))
    topics = draw(weighted((12, st.lists(topic, min_size=1, max_size=3)), (1, st.just([])), (1, st.just(["t"] * 33))))
    params = [("topic", topic) for topic in topics]
    cursor = weighted((4, st.integers(0, 60).map(str)), (2, st.sampled_from(CURSORS)), (1, raw_strings))
    if draw(st.booleans()):
        params.append(("lastEventId", draw(cursor)))
    if draw(st.integers(0, 4)) == 0:
        params.append(("access_token", draw(raw_strings)))
    query = "&".join(_param(name, value, "") for name, value in params)
    headers: tuple[tuple[str, str], ...] = ()
    if draw(st.integers(0, 2)) == 0:
        headers = (("Last-Event-ID", draw(weighted((3, cursor), (1, header_texts)).filter(_header_safe))),)
    return Request("GET", "/events?" + query if query else "/events", "events", headers=headers)


ODD_METHODS = ["FOO", "TRACE", "HEAD", "OPTIONS", "PROPFIND"]
ODD_TARGETS = ["/api/fuzz", "/api/fuzz/1", "/events?topic=fuzz", "/api/", "/api", "/api/nope", "/nope", "/"]
ODD_TARGETS += ["/readyz", "/healthz", "/metrics", "/api/fuzz/1/2", "/api/fuzz?id=1", "//api/fuzz", "/events/fuzz"]


@st.composite
def others(draw: st.DrawFn) -> Request:
    """Requests that may not write: odd methods and paths, writes without a row to address."""
    if draw(st.booleans()):
        return Request(draw(st.sampled_from(ODD_METHODS)), draw(st.sampled_from(ODD_TARGETS)), "other")
    method, target = draw(st.sampled_from([("PATCH", "/api/fuzz"), ("DELETE", "/api/fuzz"), ("POST", "/events")]))
    body = draw(object_bodies(False)) if method != "DELETE" else None
    return Request(method, target, "other", body, "application/json")


requests = weighted(
    (6, creates()), (3, updates()), (2, deletes()), (2, gets()), (2, lists()), (2, events()), (1, others())
)
sequences = st.lists(requests, min_size=1, max_size=MAX_REQUESTS)


def _member(text: str) -> J:
    """A scalar, or an object for a json/jsonb column, from its JSON text (for EXAMPLES)."""
    if text.startswith('"'):
        return J("string", text, json.loads(text))
    if text in ("true", "false", "null"):
        return J("bool", text, text == "true") if text != "null" else J("null", text, None)
    return J("object", text, ()) if text.startswith("{") else J("number", text, text)


def _post(*members: tuple[str, str], content_type: str | None = "application/json") -> Request:
    raw = "{" + ",".join(f'"{name}":{text}' for name, text in members) + "}"
    body = Body(raw.encode(), tuple((name, _member(text)) for name, text in members), True)
    return Request("POST", "/api/fuzz", "create", body, content_type)


def _post_raw(raw: bytes) -> Request:
    return Request("POST", "/api/fuzz", "create", Body(raw, None, False), "application/json")


# The faults of issue 9 that this fuzz found first, run on every run whatever the seed.
EXAMPLES = [
    [_post(("label", '"a"'), ("code", '"abcdefgh"'))],  # item 1: varchar(5) truncated
    [_post(("label", '"a"'), ("code", '"abcde   "'))],  # item 1: spaces past n dropped, as plain SQL does
    [
        _post(
            ("label", '"a"'),
            ("amount", "1182751036259450098810.880"),
            ("big", "9223372036854775807"),
            ("doc", '{"x":123456789012345678901234567890.123456789}'),
            ("raw", '{"x":0.1000000000000000055511151231257827}'),
        )
    ],  # item 2: numbers through floats
    [_post(("label", "-0"), ("tags", '"{1e2}"'), ("qty", "1e2"))],  # item 2: a number into text is its literal
    [_post(("label", '"a"'), ("ratio", "1e400"))],  # item 2: 1e400 is no double: refused, not Infinity
    [_post_raw(b'{"label":"a","ratio":NaN}'), _post_raw(b'{"label":"a","amount":-Infinity}')],  # item 3
    [_post_raw(b"[" * 20000), _post(("label", '"a"'), ("doc", '{"a":' * 1000 + "1" + "}" * 1000))],  # item 4
    [_post(("label", '"a"'), content_type=None), _post(("label", '"a"'), content_type="text/x-notjson")],  # item 6
    [_post(("label", '"a"'), ("raw", '{ "b" : [ 1 , "\\u00e9" ] }'))],  # json keeps its bytes as sent
    [Request("FOO", "/api/fuzz", "other"), Request("GET", "/api/fuzz?label=é", "list")],  # item 15
]
