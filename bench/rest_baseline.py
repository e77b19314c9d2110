"""BASELINE for bench/rest.py: the smallest aiohttp + aiopg handler that answers its four requests.

This is NOT the gateway. It is what a person writes by hand for exactly the requests
the benchmark sends, with none of the gateway's work (no grammar, no catalog, no
roles, no error shapes), so the ratio says what that work costs:

* ``GET /api/todos?select=*&id=eq.N`` and ``GET /api/todos?select=*&id=gt.N&order=id.asc&limit=20``:
  one query that has Postgres build the JSON array (``json_agg``), as PostgREST does,
  sent as the body;
* ``POST /api/todos`` with ``{"title": ...}``: one INSERT, ``201`` without a body
  (PostgREST's default, ``return=minimal``);
* ``PATCH /api/todos?id=eq.N`` with ``{"done": ...}``: one UPDATE, ``204``.

The same aiopg pool size as the gateway's default (``GATEWAY_POOL_SIZE``, 10), the same
runner options as its cli.py (handler cancellation, no access log), the same table
with the gateway's capture trigger on it (so a write costs the database the same).
Anything else is a 400 with a plain-text reason.

Run: ``DATABASE_URL=... python bench/rest_baseline.py [--port 0]``; it prints
``rest baseline listening on http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator

import aiopg
from aiohttp import web

POOL = web.AppKey("pool", aiopg.Pool)
DSN = web.AppKey("dsn", str)
POOL_SIZE = 10

ONE_ROW = "SELECT coalesce(json_agg(t), '[]')::text FROM (SELECT * FROM public.todos WHERE id = %s) AS t"
PAGE = (
    "SELECT coalesce(json_agg(t), '[]')::text FROM (SELECT * FROM public.todos WHERE id > %s ORDER BY id LIMIT %s) AS t"
)
INSERT = "INSERT INTO public.todos (title) VALUES (%s)"
UPDATE = "UPDATE public.todos SET done = %s WHERE id = %s"


def _id_filter(request: web.Request, op: str) -> int:
    value = request.query.get("id", "")
    if not value.startswith(op + ".") or not value[len(op) + 1 :].isdigit():
        raise web.HTTPBadRequest(text=f"expected id={op}.N")
    return int(value[len(op) + 1 :])


async def _body(request: web.Request, key: str) -> object:
    body = json.loads(await request.read())
    if not isinstance(body, dict) or set(body) != {key}:
        raise web.HTTPBadRequest(text=f'expected {{"{key}": ...}}')
    return body[key]


async def read(request: web.Request) -> web.Response:
    if request.query.get("select", "*") != "*":
        raise web.HTTPBadRequest(text="expected select=*")
    if "limit" in request.query:
        if request.query.get("order") != "id.asc" or not request.query["limit"].isdigit():
            raise web.HTTPBadRequest(text="expected order=id.asc&limit=N")
        query, params = PAGE, (_id_filter(request, "gt"), int(request.query["limit"]))
    else:
        query, params = ONE_ROW, (_id_filter(request, "eq"),)
    async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(query, params)
        (body,) = await cur.fetchone()
    return web.Response(text=body, content_type="application/json")


async def create(request: web.Request) -> web.Response:
    title = await _body(request, "title")
    async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(INSERT, (title,))
    return web.Response(status=201)


async def update(request: web.Request) -> web.Response:
    row_id = _id_filter(request, "eq")
    done = await _body(request, "done")
    async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(UPDATE, (done, row_id))
    return web.Response(status=204)


async def _pool(app: web.Application) -> AsyncIterator[None]:
    app[POOL] = await aiopg.create_pool(app[DSN], minsize=1, maxsize=POOL_SIZE, timeout=10.0)
    yield
    app[POOL].close()
    await app[POOL].wait_closed()


def build_app(dsn: str) -> web.Application:
    app = web.Application()
    app[DSN] = dsn
    app.cleanup_ctx.append(_pool)
    app.router.add_get("/api/todos", read)
    app.router.add_post("/api/todos", create)
    app.router.add_patch("/api/todos", update)
    return app


async def run(dsn: str, host: str, port: int) -> None:
    runner = web.AppRunner(build_app(dsn), handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        print(f"rest baseline listening on http://{host}:{runner.addresses[0][1]}", flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
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
        parser.error("set DATABASE_URL (a database with the demo table todos)")
    asyncio.run(run(dsn, args.host, args.port))


if __name__ == "__main__":
    main()
