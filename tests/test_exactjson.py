"""exactjson: numbers keep their text both ways; not-JSON and too-deep documents are refused."""

from __future__ import annotations

import pytest

from gateway.exactjson import MAX_DEPTH, JSONError, Number, dumps, loads


@pytest.mark.parametrize(
    "text",
    [
        "1182751036259450098810.880",
        "0.1000000000000000055511151231257827",
        "1e400",
        "-1.50E-3",
        "-0",
        "123456789012345678901234567890",
    ],
)
def test_a_number_keeps_its_literal_both_ways(text: str) -> None:
    value = loads(f'{{"x": [{text}]}}')
    number = value["x"][0]
    assert isinstance(number, Number) and number == text
    assert dumps(value) == f'{{"x":[{text}]}}'


def test_dumps_writes_strings_and_constants_as_json() -> None:
    value = loads('{"s": "é \\"q\\" \\u0000 \\ud83d\\ude00", "t": true, "f": false, "n": null, "e": [], "o": {}}')
    assert dumps(value) == '{"s":"é \\"q\\" \\u0000 😀","t":true,"f":false,"n":null,"e":[],"o":{}}'


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-Infinity", '{"x": [NaN]}', "{not json", "[1,]", "", '{"a": 1, "b": {"c": 1, "c": 2}}']
)
def test_loads_refuses_what_is_not_json(text: str) -> None:
    with pytest.raises(JSONError):
        loads(text)


def test_loads_and_dumps_allow_max_depth_and_refuse_one_more() -> None:
    deepest = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert dumps(loads(deepest)) == deepest
    with pytest.raises(JSONError, match="levels deep"):
        loads("[" + deepest + "]")
    with pytest.raises(JSONError, match="levels deep"):
        loads("[" * 100_000)  # past the interpreter's recursion limit: no RecursionError
    nested: list[object] = []
    for _ in range(MAX_DEPTH):
        nested = [nested]
    with pytest.raises(JSONError, match="levels deep"):
        dumps(nested)


def test_dumps_refuses_non_finite_floats() -> None:
    with pytest.raises(JSONError):
        dumps([float("nan")])
