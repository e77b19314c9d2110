"""Filtered views: the hub's side of ``/events/<table>?<filter>`` subscriptions.

Theory of operation. A *view* is what one filtered stream asks for: a table, a
filter (compiled by gateway.predicate), the columns of ``row`` and ``old`` it wants
(``select``) and the changes it takes (``on``). The SSE event type is the change to
the filtered view, not the change to the table: an update whose old row matched and
whose new row does not is a ``delete`` with ``"moved":"out"``, one whose new row
matches and whose old row did not an ``insert`` with ``"moved":"in"``; ``data.op``
stays ``update``. A move out carries the old row and ``"row": null``, a move in the
new row and ``"old": null``: a view never shows a row outside its filter. A TRUNCATE
reaches every view of its table as ``truncate``, whatever its ``on``. :func:`change_of`
is that rule, as a pure function.

Cost grows with matches, not with subscribers (issue 12, item 4):

* subscribers whose views are equal (same table, filter tree, select and on) share
  one :class:`Group`; the filter is evaluated once per event for the group;
* a group whose filter requires ``col=eq.v`` (or ``in.(...)``) at its top level is
  indexed by (column, value key): an event only reaches the groups filed under its
  new or old row's key for that column, found by two dictionary lookups, however
  many groups there are. Other groups are evaluated for every event of their table;
* each event is encoded once per distinct (event type, moved, select) among the
  groups it reaches, and each group's page of wires is joined once for all its
  live subscribers (a held or replay-filtered one takes them event by event).

The rows are parsed from the journal's JSON once per event, when some group of
the event's table exists. Nothing here does I/O; the hub calls :meth:`Views.deliver`
with each page after its topic subscribers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .grammar import Filter
from .journal import Event
from .members import member_texts
from .predicate import Compiled, Equality, Key, read_row
from .sse import encode_change

if TYPE_CHECKING:
    from .hub import Subscriber

CHANGES = ("insert", "update", "delete", "truncate")
ALL_CHANGES = frozenset(CHANGES)  # one object for every view that takes them all


@dataclass(frozen=True, eq=False)
class View:
    """One filtered subscription's question. Views with equal :attr:`identity` share a group."""

    table: str
    filters: tuple[Filter, ...]
    compiled: Compiled
    select: tuple[str, ...] | None = None  # None: every column
    on: frozenset[str] = ALL_CHANGES
    label: int | None = None  # its place among a connection's views (``data.view``); None: the only one

    @property
    def identity(self) -> tuple[object, ...]:
        return (self.table, self.filters, self.select, self.on, self.label)


def change_of(compiled: Compiled, op: str, new: Any, old: Any) -> tuple[str, str | None] | None:
    """The change to a view of ``op`` on a row: (SSE event type, moved), or None if the view has no change."""
    if op == "insert":
        return ("insert", None) if compiled.matches(new) else None
    if op == "delete":
        return ("delete", None) if compiled.matches(old) else None
    if op == "update":
        was, now = compiled.matches(old), compiled.matches(new)
        if was:
            return ("update", None) if now else ("delete", "out")
        return ("insert", "in") if now else None
    if op == "truncate":
        return ("truncate", None)
    return None


def project(row_json: str | None, select: tuple[str, ...] | None) -> str | None:
    """The row's JSON with only the ``select`` columns, each member's text as the journal has it."""
    if row_json is None or select is None:
        return row_json
    texts = member_texts(row_json)
    members = (f"{json.dumps(name, ensure_ascii=False)}:{texts[name]}" for name in select if name in texts)
    return "{" + ",".join(members) + "}"


class _Wires:
    """One event's encodings, made on first need, once per (event type, moved, select)."""

    __slots__ = ("_cache", "event", "new", "old")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.new = read_row(event.row)
        self.old = read_row(event.old)
        self._cache: dict[tuple[str, str | None, tuple[str, ...] | None, int | None], bytes] = {}

    def wire(self, change: tuple[str, str | None], view: View) -> bytes:
        select = view.select
        key = (change[0], change[1], select, view.label)
        wire = self._cache.get(key)
        if wire is None:
            event, moved = self.event, change[1]
            # A view never shows a row outside its filter (with a rows claim: one the
            # token may not read): a move out has no new row, a move in no old one.
            row = None if moved == "out" else project(event.row, select)
            old = None if moved == "in" else project(event.old, select)
            wire = self._cache[key] = encode_change(event, change[0], change[1], row, old, view.label)
        return wire


def view_wire(view: View, event: Event) -> bytes | None:
    """The bytes of ``event`` for one view (a replay's), or None if the view has no change."""
    if event.table != view.table:
        return None
    wires = _Wires(event)
    change = change_of(view.compiled, event.op, wires.new, wires.old)
    if change is None or (change[0] not in view.on and change[0] != "truncate"):
        return None
    return wires.wire(change, view)


@dataclass(eq=False)
class Group:
    """The subscribers of one view."""

    view: View
    subscribers: set[Subscriber] = field(default_factory=set)


