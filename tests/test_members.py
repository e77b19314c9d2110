"""gateway.members: each member's value text exactly as in the body, whatever its spacing."""

from __future__ import annotations

import json

import pytest

from gateway.members import decode_body, member_texts

CASES = [
    ("{}", {}),
    (" { } ", {}),
    ('{"a":1}', {"a": "1"}),
    ('{ "a" : [ 1 , 2 ] , "b":{"x" :"y"} }', {"a": "[ 1 , 2 ]", "b": '{"x" :"y"}'}),
    ('{"n": 1182751036259450098810.880, "e": 1E+2}', {"n": "1182751036259450098810.880", "e": "1E+2"}),
    ('{"s": "\\u00e9\\"}{,:", "t": "\\ud83d\\ude00"}', {"s": '"\\u00e9\\"}{,:"', "t": '"\\ud83d\\ude00"'}),
    ('{"l\\u0061bel": true, "z": null}', {"label": "true", "z": "null"}),
    ('{"k": 1, "k": [ 2 ]}', {"k": "[ 2 ]"}),  # a later key wins, as in json.loads
    ('\n\t{"a":\r\n{"b":\t[]}}\n', {"a": '{"b":\t[]}'}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_member_texts_are_the_values_exactly_as_sent(text: str, expected: dict[str, str]) -> None:
    assert member_texts(text) == expected
    parsed = json.loads(text)
    assert {key: json.loads(value) for key, value in member_texts(text).items()} == parsed


@pytest.mark.parametrize("text", ["[]", '"a"', "1", ""])
def test_member_texts_refuses_what_is_not_an_object(text: str) -> None:
    with pytest.raises(ValueError):
        member_texts(text)


def test_decode_body_reads_bytes_as_json_loads_does() -> None:
    text = '{"a": "é"}'
    for raw in (text.encode(), text.encode("utf-16"), text.encode("utf-32-le"), b"\xef\xbb\xbf" + text.encode()):
        assert decode_body(raw) == text
