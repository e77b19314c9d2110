"""The exact text of each member of a JSON object, for ``json`` columns, which keep text as sent.

A ``json`` column stores the text it is given byte for byte (``jsonb`` stores a
parsed value instead): spacing, key order, escapes and number literals all stay as
the client wrote them, and PostgREST hands Postgres the client's own text. A value
parsed by Python and serialised again is another text (``{ "a" : [ 1 ] }`` becomes
``{"a": [1]}``, ``"\\u00e9"`` becomes ``"é"``), so for a ``json`` column the gateway
takes the member's text from the body itself.

Theory of operation: the body has already been parsed as a JSON object, so this
only walks its top level. A key is read with the json module's own string scanner
and a value's extent with ``raw_decode``, which reports where the value ends; the
text between is the value exactly as sent. Pure functions, no I/O.
"""

from __future__ import annotations

import json
from json.decoder import scanstring  # type: ignore[attr-defined]

_SPACE = " \t\n\r"  # the only whitespace JSON has (RFC 8259, section 2)
# Only where each value ends matters: numbers stay text (int() refuses more than
# 4,300 digits, which exactjson accepted), as they do in gateway.exactjson.
_DECODER = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)


def decode_body(raw: bytes) -> str:
    """The body as text, decoded as ``json.loads`` decodes bytes (UTF-8, -16 or -32)."""
    return raw.decode(json.detect_encoding(raw), "surrogatepass")


def member_texts(text: str) -> dict[str, str]:
    """``{key: the member value's JSON text exactly as in text}``; a later key wins, as in ``json.loads``.

    ``text`` must already have parsed as a JSON object; anything else raises ValueError.
    """
    members: dict[str, str] = {}
    pos = _skip(text, 0)
    if text[pos : pos + 1] != "{":
        raise ValueError("not a JSON object")
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "}":
        return members
    while True:
        if text[pos : pos + 1] != '"':
            raise ValueError(f"expected a key at {pos}")
        key, pos = scanstring(text, pos + 1)
        pos = _skip(text, pos)
        if text[pos : pos + 1] != ":":
            raise ValueError(f"expected ':' at {pos}")
        start = _skip(text, pos + 1)
        _, end = _DECODER.raw_decode(text, start)
        members[key] = text[start:end]
        pos = _skip(text, end)
        if text[pos : pos + 1] == "}":
            return members
        if text[pos : pos + 1] != ",":
            raise ValueError(f"expected ',' or '}}' at {pos}")
        pos = _skip(text, pos + 1)


def element_member_texts(text: str) -> list[dict[str, str]]:
    """:func:`member_texts` of each object of a JSON array, in order.

    ``text`` must already have parsed as a JSON array of objects; anything else raises ValueError.
    """
    elements: list[dict[str, str]] = []
    pos = _skip(text, 0)
    if text[pos : pos + 1] != "[":
        raise ValueError("not a JSON array")
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "]":
        return elements
    while True:
        _, end = _DECODER.raw_decode(text, pos)
        elements.append(member_texts(text[pos:end]))
        pos = _skip(text, end)
        if text[pos : pos + 1] == "]":
            return elements
        if text[pos : pos + 1] != ",":
            raise ValueError(f"expected ',' or ']' at {pos}")
        pos = _skip(text, pos + 1)


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos
