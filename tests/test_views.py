"""gateway.views without a server: the move rule as a table, and the hub's grouping,
index and encode-once for filtered subscriptions."""

from __future__ import annotations

import json

import pytest
from psycopg2 import sql

from gateway.catalog import Collation, Column, Table
from gateway.grammar import parse_filters
from gateway.hub import Hub
from gateway.journal import Event
from gateway.predicate import compile_filters
from gateway.views import ALL_CHANGES, View, change_of, project

C = Collation("C", "c", "C", True, True, True)


def column(name: str, base: str) -> Column:
    return Column(
        name=name,
        type_sql=base,
        type_name=base,
        is_json=False,
        keeps_text=False,
        is_array=False,
        json_elements=False,
        delimiter=",",
        is_composite=False,
        not_null=False,
        has_default=False,
        generated=False,
        base_type=base,
        collation=C if base == "text" else None,
    )


TODOS = Table(
    "todos",
    sql.Identifier("todos"),
    {
        c.name: c
        for c in (column("id", "int8"), column("owner", "int4"), column("title", "text"), column("done", "bool"))
    },
    ("id",),
)


def make_view(query: str, select: tuple[str, ...] | None = None, on: frozenset[str] = ALL_CHANGES) -> View:
    filters = parse_filters(query)
    return View("todos", filters, compile_filters(TODOS, filters), select, on)


def row(id_: int, owner: int, done: bool = False, title: str = "t") -> str:
    return json.dumps({"id": id_, "owner": owner, "title": title, "done": done}, separators=(",", ":"))


def event(id_: int, op: str, new: str | None, old: str | None = None) -> Event:
    pk = str(json.loads(new or old or '{"id": null}')["id"]) if op != "truncate" else None
    return Event(id_, id_, "todos", "todos", op, pk, new, old)


@pytest.mark.parametrize(
    ("op", "new_matches", "old_matches", "expected"),
    [
        ("insert", True, None, ("insert", None)),
        ("insert", False, None, None),
        ("delete", None, True, ("delete", None)),
        ("delete", None, False, None),
        ("update", True, True, ("update", None)),
        ("update", False, True, ("delete", "out")),
        ("update", True, False, ("insert", "in")),
        ("update", False, False, None),
        ("truncate", None, None, ("truncate", None)),
    ],
)
def test_the_change_to_a_view(op: str, new_matches: bool | None, old_matches: bool | None, expected: object) -> None:
    compiled = compile_filters(TODOS, parse_filters("done=is.false"))
    new = None if new_matches is None else {"done": not new_matches}
    old = None if old_matches is None else {"done": not old_matches}
    assert change_of(compiled, op, new, old) == expected


def test_a_null_makes_no_match_so_an_update_to_null_moves_out() -> None:
    compiled = compile_filters(TODOS, parse_filters("owner=neq.1"))
    assert change_of(compiled, "update", {"owner": None}, {"owner": "2"}) == ("delete", "out")


def test_project_keeps_each_member_text_as_the_journal_has_it() -> None:
    text = '{"id":1,"n":1.50,"j":{"b": 1, "b": 2},"t":"é"}'
    assert project(text, ("n", "j", "missing")) == '{"n":1.50,"j":{"b": 1, "b": 2}}'
    assert project(text, None) is text
    assert project(None, ("n",)) is None


class Sinks:
    def __init__(self) -> None:
        self.got: dict[int, list[bytes]] = {}

    def sink(self, key: int):  # type: ignore[no-untyped-def]
        def write(data: bytes) -> int:
            self.got.setdefault(key, []).append(data)
            return 0

        return write


def test_equal_views_share_one_group_and_one_wire() -> None:
    hub, sinks = Hub(10**6), Sinks()
    subs = [hub.subscribe_view(make_view("done=is.false"), resuming=False) for _ in range(3)]
    for i, sub in enumerate(subs):
        hub.attach(sub, sinks.sink(i))
    assert (hub.statistics().views, hub.statistics().view_groups) == (3, 1)
    hub.publish([event(1, "insert", row(1, 7))])
    wires = [sinks.got[i][0] for i in range(3)]
    assert all(wire is wires[0] for wire in wires)  # encoded and joined once
    assert b"event: insert\n" in wires[0]


