"""A bounded fuzz of /api and /events against a real gateway and a real Postgres.

Hypothesis sends sequences of requests to a table with many column types: writes
with bodies of every kind of JSON value (huge and precise numbers, unicode, NUL,
lone surrogates as escapes, deep nesting, wrong types, unknown columns), bodies
that are not JSON, odd content types, odd keys and query strings, and /events
requests with odd topics, cursors and Last-Event-ID values. After every request:

* never a 5xx, and every 4xx a JSON error body;
* the refusals the contract promises: 415 for a body not declared as JSON (a
  missing Content-Type included), a 4xx for a body that is not JSON (NaN and
  Infinity are not), for an unknown column and for a value Postgres cannot hold as
  sent (a varchar over its length, a number a double cannot hold, NUL in text);
* the table, read over plain SQL, equals the model: every 2xx write applied to it,
  every 4xx write left out, value for value (tests/fuzz_model.py says how).

Afterwards the gateway is healthy: /readyz answers 200, and a stream opened before
the fuzz, as well as a new one, receive a new change.

The run is bounded and the same on every machine: a fixed number of examples,
derandomized (the seed comes from the test's code), no example database written,
and ``print_blob`` so a failure prints the line that replays it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import psycopg2
from hypothesis import HealthCheck, example, given, settings
from yarl import URL

from .conftest import RunningGateway, run_sql, start_gateway
from .fuzz_model import COLUMNS, NULL, READ_TABLE, REFUSED, TABLE_SQL, Expect, Oracle, Row, differences, key_of
from .fuzz_requests import EXAMPLES, Request, media_of, sequences
from .problems import ERROR_KEYS
from .sse_client import SSEClient

MAX_EXAMPLES = 250
REQUEST_TIMEOUT = 30.0

# ---------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer at all (connection dropped)
    content_type: str
    body: bytes
    location: str | None = None


class NotStrictJSON(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise NotStrictJSON(f"{name} is not JSON")


def strict_json(raw: bytes) -> Any:
    """The body parsed as RFC 8259 JSON (no NaN/Infinity); Ellipsis if too deep to parse here."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants, parse_float=Decimal)
    except RecursionError:
        return ...


def check_error_body(request: Request, answer: Answer) -> None:
    """Every 4xx is PostgREST's error shape: {"code", "message", "details", "hint"} at the top level."""
    assert answer.content_type.startswith("application/json"), f"{answer.status} not JSON for {request!r}: {answer}"
    if request.method == "HEAD":
        return
    body = strict_json(answer.body)
    assert isinstance(body, dict) and set(body) == ERROR_KEYS, f"error body for {request!r}: {answer.body[:300]!r}"
    assert isinstance(body["code"], str) and isinstance(body["message"], str), f"error body {body!r}"
    assert all(body[k] is None or isinstance(body[k], str) for k in ("details", "hint")), f"error body {body!r}"


def check_answer(request: Request, answer: Answer) -> None:
    """No 5xx, no dropped connection; 4xx bodies are JSON errors; 2xx JSON bodies are strict JSON."""
    assert answer.status != 0, f"no HTTP answer to {request!r}: {answer.body!r}"
    assert answer.status < 500, f"{answer.status} for {request!r}: {answer.body[:500]!r}"
    if answer.status >= 400:
        check_error_body(request, answer)
    elif answer.content_type.startswith("application/json") and answer.body and request.method != "HEAD":
        strict_json(answer.body)


# ---------------------------------------------------------------- the run


