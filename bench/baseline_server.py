"""BASELINE for bench/fanout.py: the typical design, "a queue and a task per subscriber".

This is NOT the gateway. It is the small SSE server most people write first with
aiohttp + aiohttp-sse + aiopg, kept honest so the benchmark compares designs, not
a straw man:

* the same database and the same journal as the gateway (``gateway.journal``, filled
  by the gateway's capture triggers, ``NOTIFY gateway_journal``);
* one dedicated aiopg connection LISTENs; on a notification (all pending ones are
  drained first, so a burst does not cause one query per transaction) it reads the
  journal rows with ``id > last_seen ORDER BY id``, builds each event's JSON once
  and puts ``(id, op, data)`` on the ``asyncio.Queue`` of every subscriber of the
  event's table or row topic;
* each ``/events`` handler is that subscriber's task: it loops
  ``event = await queue.get(); await resp.send(data, id=..., event=...)``, i.e.
  aiohttp-sse's per-client formatting and one write per event per client.

Simplifications a real server of this design would also have: ``id > last_seen``
misses a transaction that took a lower id but committed later, there is no resume
and queues are unbounded (a slow client grows memory without limit). None of this
changes the per-event work the benchmark measures.

Run: ``DATABASE_URL=... python bench/baseline_server.py [--port 0]``; it prints
``baseline (typical design) listening on http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator

import aiopg
from aiohttp import web
from aiohttp_sse import EventSourceResponse

CHANNEL = "gateway_journal"
SUBSCRIBERS = web.AppKey("subscribers", dict[str, set[asyncio.Queue[tuple[int, str, str]]]])
DSN = web.AppKey("dsn", str)
READY = web.AppKey("ready", asyncio.Event)


async def events(request: web.Request) -> web.StreamResponse:
    topics = set(request.query.getall("topic", []))
    if not topics:
        raise web.HTTPBadRequest(text="name a topic: /events?topic=todos")
    by_topic = request.app[SUBSCRIBERS]
    queue: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()
    for topic in topics:
        by_topic.setdefault(topic, set()).add(queue)
    response = EventSourceResponse()
    try:
        await response.prepare(request)
        async with response:
            await response.write(b"retry: 2000\n\n")  # aiohttp sends the headers with the first write
            while True:
                event_id, op, data = await queue.get()
                await response.send(data, id=str(event_id), event=op)
    except ConnectionError:
        pass
    finally:
        for topic in topics:
            subs = by_topic.get(topic)
            if subs is not None:
                subs.discard(queue)
                if not subs:
                    del by_topic[topic]
    return response


async def listen(app: web.Application) -> None:
    """The one LISTEN connection: notification -> read new journal rows -> every queue."""
    by_topic = app[SUBSCRIBERS]
    async with aiopg.connect(app[DSN]) as conn, conn.cursor() as cur:
        await cur.execute(f"LISTEN {CHANNEL}")
        await cur.execute("SELECT coalesce(max(id), 0) FROM gateway.journal")
        (last_seen,) = await cur.fetchone()
        app[READY].set()
        while True:
            await conn.notifies.get()
            while not conn.notifies.empty():
                conn.notifies.get_nowait()
            await cur.execute(
                'SELECT id, topic, table_name, op, pk, "row", old FROM gateway.journal WHERE id > %s ORDER BY id',
                (last_seen,),
            )
            for event_id, topic, table, op, pk, row, old in await cur.fetchall():
                last_seen = event_id
                row_topic = f"{topic}/{pk}" if pk is not None else topic
                event = {"id": event_id, "topic": row_topic, "table": table, "op": op, "row": row}
                if op in ("update", "delete"):
                    event["old"] = old
                message = (event_id, op, json.dumps(event))
                queues = by_topic.get(topic, set()) | by_topic.get(row_topic, set())
                for queue in queues:
                    queue.put_nowait(message)


async def _listener(app: web.Application) -> AsyncIterator[None]:
    app[READY] = asyncio.Event()
    task = asyncio.create_task(listen(app))
    ready = asyncio.create_task(app[READY].wait())
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()  # raises the connection error
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(dsn: str) -> web.Application:
    app = web.Application()
    app[DSN] = dsn
    app[SUBSCRIBERS] = {}
    app.cleanup_ctx.append(_listener)
    app.router.add_get("/events", events)
    return app


async def serve(dsn: str, host: str, port: int) -> None:
    # Same runner options as the gateway's cli.py: handler cancellation, no access log.
    runner = web.AppRunner(create_app(dsn), handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"baseline (typical design) listening on http://{host}:{bound}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        parser.error("set DATABASE_URL (a database the gateway's schema was applied to)")
    asyncio.run(serve(dsn, args.host, args.port))


if __name__ == "__main__":
    main()
