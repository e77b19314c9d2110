"""A real PgBouncer (Debian's ``pgbouncer``) in front of the test Postgres, for the tests.

It listens on a free loopback port, with trust auth, and forwards every database
name to the test server (so the per-test databases work through it). PgBouncer
refuses to run as root: as root it is started with ``-u``, as the owner of the
server's socket directory (the embedded server's is private to its own user) or as
``nobody`` for a TCP server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extensions

BINARY = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
MISSING = "pgbouncer is not installed (Debian: apt-get install pgbouncer; .ci/run installs it)"


@dataclass
class PgBouncer:
    port: int
    config: Path
    log: Path
    process: subprocess.Popen[bytes]

    def dsn(self, database_dsn: str) -> str:
        """``database_dsn`` (a database on the test server), through this PgBouncer."""
        params = psycopg2.extensions.parse_dsn(database_dsn)
        return psycopg2.extensions.make_dsn(
            host="127.0.0.1", port=self.port, dbname=params["dbname"], user=params.get("user", "postgres")
        )

    def reload(self, pool_mode: str) -> None:
        """Switch the pool mode, as an operator would: edit the file, SIGHUP."""
        text = self.config.read_text()
        self.config.write_text("\n".join(_with_pool_mode(line, pool_mode) for line in text.splitlines()) + "\n")
        seen = self.log.read_text().count("got SIGHUP")
        self.process.send_signal(signal.SIGHUP)
        _wait_for(lambda: self.log.read_text().count("got SIGHUP") > seen, "PgBouncer to reload", self)


def _with_pool_mode(line: str, pool_mode: str) -> str:
    return f"pool_mode = {pool_mode}" if line.startswith("pool_mode") else line


@contextlib.contextmanager
def pgbouncer(
    server_dsn: str, pool_mode: str, round_robin: bool = False, ignore_options: bool = False
) -> Iterator[PgBouncer]:
    """PgBouncer in ``pool_mode`` in front of ``server_dsn``'s server, until the block ends.

    ``round_robin``: hand out idle servers oldest first (server_round_robin) instead
    of PgBouncer's default, the most recently released one. ``ignore_options``:
    accept (and drop) the libpq ``options`` startup parameter, which PgBouncer
    refuses by default (ignore_startup_parameters = options, a common setting).
    """
    assert BINARY is not None, MISSING
    params = psycopg2.extensions.parse_dsn(server_dsn)
    host = params.get("host", "/var/run/postgresql")
    user = params.get("user", "postgres")
    server = " ".join(
        f"{key}={value}"
        for key, value in (("host", host), ("port", params.get("port", "5432")), ("user", user))
        + ((("password", params["password"]),) if params.get("password") else ())
    )
    workdir = Path(tempfile.mkdtemp(prefix="pg-sse-gateway-pgbouncer-"))
    workdir.chmod(0o755)
    port = _free_port()
    config = workdir / "pgbouncer.ini"
    users = workdir / "users.txt"
    users.write_text(f'"{user}" ""\n')
    config.write_text(
        f"[databases]\n* = {server}\n\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\npool_mode = {pool_mode}\n"
        f"server_round_robin = {int(round_robin)}\n"
        + ("ignore_startup_parameters = options\n" if ignore_options else "")
    )
    for path in (config, users):
        path.chmod(0o644)
    log = workdir / "pgbouncer.log"
    command = [BINARY, str(config)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", _run_as(host)]
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    bouncer = PgBouncer(port, config, log, process)
    try:
        _wait_for(lambda: _accepts(port), "PgBouncer to listen", bouncer)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _run_as(host: str) -> str:
    if host.startswith("/") and Path(host).is_dir():
        return pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return "nobody"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(condition: Callable[[], bool], what: str, bouncer: PgBouncer, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if bouncer.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"waiting for {what}; PgBouncer's log:\n{bouncer.log.read_text()}")
        time.sleep(0.02)


def hold_servers(dsn: str, count: int) -> None:
    """Make PgBouncer open ``count`` server connections (all idle afterwards), by
    holding ``count`` transactions open at once."""
    conns = [psycopg2.connect(dsn) for _ in range(count)]
    try:
        for conn in conns:
            conn.cursor().execute("SELECT 1")  # psycopg2 opened a transaction: one server each
        for conn in conns:
            conn.commit()  # not closed mid-transaction: PgBouncer would drop that server
    finally:
        for conn in conns:
            conn.close()
