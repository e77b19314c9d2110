"""The SSE wire format: exact bytes, and what a spec-following parser reads back."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from httpx_sse._models import ServerSentEvent

from gateway.journal import Event
from gateway.sse import (
    HEARTBEAT,
    encode_comment,
    encode_event,
    encode_goodbye,
    encode_message,
    encode_preamble,
    event_data_json,
)


def parse(wire: bytes) -> list[ServerSentEvent]:
    """Every event a spec parser dispatches from ``wire`` (comments and blank blocks ignored)."""
    lines = SSELineDecoder()
    decoder = SSEDecoder()
    found = []
    for line in lines.decode(wire.decode("utf-8")) + lines.flush():
        event = decoder.decode(line)
        if event is not None:
            found.append(event)
    return found


def strict_json(text: str) -> object:
    """json.loads that refuses NaN/Infinity (a browser's JSON.parse does) and keeps decimals exact."""

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_float=Decimal, parse_constant=refuse)


def publish_event(payload_text: str | None, id_: int = 9, topic: str = "chat") -> Event:
    return Event(id=id_, tx=100, topic=topic, table=None, op="publish", pk=None, row=payload_text, old=None)


def test_encode_event_is_exactly_id_event_data_and_blank_line() -> None:
    event = Event(
        id=42, tx=7, topic="todos", table="todos", op="insert", pk="3", row='{"id":3,"title":"milk"}', old=None
    )

    wire = encode_event(event)

    assert wire == (
        b"id: 42\n"
        b"event: insert\n"
        b'data: {"id":42,"topic":"todos/3","table":"todos","op":"insert","row":{"id":3,"title":"milk"}}\n'
        b"\n"
    )


def test_encoded_event_parses_back_to_same_id_type_and_json() -> None:
    event = Event(
        id=5,
        tx=7,
        topic="todos",
        table="todos",
        op="update",
        pk="1",
        row='{"id":1,"done":true}',
        old='{"id":1,"done":false}',
    )

    (parsed,) = parse(encode_event(event))

    assert parsed.id == "5"
    assert parsed.event == "update"
    assert strict_json(parsed.data) == strict_json(event_data_json(event))
    assert strict_json(parsed.data) == {
        "id": 5,
        "topic": "todos/1",
        "table": "todos",
        "op": "update",
        "row": {"id": 1, "done": True},
        "old": {"id": 1, "done": False},
    }


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_pretty_printed_payload_is_sent_as_one_data_line(newline: str) -> None:
    # gateway.publish(topic, payload json) keeps the payload's layout, line breaks included.
    payload = newline.join(["{", '  "text": "line one\\nline two",', '  "tags": [', '    "a",', '    "b"', "  ]", "}"])
    wire = encode_event(publish_event(payload))

    data_lines = [line for line in wire.split(b"\n") if line.startswith(b"data:")]
    assert len(data_lines) == 1
    assert b"\r" not in wire
    assert wire.count(b"\n") == 4  # id, event, data, blank line
    (parsed,) = parse(wire)
    assert strict_json(parsed.data)["row"] == {"text": "line one\nline two", "tags": ["a", "b"]}


def test_one_line_row_text_is_passed_through_byte_for_byte() -> None:
    row = '{"b": 1,  "a" : [1.50, 2e3]}'  # key order, spacing and number spelling as Postgres wrote them

    wire = encode_event(Event(1, 1, "t", "t", "insert", "1", row, None))

    assert f'"row":{row}}}\n'.encode() in wire


def test_multibyte_utf8_survives_encoding_and_parsing() -> None:
    payload = '{\n  "greeting": "héllo wörld ✓ 日本語 🎉"\n}'  # multi-line, so it is re-serialized
    one_line = '{"name":"Zoë 🚀"}'  # one line, so it is passed through

    pretty_wire = encode_event(publish_event(payload))
    plain_wire = encode_event(Event(2, 1, "people", "people", "insert", "1", one_line, None))

    assert "日本語 🎉".encode() in pretty_wire  # raw UTF-8, not \\u escapes
    (pretty,) = parse(pretty_wire)
    (plain,) = parse(plain_wire)
    assert strict_json(pretty.data)["row"] == {"greeting": "héllo wörld ✓ 日本語 🎉"}
    assert strict_json(plain.data)["row"] == {"name": "Zoë 🚀"}


def test_pretty_printed_payload_with_huge_number_stays_valid_json() -> None:
    (parsed,) = parse(encode_event(publish_event('{\n  "n": 1e400\n}')))

    assert strict_json(parsed.data)["row"] == {"n": Decimal("1e400")}


def test_pretty_printed_payload_keeps_decimal_precision() -> None:
    (parsed,) = parse(encode_event(publish_event('{\n  "price": 0.12345678901234567891\n}')))

    assert strict_json(parsed.data)["row"] == {"price": Decimal("0.12345678901234567891")}


def test_publish_event_without_payload_has_null_row_and_no_old() -> None:
    (parsed,) = parse(encode_event(publish_event(None, id_=3, topic="alerts")))

    assert parsed.event == "publish"
    assert strict_json(parsed.data) == {"id": 3, "topic": "alerts", "table": None, "op": "publish", "row": None}


