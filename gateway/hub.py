"""The hub: topics to subscribers, and the fan-out of committed events.

Theory of operation. The hub knows nothing of HTTP or SQL. The listener hands it
pages of committed events in commit order; the hub encodes each event to SSE bytes
once. Most subscribers hold one topic: for them the page's bytes for that topic
are joined once and the same bytes object goes to each. Subscribers with several
topics, or still replaying history, take the page event by event.

Once its stream is live, a subscriber has a *sink*: a function that writes bytes
straight to its connection. At the end of each page the hub writes every touched
subscriber's queued bytes with one call, so a client gets one write per page
however many events the page holds (coalescing), and no task wakes per event.

The bound of a subscriber is the bytes its connection has not yet taken: the
transport's write buffer when new bytes arrive for it (or, before it is live, its
queue). A subscriber past it is a slow consumer: it is closed, its stream's end
cuts the connection off (the client can resume with its cursor) and nobody else
waits for it. So a stuck client
costs at most its bound plus one page, and a page larger than the bound still
reaches a client that keeps up.

A resuming subscriber is *held* while its stream replays history: live events
queue as events, not bytes, and when the replay's snapshot is known the ones it
already covered are dropped. Until the listener has moved past that snapshot, a
late live event the replay already sent is dropped too, so the hand-over has no
gap and no duplicate.

Filtered subscriptions (``/events/<table>?<filter>``) have no topics: the hub keeps
them in its :class:`~gateway.views.Views`, which groups and indexes them and is
offered each page after the topic subscribers (so the topic path costs them one
truth test per page).

A subscription's end has one owner, given when it is made (``on_end``: the
stream's end, gateway.stream): however the subscription closes, in the hub or by
its stream, ``on_end`` hears why once and takes it out of the hub. The hub never
removes a subscriber itself, and never closes one while it walks a topic's set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .counters import NO_COUNTERS, Counters
from .ending import EndReason
from .journal import Event, Snapshot
from .sse import encode_event
from .views import View, Views

SLOW_CONSUMER = EndReason.SLOW_CONSUMER
CLIENT_GONE = EndReason.CLIENT_GONE

# Writes bytes to a subscriber's connection; returns the bytes it still had to send
# before this write (its backlog), or -1 if the connection is closing.
Sink = Callable[[bytes], int]


@dataclass
class HubStatistics:
    """What the hub holds right now (what it has done is told to its Counters)."""

    subscribers: int
    topics: int
    position: int
    views: int = 0  # filtered subscriptions
    view_groups: int = 0  # distinct views among them


class Subscriber:
    """One stream's subscription: its topics, its queue, and where its bytes go."""

    __slots__ = (
        "_bound",
        "_chunks",
        "_held",
        "_on_end",
        "_single",
        "_sink",
        "_size",
        "_skip",
        "closed_reason",
        "start_position",
        "topics",
    )

    def __init__(
        self,
        topics: tuple[str, ...],
        bound: int,
        start_position: int,
        held: bool,
        on_end: Callable[[EndReason], None],
    ) -> None:
        self.topics = topics
        self.start_position = start_position
        self._single = len(topics) == 1
        self._bound = bound
        self._chunks: list[bytes] = []
        self._size = 0
        self._sink: Sink | None = None
        self._held: list[tuple[Event, bytes]] | None = [] if held else None
        self._skip: Snapshot | None = None
        self.closed_reason: EndReason | None = None
        self._on_end = on_end  # told why, once, when the subscription ends

    @property
    def buffered_bytes(self) -> int:
        """Bytes queued here and not yet handed to the connection."""
        return self._size

    @property
    def is_held(self) -> bool:
        """True while the stream replays history and live events wait."""
        return self._held is not None

    @property
    def is_filtering(self) -> bool:
        """True while live events are checked against the replay's snapshot."""
        return self._skip is not None

    @property
    def takes_shared_pages(self) -> bool:
        """True if a page's joined bytes for its one topic can be handed over as is."""
        return self._single and self._held is None and self._skip is None

    def offer(self, event: Event, wire: bytes) -> None:
        """Queue one event (a held subscriber past its bound is closed at once)."""
        if self.closed_reason is not None:
            return
        if self._held is not None:
            self._held.append((event, wire))
            self._size += len(wire)
            if self._size > self._bound:
                self._overflow()
        elif self._skip is None or not self._skip.sees(event.tx):
            self.push(wire)

    def push(self, data: bytes) -> None:
        """Queue raw bytes (events or a heartbeat) for the next flush.

        The bound is checked at the flush (a live subscriber's by its backlog), so a
        push never closes the subscriber while the hub walks a topic's subscribers.
        """
        if self.closed_reason is None:
            self._chunks.append(data)
            self._size += len(data)

    def flush(self) -> int:
        """Write what is queued to the connection, if live; return the bytes written."""
        if self._sink is None:
            if self._size > self._bound:  # not live yet: its queue is its backlog
                self._overflow()
            return 0
        if not self._chunks or self.closed_reason is not None:
            return 0
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        backlog = self._sink(data)
        if backlog < 0:
            self.close(CLIENT_GONE)
            return 0
        if backlog > self._bound:
            self._overflow()
        return len(data)

    def attach(self, sink: Sink) -> int:
        """Go live: from now on the hub writes to ``sink``; queued bytes go first."""
        self._sink = sink
        return self.flush()

    def go_live(self, replayed: Snapshot) -> None:
        """End the hold: keep the live events the replay (taken at ``replayed``) lacked."""
        held, self._held = self._held or [], None
        self._size -= sum(len(wire) for _, wire in held)
        self._skip = replayed
        for event, wire in held:
            if not replayed.sees(event.tx):
                self.push(wire)
        if self._size > self._bound:
            self._overflow()

    def forget_skip(self, listener_snapshot: Snapshot) -> None:
        """Drop the replay filter once no future live event can be one the replay sent."""
        if self._skip is not None and listener_snapshot.xmin >= self._skip.xmax:
            self._skip = None

    def close(self, reason: EndReason) -> None:
        """End the subscription; ``on_end`` learns why (the first reason only)."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self._chunks.clear()
        self._held = None
        self._size = 0
        self._on_end(reason)

    def _overflow(self) -> None:
        self.close(SLOW_CONSUMER)


class Hub:
    """Topic -> subscribers, fed by the listener, written to the subscribers' sinks."""

    def __init__(self, buffer_bound: int, counters: Counters = NO_COUNTERS) -> None:
        self._buffer_bound = buffer_bound
        self._counters = counters
        self._by_topic: dict[str, set[Subscriber]] = {}
        self._subscribers: set[Subscriber] = set()
        self._skipping: set[Subscriber] = set()
        self._views = Views()
        self._position = 0  # highest event id the listener has seen

    @property
    def position(self) -> int:
        """The highest event id the listener has handed the hub (or started at): where a
        new subscriber's stream starts. Only the hub moves it, and never backwards."""
        return self._position

    def start_at(self, position: int) -> None:
        """The listener starts reading after ``position`` (the journal's newest id when it
        first connected): subscribers from now on start there."""
        self._position = max(self._position, position)

    def subscribe(
        self, topics: Iterable[str], resuming: bool, on_end: Callable[[EndReason], None] | None = None
    ) -> Subscriber:
        """Register a subscriber; from now on it receives every event on ``topics``.

        ``on_end`` owns the subscription's end: it hears why, once, and must
        unsubscribe it (the stream's end does). Without one, the hub unsubscribes it.
        """
        # A tuple, not a frozenset: a stream names few topics (a linear scan is as fast),
        # and a one-topic frozenset costs 216 bytes per stream, a tuple 48.
        sub = Subscriber(
            tuple(dict.fromkeys(topics)),
            self._buffer_bound,
            self.position,
            held=resuming,
            on_end=on_end or (lambda _reason: self.unsubscribe(sub)),
        )
        self._subscribers.add(sub)
        for topic in sub.topics:
            self._by_topic.setdefault(topic, set()).add(sub)
        if resuming:
            self._skipping.add(sub)
        return sub

    def subscribe_view(
        self, view: View | tuple[View, ...], resuming: bool, on_end: Callable[[EndReason], None] | None = None
    ) -> Subscriber:
        """Register a filtered subscriber: from now on it receives the changes of ``view``
        (or of each of several views, in event id order; gateway.views)."""
        sub = Subscriber(
            (),
            self._buffer_bound,
            self.position,
            held=resuming,
            on_end=on_end or (lambda _reason: self.unsubscribe(sub)),
        )
        self._subscribers.add(sub)
        self._views.add(sub, view if isinstance(view, tuple) else (view,))
        if resuming:
            self._skipping.add(sub)
        return sub

    def attach(self, sub: Subscriber, sink: Sink) -> None:
        """Let ``sub`` receive by direct writes from now on (its stream is live)."""
        self._counters.bytes_sent(sub.attach(sink))

    def unsubscribe(self, sub: Subscriber) -> None:
        """Remove ``sub`` everywhere (closed or not: its owner's end calls this once)."""
        if sub not in self._subscribers:
            return
        if sub.closed_reason is SLOW_CONSUMER:
            self._counters.slow_consumer_closed()
        self._subscribers.discard(sub)
        self._skipping.discard(sub)
        if not sub.topics:
            self._views.remove(sub)
        for topic in sub.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[topic]

    def publish(self, events: list[Event]) -> None:
        """Fan a page of committed events out to their subscribers, in order, and write it."""
        by_topic = self._by_topic
        pages: dict[str, list[bytes]] = {}  # topic -> this page's wires for it
        matched: list[tuple[Event, bytes]] = []
        for event in events:
            wire: bytes | None = None
            for topic in event.topics:
                if topic in by_topic:
                    if wire is None:
                        wire = encode_event(event)
                        matched.append((event, wire))
                    pages.setdefault(topic, []).append(wire)
        if events:
            self._position = max(self._position, events[-1].id)
        self._counters.events_read(len(events))
        views = self._views
        if not matched and not views.group_of:
            return
        touched: list[Subscriber] = []
        one_by_one: set[Subscriber] = set()
        deliveries = 0
        for topic, wires in pages.items():
            joined: bytes | None = None
            for sub in by_topic[topic]:
                if sub.takes_shared_pages:
                    if joined is None:
                        joined = wires[0] if len(wires) == 1 else b"".join(wires)
                    sub.push(joined)
                    touched.append(sub)
                    deliveries += len(wires)
                else:
                    one_by_one.add(sub)
        for sub in one_by_one:
            for event, wire in matched:
                if any(topic in sub.topics for topic in event.topics):
                    sub.offer(event, wire)
                    deliveries += 1
            touched.append(sub)
        if views.group_of:
            deliveries += views.deliver(events, touched)
        self._counters.delivered(deliveries)
        self._flush(touched)

    def advance(self, snapshot: Snapshot) -> None:
        """The listener is complete up to ``snapshot``: release replay filters behind it."""
        if self._skipping:
            for sub in list(self._skipping):
                if not sub.is_held:
                    sub.forget_skip(snapshot)
                    if not sub.is_filtering:
                        self._skipping.discard(sub)

    def broadcast(self, data: bytes) -> None:
        """Write the same bytes (a heartbeat) to every live subscriber."""
        subs = [sub for sub in self._subscribers if not sub.is_held]
        for sub in subs:
            sub.push(data)
        self._flush(subs)

    def close_all(self, reason: EndReason) -> None:
        """End every subscription (their owners unsubscribe them)."""
        for sub in list(self._subscribers):
            sub.close(reason)

    def count_sent(self, nbytes: int) -> None:
        """Bytes a stream wrote itself before going live (its replay): every event byte
        sent, live or replayed, is counted through the hub, in this one place."""
        self._counters.bytes_sent(nbytes)

    def subscribers_by_topic(self) -> dict[str, int]:
        """Each topic with subscribers, and how many it has (for the inspector; a copy)."""
        return {topic: len(subs) for topic, subs in self._by_topic.items()}

    def statistics(self) -> HubStatistics:
        return HubStatistics(
            subscribers=len(self._subscribers),
            topics=len(self._by_topic),
            position=self.position,
            views=len(self._views),
            view_groups=self._views.groups,
        )

    def _flush(self, subs: Iterable[Subscriber]) -> None:
        written = 0
        for sub in subs:
            written += sub.flush()
        self._counters.bytes_sent(written)