class Fuzzer:
    """Runs hypothesis in a worker thread; HTTP goes through the test's loop, SQL over psycopg2."""

    def __init__(self, loop: asyncio.AbstractEventLoop, http: aiohttp.ClientSession, url: str, dsn: str) -> None:
        self.loop = loop
        self.http = http
        self.url = url
        self.dsn = dsn

    def run(self) -> None:
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                self.cur = cur
                self.oracle = Oracle(cur)

                @settings(
                    max_examples=MAX_EXAMPLES,
                    deadline=timedelta(seconds=15),
                    derandomize=True,
                    database=None,
                    print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                )
                @given(sequences)
                @examples(EXAMPLES)
                def fuzz_api_and_events(sequence: list[Request]) -> None:
                    self.run_sequence(sequence)

                fuzz_api_and_events()
        finally:
            conn.close()

    def send(self, request: Request) -> Answer:
        return asyncio.run_coroutine_threadsafe(self._send(request), self.loop).result(REQUEST_TIMEOUT + 5)

    async def _send(self, request: Request) -> Answer:
        headers = dict(request.headers)
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        try:
            async with (
                asyncio.timeout(REQUEST_TIMEOUT),
                self.http.request(
                    request.method,
                    URL(self.url + request.target, encoded=True),
                    data=request.body.raw if request.body is not None else None,
                    headers=headers,
                    skip_auto_headers=() if request.content_type is not None else ("Content-Type",),
                    allow_redirects=False,
                ) as resp,
            ):
                if resp.status == 200 and resp.content_type == "text/event-stream":
                    body = await _first_block(resp)
                else:
                    body = await resp.read()
                return Answer(resp.status, resp.headers.get("Content-Type", ""), body, resp.headers.get("Location"))
        except aiohttp.ClientError as exc:
            return Answer(0, "", repr(exc).encode())

    def read_table(self) -> list[tuple[Any, ...]]:
        self.cur.execute(READ_TABLE)
        return list(self.cur.fetchall())

    def run_sequence(self, sequence: list[Request]) -> None:
        self.cur.execute("TRUNCATE fuzz RESTART IDENTITY")
        model: dict[int, Row] = {}
        for request in sequence:
            expects = self.expectations(request)
            answer = self.send(request)
            check_answer(request, answer)
            stored = self.read_table()
            self.apply(request, answer, expects, model, stored)
            problems = differences(model, stored, self.cur)
            assert not problems, f"after {request!r} ({answer.status}):\n  " + "\n  ".join(problems)

    def expectations(self, request: Request) -> dict[str, Expect] | None:
        """What each column named in the body must hold if the write is accepted (last key wins)."""
        if request.body is None or request.body.fields is None:
            return None
        return {name: self.oracle.expect(name, value) for name, value in request.body.fields if name in COLUMNS}

    def apply(
        self,
        request: Request,
        answer: Answer,
        expects: dict[str, Expect] | None,
        model: dict[int, Row],
        stored: list[tuple[Any, ...]],
    ) -> None:
        """Check the status against the model, and apply an accepted write to the model."""
        ok = 200 <= answer.status < 300
        target = self.oracle.key(request.key) if request.key is not None else None
        if request.kind == "other":
            return
        if request.kind == "events":
            if ok:
                assert answer.content_type.startswith("text/event-stream"), f"{request!r}: {answer}"
                assert answer.body.startswith(b"retry:"), f"{request!r} stream began {answer.body[:200]!r}"
            return
        if request.kind == "list":
            if request.target == "/api/fuzz":
                assert answer.status == 200, f"{request!r}: {answer}"
                ids = [int(row["id"]) for row in strict_json(answer.body)]
                assert ids == sorted(model), f"GET /api/fuzz lists {ids}, the table holds {sorted(model)}"
            elif ok:
                assert isinstance(strict_json(answer.body), list), f"{request!r}: {answer.body[:300]!r}"
            return
        if request.kind == "get":
            if target in model:
                assert answer.status == 200, f"{request!r} answered {answer.status} for an existing row"
                row = strict_json(answer.body)
                assert row is ... or Decimal(row["id"]) == target, f"{request!r} answered row {answer.body[:300]!r}"
            else:
                assert not ok, f"{request!r} answered {answer.status} for a row that does not exist"
            return
        if request.kind == "delete":
            if target in model:
                assert ok, f"{request!r} answered {answer.status} for an existing row"
                del model[target]
            elif not _filtered(request):  # a filter that matches no row is a 204 that deletes nothing
                assert not ok, f"{request!r} answered {answer.status} for a row that does not exist"
            return
        self._apply_write(request, answer, expects, model, stored, target)

    def _apply_write(
        self,
        request: Request,
        answer: Answer,
        expects: dict[str, Expect] | None,
        model: dict[int, Row],
        stored: list[tuple[Any, ...]],
        target: int | None,
    ) -> None:
        ok = 200 <= answer.status < 300
        body = request.body
        assert body is not None
        creating = request.kind == "create"
        if media_of(request.content_type) == "not_json":  # item 6: a missing Content-Type too
            if creating or target in model:
                assert answer.status == 415, f"{request!r} answered {answer.status}, not 415"
            assert not ok, f"{request!r} answered {answer.status}"
            return
        if body.valid is False:  # items 3 and 4: NaN, Infinity, deep nesting, truncation...
            assert 400 <= answer.status < 500, f"{request!r} answered {answer.status} to a body that is not JSON"
            return
        if body.fields is None or expects is None:  # valid JSON, not an object: nothing to write
            return
        unknown = [name for name, _ in body.fields if name not in COLUMNS]
        refused = {name: j.text for name, j in body.fields if expects.get(name) is REFUSED}
        if unknown:
            assert not ok, f"{request!r} answered {answer.status} with unknown columns {unknown}"
            return
        if not ok:
            if answer.status == 404 and not creating:
                assert target not in model, f"{request!r} answered 404 for an existing row"
            return
        assert not refused, f"{request!r} answered {answer.status}, storing values not as sent: {refused}"
        if creating:
            added = sorted({int(row[0]) for row in stored} - set(model))
            assert len(added) == 1, f"{request!r} answered {answer.status} and added rows {added}"
            (key,) = added
            if answer.location is not None:
                assert answer.location == f"/api/fuzz/{key}", f"Location {answer.location} for row {key}"
            row = {name: NULL for name in COLUMNS}
            row["id"] = Expect("decimal", Decimal(key), str(key))
        else:
            if _filtered(request) and target not in model:
                return  # a filter that matches no row: a 204, nothing written (the table is checked)
            assert target in model, f"{request!r} answered {answer.status} for a row that does not exist"
            row = dict(model.pop(target))
            key = target
        row.update(expects)
        if "id" in expects:
            new_key = key_of(expects["id"])
            assert new_key is not None, f"{request!r} accepted id {expects['id']!r}"
            assert creating is False or new_key == key, f"{request!r} created row {key}, sent id {expects['id']}"
            key = new_key
        model[key] = row


