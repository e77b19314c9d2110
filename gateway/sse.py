"""The SSE wire format, bytes in and bytes out: no sockets, no aiohttp.

Lines end in a bare ``\\n`` (the spec accepts ``\\n``, ``\\r`` and ``\\r\\n``; one byte
is the cheapest). ``data:`` always holds one JSON document on one line, so a
browser's ``event.data`` is exactly that JSON.
"""

from __future__ import annotations

import json

from .journal import Event

# Comments (the heartbeat, a goodbye) are comment lines with no blank line after them.
# A blank line ends a block, and some parsers dispatch every block once an id was
# seen: httpx-sse 0.4 yields an event with empty data for each, so a heartbeat that
# ended in a blank line reached its users as an event to json.loads. A comment line
# needs no blank line (a parser ignores it wherever it stands), and the gateway only
# writes whole blocks, so a comment never lands inside an event.
HEARTBEAT = b": heartbeat\n"


def encode_event(event: Event) -> bytes:
    """The bytes of one event, encoded once and shared by every subscriber."""
    return f"id: {event.id}\nevent: {event.op}\ndata: {event_data_json(event)}\n\n".encode()


def event_data_json(event: Event) -> str:
    """An event's SSE data: one JSON object on one line, row text passed through untouched."""
    parts = [
        f'{{"id":{event.id},"topic":{json.dumps(event.main_topic)},',
        f'"table":{json.dumps(event.table)},"op":"{event.op}","row":{_one_line(event.row)}',
    ]
    if event.op in ("update", "delete"):
        parts.append(f',"old":{_one_line(event.old)}')
    parts.append("}")
    return "".join(parts)


def encode_change(
    event: Event, event_type: str, moved: str | None, row: str | None, old: str | None, view: int | None = None
) -> bytes:
    """An event as one filtered view sees it (gateway.views): its own event type, the row
    and old row as the view selects them, ``"moved"`` when an update moved the row
    into or out of the view, and ``"view"`` (its place among the connection's views)
    on a connection that holds several."""
    parts = [
        f'{{"id":{event.id},"topic":{json.dumps(event.main_topic)},',
        f'"table":{json.dumps(event.table)},"op":"{event.op}","row":{_one_line(row)}',
    ]
    if event.op in ("update", "delete"):
        parts.append(f',"old":{_one_line(old)}')
    if moved is not None:
        parts.append(f',"moved":"{moved}"')
    if view is not None:
        parts.append(f',"view":{view}')
    parts.append("}")
    return f"id: {event.id}\nevent: {event_type}\ndata: {''.join(parts)}\n\n".encode()


def _one_line(json_text: str | None) -> str:
    """JSON text without raw line breaks (a json value may keep the writer's layout).

    In valid JSON a raw CR or LF can only be whitespace between tokens (inside a
    string it must be escaped), so turning them into spaces changes no value; a
    parse and re-dump would round big or precise numbers.
    """
    if json_text is None:
        return "null"
    if "\n" in json_text or "\r" in json_text:
        return json_text.replace("\r", " ").replace("\n", " ")
    return json_text


def encode_message(event_type: str, data_json: str, event_id: int | None = None) -> bytes:
    """A gateway-made event (``refetch``), same framing as journal events."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}\n")
    lines.append(f"event: {event_type}\n")
    lines.append(f"data: {data_json}\n\n")
    return "".join(lines).encode()


def encode_preamble(retry_ms: int, cursor: int | None) -> bytes:
    """The first bytes of a stream: the reconnect delay and, for a fresh client, a cursor.

    An ``id:`` field with no ``data:`` sets the browser's lastEventId without
    dispatching an event, so a client that reconnects before its first event still
    resumes from the moment it connected.
    """
    text = f"retry: {retry_ms}\n"
    if cursor is not None:
        text += f"id: {cursor}\n"
    return (text + "\n").encode()


def encode_comment(text: str) -> bytes:
    """Comment lines, one per line of ``text``: ignored by every parser, visible in curl -N.

    No blank line follows (see HEARTBEAT): nothing a parser could dispatch as an event.
    """
    return "".join(f": {line}\n" for line in text.splitlines()).encode()


def encode_goodbye(reason: str) -> bytes:
    """The last bytes of a stream the server ends: ``reason`` says why and what to do next."""
    return encode_comment(f"closing: {reason}")