def test_an_equality_filter_is_evaluated_only_for_its_value() -> None:
    hub, sinks = Hub(10**6), Sinks()
    for owner in range(1000):
        sub = hub.subscribe_view(make_view(f"owner=eq.{owner}"), resuming=False)
        hub.attach(sub, sinks.sink(owner))
    calls = 0
    views = hub._views
    for table in views._tables.values():
        for group in table.groups.values():
            inner = group.view.compiled.test

            def counting(r: object, inner: object = inner) -> object:
                nonlocal calls
                calls += 1
                return inner(r)  # type: ignore[operator]

            object.__setattr__(group.view.compiled, "test", counting)
    hub.publish([event(1, "insert", row(1, 5)), event(2, "update", row(1, 6), row(1, 5))])
    assert calls == 1 + 2 + 2  # the insert: owner 5's group; the update: 5's and 6's, new and old row
    assert len(sinks.got[5]) == 1  # one write for the page: the insert, then the move out
    assert b"event: insert" in sinks.got[5][0] and b'"moved":"out"' in sinks.got[5][0]
    assert b'"moved":"in"' in sinks.got[6][0]
    assert set(sinks.got) == {5, 6}


def test_select_and_on_make_distinct_groups_and_encodings() -> None:
    hub, sinks = Hub(10**6), Sinks()
    views = [
        make_view("done=is.false"),
        make_view("done=is.false", select=("id",)),
        make_view("done=is.false", on=frozenset({"delete"})),
    ]
    for i, v in enumerate(views):
        hub.attach(hub.subscribe_view(v, resuming=False), sinks.sink(i))
    assert hub.statistics().view_groups == 3
    hub.publish([event(1, "insert", row(1, 1, title="x"))])
    assert b'"title":"x"' in sinks.got[0][0]
    assert b'"row":{"id":1}' in sinks.got[1][0]
    assert 2 not in sinks.got
    hub.publish([event(2, "truncate", None)])
    assert all(b"event: truncate" in sinks.got[i][-1] for i in range(3))  # whatever their on=


def test_unsubscribing_the_last_member_removes_the_group_and_its_index() -> None:
    hub = Hub(10**6)
    subs = [hub.subscribe_view(make_view("owner=in.(1,2)"), resuming=False) for _ in range(2)]
    for sub in subs:
        hub.unsubscribe(sub)
    assert (hub.statistics().views, hub.statistics().view_groups) == (0, 0)
    assert hub._views._tables == {}


def test_a_held_view_subscriber_gets_its_events_after_the_replay() -> None:
    hub, sinks = Hub(10**6), Sinks()
    sub = hub.subscribe_view(make_view("owner=eq.1"), resuming=True)
    hub.publish([event(1, "insert", row(1, 1)), event(2, "insert", row(2, 2))])
    assert sub.is_held and sub.buffered_bytes > 0
    from gateway.journal import Snapshot

    sub.go_live(Snapshot.parse("1:1:"))  # the replay saw nothing of these
    hub.attach(sub, sinks.sink(0))
    assert sinks.got[0][0].count(b"event: insert") == 1


def test_a_connection_with_several_views_gets_events_in_id_order_labelled() -> None:
    hub, sinks = Hub(10**6), Sinks()
    first = make_view("owner=eq.2")
    views = (View("todos", first.filters, first.compiled, None, first.on, 0), make_view("owner=eq.1"))
    views = (views[0], View("todos", views[1].filters, views[1].compiled, None, views[1].on, 1))
    sub = hub.subscribe_view(views, resuming=False)
    hub.attach(sub, sinks.sink(0))
    hub.publish([event(1, "insert", row(1, 1)), event(2, "insert", row(2, 2)), event(3, "insert", row(3, 1))])
    data = b"".join(sinks.got[0]).decode()
    ids = [line for line in data.splitlines() if line.startswith("id: ")]
    assert ids == ["id: 1", "id: 2", "id: 3"]
    assert data.count('"view":1') == 2 and data.count('"view":0') == 1
    hub.unsubscribe(sub)
    assert hub.statistics().view_groups == 0
