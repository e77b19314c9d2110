"""/metrics in the Prometheus text format: what the parts counted, rendered on request.

:class:`Metrics` is the app's :class:`gateway.counters.Counters`: the hub and the
listener are handed it when they are built and report to it as they go; the HTTP
side adds request latencies. A scrape renders it, with two gauges read at that moment
(the hub's subscribers and topics, and the journal lag, which needs the database).
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left

import psycopg2
from aiohttp import web

from .state import GROUP, HUB, METRICS, POOL, STARTED
from .wake import Mode

# Upper bounds (seconds) of the request latency histogram buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Everything /metrics counts, one instance per app: a Counters, plus request latencies."""

    def __init__(self) -> None:
        self.events_in = 0
        self.deliveries = 0
        self.bytes_out = 0
        self.slow_consumers_closed = 0
        self.listener_up = False
        self.listener_reconnects = 0
        self.wake_mode: Mode | None = None
        # (method, route, status) -> [bucket counts..., +Inf count], sum
        self._latency: dict[tuple[str, str, int], tuple[list[int], list[float]]] = {}

    def events_read(self, count: int) -> None:
        self.events_in += count

    def delivered(self, count: int) -> None:
        self.deliveries += count

    def bytes_sent(self, count: int) -> None:
        self.bytes_out += count

    def slow_consumer_closed(self) -> None:
        self.slow_consumers_closed += 1

    def listener_connected(self, connected: bool) -> None:
        self.listener_up = connected

    def listener_reconnected(self) -> None:
        self.listener_reconnects += 1

    def listener_mode(self, mode: Mode) -> None:
        self.wake_mode = mode

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        counts, total = self._latency.setdefault((method, route, status), ([0] * (len(LATENCY_BUCKETS) + 1), [0.0]))
        counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        total[0] += seconds

    def latency_lines(self) -> list[str]:
        lines = [
            "# HELP gateway_http_request_duration_seconds Time to answer an API request (streams excluded).",
            "# TYPE gateway_http_request_duration_seconds histogram",
        ]
        for (method, route, status), (counts, total) in sorted(self._latency.items()):
            labels = f'method="{method}",route="{route}",status="{status}"'
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, counts, strict=False):
                cumulative += count
                lines.append(f'gateway_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {cumulative}')
            cumulative += counts[-1]
            lines.append(f'gateway_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {cumulative}')
            lines.append(f"gateway_http_request_duration_seconds_sum{{{labels}}} {total[0]:.6f}")
            lines.append(f"gateway_http_request_duration_seconds_count{{{labels}}} {cumulative}")
        return lines


def start_timer(request: web.Request) -> None:
    """Guard: note when an API request arrived (observed when its response starts).

    Streams are not timed (observe_response skips them): the first key stored on a
    request creates its state dict, which would then live as long as the stream.
    """
    if request.path != "/events":
        request[STARTED] = time.perf_counter()


async def observe_response(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: record an API request's latency by route pattern (not raw path)."""
    started = request.get(STARTED)
    if started is None or request.path == "/events":
        return
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].observe(request.method, route, response.status, time.perf_counter() - started)


async def journal_newest(request: web.Request) -> int | None:
    """The journal's newest id (0 when empty), or None when the database does not answer within 1 s."""
    try:
        async with asyncio.timeout(1.0), request.app[POOL].acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT coalesce(max(id), 0) FROM gateway.journal")
            (newest,) = await cur.fetchone()
            return int(newest)
    except (psycopg2.Error, OSError, TimeoutError):
        return None


async def metrics(request: web.Request) -> web.Response:
    stats = request.app[HUB].statistics()
    counted = request.app[METRICS]
    newest = await journal_newest(request)
    rows: list[tuple[str, str, str, float | None]] = [
        ("gateway_subscribers", "gauge", "Open /events streams.", stats.subscribers),
        ("gateway_topics", "gauge", "Topics with at least one subscriber.", stats.topics),
        ("gateway_events_in_total", "counter", "Events read from the journal.", counted.events_in),
        ("gateway_deliveries_total", "counter", "Events queued to subscribers.", counted.deliveries),
        (
            "gateway_bytes_out_total",
            "counter",
            "Bytes written to SSE streams.",
            counted.bytes_out,
        ),
        (
            "gateway_slow_consumers_closed_total",
            "counter",
            "Subscribers closed for falling behind.",
            counted.slow_consumers_closed,
        ),
        ("gateway_listener_connected", "gauge", "1 while the LISTEN connection is up.", int(counted.listener_up)),
        (
            "gateway_listener_reconnects_total",
            "counter",
            "Times the LISTEN connection was lost.",
            counted.listener_reconnects,
        ),
        (
            "gateway_listener_polling",
            "gauge",
            "1 while the listener polls the journal (writers skip NOTIFY), 0 while it sleeps.",
            int(counted.wake_mode is Mode.POLLING),
        ),
        ("gateway_journal_position", "gauge", "Highest journal id the listener delivered.", stats.position),
        (
            "gateway_journal_lag_events",
            "gauge",
            "Committed journal rows the listener has not delivered yet.",
            None if newest is None else max(0, newest - stats.position),
        ),
    ]
    group = request.app.get(GROUP)
    if group is not None:  # --workers N: the whole group's figures (gateway.group)
        rows = group.aggregate(rows)
    lines: list[str] = []
    for name, kind, help_text, value in rows:
        if value is not None:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    if group is not None:
        lines += group.worker_lines()
    lines += counted.latency_lines()
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
