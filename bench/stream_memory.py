"""Where does the memory of one idle SSE stream go?

Runs a server in this process (the gateway's app, or a bare aiohttp handler that
holds a ``StreamResponse`` open: the floor aiohttp itself sets), opens ``--streams``
idle streams to it from a client process (bench/fanout.py's client), and compares before and
after:

* RSS per stream, and the bytes glibc's main malloc arena handed out (objects over
  512 bytes, libuv handles; pymalloc's small objects live in arenas of their own);
* live Python objects per stream, by type (``gc.get_objects()`` plus the objects
  the gc does not track: bytes, str, ...) with their ``sys.getsizeof`` sizes;
* with ``--trace``, tracemalloc's allocations per stream, grouped by the first
  frame of our code (gateway/, aiohttp_sse) or else of the library that made them.

A warm-up round of 500 streams is opened and closed first, so caches, free lists and
first-time imports are not counted as per-stream memory. The memory it frees is
reused by the first streams measured, so RSS per stream reads low for small
``--streams``: use 10000 for RSS, 1000-2000 for the object and tracemalloc tables.

Run from the repo root after ``pip install -e '.[test]'``::

    python bench/stream_memory.py --streams 2000 --trace
    python bench/stream_memory.py --server bare --streams 10000
    python bench/stream_memory.py --loop asyncio   # default: uvloop when installed
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import inspect
import os
import sys
import tracemalloc
from collections import Counter
from typing import Any

from aiohttp import web
from fanout import Connected, FanoutClient
from harness import HOST, TOPIC_PATH, ClientProcess, init_database, postgres_server, raise_file_limit, scratch_database


async def bare_stream(request: web.Request) -> web.StreamResponse:
    """The least an aiohttp SSE endpoint can do: headers, one write, then wait."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"retry: 1000\n\n")
    await asyncio.get_running_loop().create_future()
    return response


_BARE_LINES = range(
    bare_stream.__code__.co_firstlineno,
    bare_stream.__code__.co_firstlineno + len(inspect.getsource(bare_stream).splitlines()),
)


def bare_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/events", bare_stream)
    return app


