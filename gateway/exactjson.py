"""JSON in and out without losing a digit: a number stays the text it was sent as.

Python's json module reads ``1182751036259450098810.880`` as a float (and ``1e400``
as ``inf``), so a value would reach Postgres already changed. Here a number literal
is read as a :class:`Number`, a ``str`` holding the literal exactly as sent, and
:func:`dumps` writes it back as that text: a numeric, bigint or float8 column, a
json or jsonb document and an array all receive the client's digits, and Postgres
alone decides what they mean (numeric keeps them all, float8 refuses ``1e400`` as out
of range).

:func:`loads` also refuses what Python would accept although it is not JSON
(``NaN``, ``Infinity``, ``-Infinity``), an object with a key twice (which of its
values was meant?), and documents nested deeper than MAX_DEPTH, which would
otherwise end in a RecursionError; :func:`dumps` holds the same bound.
Pure functions, no I/O.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

MAX_DEPTH = 256  # arrays and objects inside one another; serde_json allows 128, Go 10,000

_TOO_DEEP = f"it nests arrays and objects more than {MAX_DEPTH} levels deep"


class Number(str):
    """A JSON number literal, kept as the exact text it was sent as."""

    __slots__ = ()


class JSONError(ValueError):
    """Text that is not JSON this gateway accepts; the message says why."""


def loads(raw: bytes | str) -> Any:
    """Parse JSON with every number as a :class:`Number`; raise JSONError for anything else."""
    try:
        value = json.loads(
            raw, parse_int=Number, parse_float=Number, parse_constant=_not_json, object_pairs_hook=_object
        )
    except JSONError:
        raise
    except RecursionError:
        raise JSONError(_TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise JSONError(str(exc)) from None
    _check_depth(value)
    return value


def dumps(value: Any) -> str:
    """Compact JSON text with each :class:`Number` written as sent; strings keep non-ASCII as is."""
    out: list[str] = []
    _write(value, out, 0)
    return "".join(out)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object; a key sent twice is refused, not settled by keeping one of its values."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONError(f"the key {key[:100]!r} appears twice in one object")
            seen.add(key)
    return value


def _not_json(name: str) -> NoReturn:
    raise JSONError(f"{name} is not JSON (JSON has no NaN or infinite numbers); send a number or null")


def _check_depth(value: Any) -> None:
    """Without recursion, so a deep document cannot exhaust the stack while being checked."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            raise JSONError(_TOO_DEEP)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _write(value: Any, out: list[str], depth: int) -> None:
    if isinstance(value, Number):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is None or isinstance(value, bool):
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise JSONError(f"{value} is not JSON (JSON has no NaN or infinite numbers)")
        out.append(repr(value))
    elif isinstance(value, (dict, list, tuple)):
        if depth >= MAX_DEPTH:
            raise JSONError(_TOO_DEEP)
        if isinstance(value, dict):
            out.append("{")
            for index, (key, item) in enumerate(value.items()):
                if not isinstance(key, str):
                    raise TypeError(f"JSON object keys are strings, got {type(key).__name__}")
                out.append(("," if index else "") + json.dumps(key, ensure_ascii=False) + ":")
                _write(item, out, depth + 1)
            out.append("}")
        else:
            out.append("[")
            for index, item in enumerate(value):
                if index:
                    out.append(",")
                _write(item, out, depth + 1)
            out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")