def test_preamble_for_fresh_client_sets_retry_and_cursor_id() -> None:
    wire = encode_preamble(2000, 17)

    assert wire == b"retry: 2000\nid: 17\n\n"
    (parsed,) = parse(wire)
    assert parsed.retry == 2000
    assert parsed.id == "17"
    assert parsed.data == ""  # an id-only block: a browser sets lastEventId and dispatches nothing


def test_preamble_for_resuming_client_has_no_id() -> None:
    wire = encode_preamble(500, None)

    assert wire == b"retry: 500\n\n"
    (parsed,) = parse(wire)
    assert parsed.retry == 500
    assert parsed.id == ""


def test_event_after_preamble_keeps_its_own_id() -> None:
    event = publish_event('{"x":1}', id_=18)

    parsed = parse(encode_preamble(2000, 17) + encode_event(event))

    assert [p.id for p in parsed] == ["17", "18"]
    assert strict_json(parsed[-1].data)["row"] == {"x": 1}


def test_multiline_comment_is_one_comment_line_per_line() -> None:
    wire = encode_comment("closing: slow consumer\nreconnect with Last-Event-ID")

    assert wire == b": closing: slow consumer\n: reconnect with Last-Event-ID\n"
    assert parse(wire) == []  # a parser ignores comments entirely


def test_comment_between_events_does_not_disturb_them() -> None:
    first = publish_event('{"n":1}', id_=1)
    second = publish_event('{"n":2}', id_=2)

    parsed = parse(encode_event(first) + encode_comment("a\r\nb") + HEARTBEAT + encode_event(second))

    assert [(p.id, strict_json(p.data)["row"]) for p in parsed] == [("1", {"n": 1}), ("2", {"n": 2})]


def test_heartbeat_and_goodbye_after_an_id_reach_httpx_sse_as_no_event() -> None:
    """httpx-sse dispatches every blank line once an id was seen: comments must bring none."""
    event = publish_event('{"n":1}', id_=1)
    wire = encode_preamble(2000, 0) + HEARTBEAT + encode_event(event) + HEARTBEAT + HEARTBEAT
    wire += encode_goodbye("server shutting down")

    preamble, *events = parse(wire)

    assert (preamble.id, preamble.retry, preamble.data) == ("0", 2000, "")  # the one empty event
    assert [(p.id, strict_json(p.data)["row"]) for p in events] == [("1", {"n": 1})]
    assert HEARTBEAT == b": heartbeat\n" and b"\n\n" not in encode_goodbye("a\nb")


def test_encode_message_frames_gateway_event_like_journal_events() -> None:
    data = json.dumps({"reason": "cursor_expired", "cursor": 3, "resume_from": 90})

    with_id = encode_message("refetch", data, event_id=90)
    without_id = encode_message("refetch", data)

    assert with_id == f"id: 90\nevent: refetch\ndata: {data}\n\n".encode()
    assert without_id == f"event: refetch\ndata: {data}\n\n".encode()
    (parsed,) = parse(with_id)
    assert (parsed.id, parsed.event, strict_json(parsed.data)) == (
        "90",
        "refetch",
        {"reason": "cursor_expired", "cursor": 3, "resume_from": 90},
    )


def row_event(op: str, row: str | None, old: str | None = None, pk: str | None = "42") -> Event:
    return Event(id=10, tx=500, topic="todos", table="todos", op=op, pk=pk, row=row, old=old)


# Event data JSON (moved here with the code from gateway/journal.py)


def test_insert_data_json_has_row_and_no_old() -> None:
    data = json.loads(event_data_json(row_event("insert", '{"id":42,"title":"milk"}')))

    assert data == {"id": 10, "topic": "todos/42", "table": "todos", "op": "insert", "row": {"id": 42, "title": "milk"}}
    assert "old" not in data


@pytest.mark.parametrize("op", ["update", "delete"])
def test_update_and_delete_data_json_carry_old_row(op: str) -> None:
    new = '{"id":42,"done":true}' if op == "update" else None
    data = json.loads(event_data_json(row_event(op, new, old='{"id":42,"done":false}')))

    assert data["old"] == {"id": 42, "done": False}
    assert data["row"] == (None if op == "delete" else {"id": 42, "done": True})
    assert data["op"] == op


def test_publish_data_json_has_null_table_and_no_old() -> None:
    event = Event(id=3, tx=2, topic="alerts", table=None, op="publish", pk=None, row="[1, 2]", old="ignored")

    data = json.loads(event_data_json(event))

    assert data == {"id": 3, "topic": "alerts", "table": None, "op": "publish", "row": [1, 2]}


def test_data_json_is_one_line_for_multiline_row_and_old() -> None:
    event = row_event("update", '{\n  "id": 42,\n  "note": "a\\nb"\n}', old='{\r\n  "id": 42\r\n}')

    text = event_data_json(event)

    assert "\n" not in text and "\r" not in text
    assert json.loads(text)["row"] == {"id": 42, "note": "a\nb"}
    assert json.loads(text)["old"] == {"id": 42}


def test_data_json_escapes_topic_with_quotes() -> None:
    event = Event(id=1, tx=1, topic='weird"topic\\', table=None, op="publish", pk=None, row=None, old=None)

    assert json.loads(event_data_json(event))["topic"] == 'weird"topic\\'