def gateway_app(dsn: str, streams: int) -> web.Application:
    from gateway.app import create_app
    from gateway.config import load_settings

    limit = str(streams + 1000)
    env = {"GATEWAY_MAX_SUBSCRIBERS": limit, "GATEWAY_MAX_SUBSCRIBERS_PER_CLIENT": limit, "DATABASE_URL": dsn}
    return create_app(load_settings(None, env), dsn)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def malloc_in_use() -> tuple[int, int]:
    """(bytes malloc handed out, bytes it holds free) over all arenas; glibc only."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError):
        return 0, 0
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd, info.fordblks


def objects_by_type() -> tuple[Counter[str], Counter[str]]:
    """(count, bytes) of live objects by type, including untracked referents one level down."""
    gc.collect()
    count: Counter[str] = Counter()
    size: Counter[str] = Counter()
    seen: set[int] = set()
    tracked = gc.get_objects()
    seen.update((id(seen), id(tracked), id(count), id(size)))
    for obj in tracked:
        seen.add(id(obj))
    for obj in tracked:
        if obj is seen or obj is count or obj is size:
            continue
        name = type(obj).__qualname__
        count[name] += 1
        size[name] += sys.getsizeof(obj)
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not gc.is_tracked(ref):
                seen.add(id(ref))
                rname = type(ref).__qualname__
                count[rname] += 1
                size[rname] += sys.getsizeof(ref)
    del tracked
    return count, size


def _frame_group(tb: tracemalloc.Traceback) -> str:
    """Attribute an allocation to our code if any frame is ours, else to the innermost library."""
    for frame in reversed(tb):  # tracemalloc orders frames oldest first
        name = frame.filename
        if "/gateway/" in name or "aiohttp_sse" in name or (name == __file__ and frame.lineno in _BARE_LINES):
            return f"{_short(frame.filename)}:{frame.lineno}"
    return f"{_short(tb[-1].filename)}:{tb[-1].lineno}"


def _short(filename: str) -> str:
    return "/".join(filename.rsplit("/", 2)[-2:])


async def run(args: argparse.Namespace, dsn: str | None, client: ClientProcess) -> None:
    loop = asyncio.get_running_loop()
    app = bare_app() if args.server == "bare" else gateway_app(dsn or "", args.streams)
    if args.server == "bare":
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    else:
        from gateway.app import create_runner

        runner = create_runner(app)  # what the CLI serves with
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]

    def call(command: str, *args: object) -> asyncio.Future[Any]:
        return loop.run_in_executor(None, lambda: client.call(command, *args, limit_s=300))

    print(f"{args.server} on {type(loop).__module__.split('.')[0]}, port {port}", flush=True)

    # Warm-up: caches, free lists, lazily created objects are not per-stream costs.
    await call("connect", HOST, port, TOPIC_PATH, min(args.streams, 500), 100)
    await asyncio.sleep(0.5)
    await call("close")
    await asyncio.sleep(1.0)
    gc.collect()

    if args.trace:
        tracemalloc.start(args.trace_depth)
    count0, size0 = objects_by_type() if not args.trace else (Counter(), Counter())
    gc.collect()
    snap0 = tracemalloc.take_snapshot() if args.trace else None
    rss0, (malloc0, free0) = rss(), malloc_in_use()
    traced0 = tracemalloc.get_traced_memory()[0] if args.trace else 0

    result: Connected = await call("connect", HOST, port, TOPIC_PATH, args.streams, 100)
    n, failed = result.connected, result.failed
    del result  # the reply itself is not a stream's memory
    await asyncio.sleep(2.0)
    gc.collect()
    rss1, (malloc1, free1) = rss(), malloc_in_use()
    traced1 = tracemalloc.get_traced_memory()[0] if args.trace else 0
    snap1 = tracemalloc.take_snapshot() if args.trace else None
    count1, size1 = objects_by_type() if not args.trace else (Counter(), Counter())

    print(f"{n} streams connected ({failed} failed)")
    print(f"RSS per stream                 {(rss1 - rss0) / n:8.0f} B  ({(rss1 - rss0) / n / 1024:.2f} KiB)")
    print(f"malloc in use per stream       {(malloc1 - malloc0) / n:8.0f} B  (malloc free: {free0} -> {free1})")
    if args.trace:
        print(f"tracemalloc per stream         {(traced1 - traced0) / n:8.0f} B  (Python allocations incl. pymalloc)")
    total_size = sum((size1 - size0).values())
    objects = sum((count1 - count0).values())
    print(f"objects per stream             {objects / n:8.1f}  ({total_size / n:.0f} B getsizeof)")
    print("\nlive objects per stream, by type (count, getsizeof bytes):")
    for name, diff in sorted((size1 - size0).items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {(count1[name] - count0[name]) / n:6.2f}  {diff / n:7.0f} B  {name}")
    if snap0 is not None and snap1 is not None:
        stats = snap1.compare_to(snap0, "traceback")
        groups: Counter[str] = Counter()
        files: Counter[str] = Counter()
        for stat in stats:
            if stat.size_diff:
                groups[_frame_group(stat.traceback)] += stat.size_diff
                files[_short(stat.traceback[-1].filename)] += stat.size_diff
        print("\ntracemalloc per stream, by innermost file:")
        for name, diff in files.most_common(args.top):
            print(f"  {diff / n:7.0f} B  {name}")
        print("\ntracemalloc per stream, by the first frame of our code (else the library's line):")
        for name, diff in groups.most_common(args.top):
            print(f"  {diff / n:7.0f} B  {name}")
        if args.tracebacks:
            print("\nlargest tracebacks:")
            for stat in sorted(stats, key=lambda s: -s.size_diff)[: args.tracebacks]:
                print(f"  {stat.size_diff / n:7.0f} B  {stat.count_diff / n:5.2f} blocks")
                for line in stat.traceback.format(most_recent_first=True)[:16]:
                    print("      " + line)
    await call("close")
    await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("gateway", "bare"), default="gateway")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--trace", action="store_true", help="tracemalloc (slower, and RSS includes its own cost)")
    parser.add_argument("--trace-depth", type=int, default=30)
    parser.add_argument("--tracebacks", type=int, default=0, help="print this many of the largest tracebacks")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    raise_file_limit(args.streams + 1024)
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    client = ClientProcess(FanoutClient, "stream-memory-client")
    try:
        if args.server == "bare":
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(run(args, None, client))
            return 0
        with postgres_server() as (server_dsn, _), scratch_database(server_dsn) as dsn:
            init_database(dsn)
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(run(args, dsn, client))
    finally:
        client.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