def _filtered(request: Request) -> bool:
    """Addressed as /api/fuzz?id=eq.<key> rather than /api/fuzz/<key>."""
    return "?" in request.target


def examples(sequences: list[list[Request]]) -> Any:
    """hypothesis.example for each sequence."""

    def decorate(test: Any) -> Any:
        for sequence in reversed(sequences):
            test = example(sequence)(test)
        return test

    return decorate


async def _first_block(resp: aiohttp.ClientResponse) -> bytes:
    """A stream's first bytes up to the end of its first block (the retry/id preamble)."""
    data = b""
    async with asyncio.timeout(5):
        while b"\n\n" not in data:
            chunk = await resp.content.readany()
            if not chunk:
                break
            data += chunk
    return data


async def _until(client: SSEClient, marker: str) -> None:
    """Wait until ``client`` gets the event carrying ``marker`` (events before it are skipped)."""
    while marker not in (await client.next(timeout=10)).data:
        pass


async def test_fuzz_api_and_events_no_5xx_and_table_holds_exactly_the_accepted_writes(database: str) -> None:
    await run_sql(database, TABLE_SQL)
    async with start_gateway(database, expose=("fuzz",)) as gw:
        watcher = await gw.subscribe("fuzz")
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                fuzzer = Fuzzer(asyncio.get_running_loop(), http, gw.url, database)
                await asyncio.to_thread(fuzzer.run)
        finally:
            await _healthy_after(gw, watcher)


async def _healthy_after(gw: RunningGateway, watcher: SSEClient) -> None:
    """/readyz is 200, and both an old stream and a new one get a new change."""
    async with gw.http.get(gw.url + "/readyz") as resp:
        assert resp.status == 200, await resp.text()
    fresh = await gw.subscribe("fuzz")
    marker = "marker-" + secrets.token_hex(4)
    await gw.sql("INSERT INTO fuzz (id, label) SELECT coalesce(max(id), 0) + 1, %s FROM fuzz", [marker])
    await _until(fresh, marker)
    await _until(watcher, marker)
    await fresh.close()
    await watcher.close()