@dataclass(eq=False)
class _Index:
    """Groups filed under the key of one column's value (see :class:`~gateway.predicate.Equality`)."""

    equality: Equality  # the first group's: its row_key reads the column for all
    # A list, not a set: most values have one group (a user's own filter), and a
    # one-element list costs 64 bytes where a set costs 216.
    groups: dict[Key, list[Group]] = field(default_factory=dict)


class _TableViews:
    __slots__ = ("groups", "indexes", "unindexed")

    def __init__(self) -> None:
        self.groups: dict[tuple[object, ...], Group] = {}
        self.indexes: dict[tuple[str, object], _Index] = {}  # (column, key function)
        self.unindexed: set[Group] = set()

    def add(self, group: Group) -> None:
        equality = group.view.compiled.equality
        if equality is None:
            self.unindexed.add(group)
            return
        index = self.indexes.setdefault((equality.column, equality.key), _Index(equality))
        for value in equality.values:  # in.() files it nowhere: it matches no row
            index.groups.setdefault(value, []).append(group)

    def remove(self, group: Group) -> None:
        equality = group.view.compiled.equality
        if equality is None:
            self.unindexed.discard(group)
            return
        index = self.indexes.get((equality.column, equality.key))
        if index is None:
            return
        for value in equality.values:
            bucket = index.groups.get(value)
            if bucket is not None and group in bucket:
                bucket.remove(group)
                if not bucket:
                    del index.groups[value]
        if not index.groups:
            del self.indexes[(equality.column, equality.key)]

    def candidates(self, wires: _Wires) -> Iterable[Group]:
        if wires.event.op == "truncate":
            return self.groups.values()
        if not self.indexes:
            return self.unindexed
        found: set[Group] = set(self.unindexed)
        for index in self.indexes.values():
            for row in (wires.new, wires.old):
                if row is not None:
                    key = index.equality.row_key(row)
                    if key is not None:
                        found.update(index.groups.get(key, ()))
        return found


class Views:
    """Every filtered subscription of a hub, by table, grouped and indexed."""

    def __init__(self) -> None:
        self._tables: dict[str, _TableViews] = {}
        # Every filtered subscriber's groups (one per view of its connection). A plain
        # dict the hub tests for emptiness once per page: its topic path pays no call.
        self.group_of: dict[Subscriber, tuple[Group, ...]] = {}
        self._several: set[Subscriber] = set()  # holding more than one view

    def __len__(self) -> int:
        return len(self.group_of)

    @property
    def groups(self) -> int:
        return sum(len(table.groups) for table in self._tables.values())

    def add(self, sub: Subscriber, views: tuple[View, ...]) -> None:
        groups = []
        for view in views:
            table = self._tables.setdefault(view.table, _TableViews())
            group = table.groups.get(view.identity)
            if group is None:
                group = table.groups[view.identity] = Group(view)
                table.add(group)
            group.subscribers.add(sub)
            groups.append(group)
        self.group_of[sub] = tuple(groups)
        if len(groups) > 1:
            self._several.add(sub)

    def remove(self, sub: Subscriber) -> None:
        groups = self.group_of.pop(sub, ())
        self._several.discard(sub)
        for group in groups:
            group.subscribers.discard(sub)
            if not group.subscribers:
                view = group.view
                table = self._tables[view.table]
                del table.groups[view.identity]
                table.remove(group)
                if not table.groups:
                    del self._tables[view.table]

    def views_of(self, sub: Subscriber) -> tuple[View, ...]:
        return tuple(group.view for group in self.group_of.get(sub, ()))

    def deliver(self, events: list[Event], touched: list[Subscriber]) -> int:
        """Offer a page to the views it changes; append who got something to ``touched``; return the deliveries."""
        tables = self._tables
        page: dict[Group, list[tuple[Event, bytes]]] = {}
        for event in events:
            table = tables.get(event.table) if event.table is not None else None
            if table is None:
                continue
            wires = _Wires(event)
            for group in table.candidates(wires):
                view = group.view
                change = change_of(view.compiled, event.op, wires.new, wires.old)
                if change is None or (change[0] not in view.on and change[0] != "truncate"):
                    continue
                page.setdefault(group, []).append((event, wires.wire(change, view)))
        deliveries = 0
        several = self._several
        merged: dict[Subscriber, list[tuple[int, int, Event, bytes]]] = {}
        for group, items in page.items():
            joined: bytes | None = None
            label = group.view.label or 0
            for sub in group.subscribers:
                if several and sub in several:  # its views' events, merged below: by id, then view
                    merged.setdefault(sub, []).extend((event.id, label, event, wire) for event, wire in items)
                    continue
                if sub.is_held or sub.is_filtering:
                    for event, wire in items:
                        sub.offer(event, wire)
                else:
                    if joined is None:
                        joined = items[0][1] if len(items) == 1 else b"".join(wire for _, wire in items)
                    sub.push(joined)
                touched.append(sub)
                deliveries += len(items)
        for sub, entries in merged.items():
            entries.sort(key=_id_and_view)
            for _, _, event, wire in entries:
                sub.offer(event, wire)
            touched.append(sub)
            deliveries += len(entries)
        return deliveries


def _id_and_view(entry: tuple[int, int, Event, bytes]) -> tuple[int, int]:
    return entry[0], entry[1]
