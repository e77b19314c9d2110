"""How the hub's filtered subscriptions scale: grouped and indexed versus per subscriber.

Usage: python bench/filters.py [--events 20000] [--page 10] [--owners 10000]

An in-process benchmark of the hub alone (gateway.hub + gateway.views), with the
real predicate compiler and SSE encoder and sinks that count bytes: no HTTP, no
Postgres, so it measures what issue 12 item 4 is about (the hub's CPU per event as
subscribers grow), not end-to-end latency. Both modes run in the same process on the
same events, alternating:

* **gateway**: the hub as it is: equal views share a group, ``owner=eq.N`` views are
  found through the equality index, each event is encoded once per distinct
  (event type, move, select);
* **baseline**: every subscription's filter evaluated for every event of its table,
  and each delivery encoded for its subscriber (what a hub without groups or an
  index does).

Subscribers: ``--subscribers`` views ``owner=eq.N`` (N = 0, 1, ...), plus 100 with a
range filter (``owner=gte.a&owner=lt.b``, each covering 1% of the owners). Events:
journal rows of a ``todos(id, owner, title, done)`` table, owners uniform over
``--owners``: 60% updates (10% of them moving the row to another owner), 25% inserts,
15% deletes. Reported: events/s, CPU per event (process time), matched deliveries,
and the hub-side memory per subscription (tracemalloc: the Subscriber, its group and
its index entry; a stream's connection costs more, see bench/stream_memory.py).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import tracemalloc

from psycopg2 import sql

from gateway.catalog import Collation, Column, Table
from gateway.grammar import parse_filters
from gateway.hub import Hub, Subscriber
from gateway.journal import Event
from gateway.predicate import compile_filters, read_row
from gateway.sse import encode_change
from gateway.views import ALL_CHANGES, View, change_of, project


def _column(name: str, base: str) -> Column:
    collation = Collation("C", "c", "C", True, True, True) if base == "text" else None
    return Column(name, base, base, False, False, False, False, ",", False, False, False, False, base, None, collation)


TODOS = Table(
    "todos",
    sql.Identifier("todos"),
    {
        c.name: c
        for c in (_column("id", "int8"), _column("owner", "int4"), _column("title", "text"), _column("done", "bool"))
    },
    ("id",),
)


def view(query: str) -> View:
    filters = parse_filters(query)
    return View("todos", filters, compile_filters(TODOS, filters), None, ALL_CHANGES)


class Baseline:
    """Every subscriber's filter for every event, each delivery encoded for its subscriber."""

    def __init__(self) -> None:
        self.group_of: dict[Subscriber, View] = {}

    def add(self, sub: Subscriber, views: tuple[View, ...]) -> None:
        (self.group_of[sub],) = views

    def remove(self, sub: Subscriber) -> None:
        self.group_of.pop(sub, None)

    def deliver(self, events: list[Event], touched: list[Subscriber]) -> int:
        deliveries = 0
        for event in events:
            new, old = read_row(event.row), read_row(event.old)  # once per event, at least
            for sub, v in self.group_of.items():
                change = change_of(v.compiled, event.op, new, old)
                if change is None:
                    continue
                sub.push(encode_change(event, change[0], change[1], project(event.row, v.select), event.old))
                touched.append(sub)
                deliveries += 1
        return deliveries


def make_events(count: int, owners: int, seed: int = 1) -> list[Event]:
    rng = random.Random(seed)
    rows: dict[int, dict[str, object]] = {}
    events: list[Event] = []
    next_id = 1
    for eid in range(1, count + 1):
        roll = rng.random()
        if roll < 0.25 or len(rows) < 100:
            row = {"id": next_id, "owner": rng.randrange(owners), "title": f"t{next_id}", "done": False}
            rows[next_id] = row
            next_id += 1
            events.append(Event(eid, eid, "todos", "todos", "insert", str(row["id"]), json.dumps(row), None))
        elif roll < 0.85:
            key = rng.choice(list(rows)) if len(rows) < 2000 else rng.randrange(next_id - 2000, next_id)
            old = rows.get(key)
            if old is None:
                continue
            new = {**old, "title": f"u{eid}", "done": not old["done"]}
            if rng.random() < 0.1:
                new["owner"] = rng.randrange(owners)
            rows[key] = new
            events.append(Event(eid, eid, "todos", "todos", "update", str(key), json.dumps(new), json.dumps(old)))
        else:
            key = rng.choice(list(rows)) if len(rows) < 2000 else rng.randrange(next_id - 2000, next_id)
            old = rows.pop(key, None)
            if old is None:
                continue
            events.append(Event(eid, eid, "todos", "todos", "delete", str(key), None, json.dumps(old)))
    return events


def build(mode: str, subscribers: int, owners: int) -> tuple[Hub, list[int]]:
    hub = Hub(10**12)
    if mode == "baseline":
        hub._views = Baseline()  # type: ignore[assignment]
    received = [0]

    def sink(data: bytes) -> int:
        received[0] += data.count(b"\nevent: ")
        return 0

    queries = [f"owner=eq.{n}" for n in range(subscribers)]
    step = max(1, owners // 100)
    queries += [f"owner=gte.{a}&owner=lt.{a + step}" for a in range(0, owners, step)][:100]
    for query in queries:
        sub = hub.subscribe_view(view(query), resuming=False)
        hub.attach(sub, sink)
    return hub, received


def run(mode: str, subscribers: int, owners: int, events: list[Event], page: int) -> tuple[float, int]:
    hub, received = build(mode, subscribers, owners)
    pages = [events[i : i + page] for i in range(0, len(events), page)]
    start = time.process_time()
    for p in pages:
        hub.publish(p)
    return time.process_time() - start, received[0]


def memory_per_subscription(subscribers: int, owners: int) -> float:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    hub, _ = build("gateway", subscribers, owners)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del hub
    return total / (subscribers + 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--baseline-events", type=int, default=1000, help="the baseline is slow: fewer events")
    parser.add_argument("--page", type=int, default=10, help="events per listener page")
    parser.add_argument("--owners", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=10000, help="owner=eq.N views (and then 100)")
    args = parser.parse_args()
    events = make_events(args.events, args.owners)
    print(f"{len(events)} events over {args.owners} owners, pages of {args.page}; best of {args.rounds} rounds")
    print(f"{'mode':9} {'subscribers':>11} {'events/s':>10} {'CPU us/event':>13} {'deliveries':>11} {'per event':>9}")
    results: dict[tuple[str, int], float] = {}
    many = args.subscribers
    for subscribers in (many, 100):
        for mode in ("gateway", "baseline"):
            sample = events if mode == "gateway" else events[: args.baseline_events]
            cpu, got = min(
                (run(mode, subscribers, args.owners, sample, args.page) for _ in range(args.rounds)),
                key=lambda r: r[0],
            )
            per_event = cpu / len(sample)
            results[(mode, subscribers)] = per_event
            print(
                f"{mode:9} {subscribers + 100:>11} {1 / per_event:>10.0f} {per_event * 1e6:>13.1f} "
                f"{got:>11} {got / len(sample):>9.2f}"
            )
    scale = results[("gateway", many)] / results[("gateway", 100)]
    speedup = results[("baseline", many)] / results[("gateway", many)]
    print(f"CPU per event, gateway, {many + 100} vs 200 subscriptions: {scale:.2f}x")
    print(f"events/s at {many + 100} subscriptions, gateway vs baseline: {speedup:.0f}x")
    print(f"hub memory per filtered subscription: {memory_per_subscription(many, args.owners):.0f} B")


if __name__ == "__main__":
    main()
