"""The hub: topics to subscribers, and the fan-out of committed events.

The hub knows nothing of HTTP or SQL. The listener hands it batches of events in
commit order; the hub encodes each event to SSE bytes once and appends the same
bytes object to the buffer of every matching subscriber. A subscriber's stream
handler is woken once, however many events land in its buffer in one loop tick,
and writes them all in one write (coalescing).

Each buffer has a bound in bytes. A subscriber whose buffer passes it is a slow
consumer: it is closed (it can resume with its cursor) and nobody waits for it.

A resuming subscriber is *held* while its stream replays history: live events
queue as events, not bytes, and when the replay's snapshot is known the ones it
already covered are dropped. Until the listener has moved past that snapshot, a
late live event the replay already sent is dropped too, so the hand-over has no
gap and no duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .journal import Event, Snapshot
from .sse import encode_event


class SubscriberClosed(Exception):
    """The hub closed this subscriber; ``reason`` says why (e.g. "slow consumer")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class HubStatistics:
    subscribers: int
    topics: int
    events_in: int
    deliveries: int
    slow_consumers_closed: int
    position: int


class Subscriber:
    """One stream's subscription: its topics and its bounded outgoing buffer."""

    __slots__ = (
        "_bound",
        "_chunks",
        "_held",
        "_size",
        "_skip",
        "_waiter",
        "abort",
        "closed_reason",
        "start_position",
        "topics",
        "writing",
    )

    def __init__(self, topics: frozenset[str], bound: int, start_position: int, held: bool) -> None:
        self.topics = topics
        self.start_position = start_position
        self._bound = bound
        self._chunks: list[bytes] = []
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._held: list[tuple[Event, bytes]] | None = [] if held else None
        self._skip: Snapshot | None = None
        self.closed_reason: str | None = None
        self.writing = False
        self.abort: Callable[[], None] | None = None

    @property
    def buffered_bytes(self) -> int:
        return self._size

    @property
    def is_held(self) -> bool:
        """True while the stream replays history and live events wait."""
        return self._held is not None

    @property
    def is_filtering(self) -> bool:
        """True while live events are checked against the replay's snapshot."""
        return self._skip is not None

    def offer(self, event: Event, wire: bytes) -> bool:
        """Queue one event; False if that made this subscriber a slow consumer."""
        if self._held is not None:
            self._held.append((event, wire))
            self._size += len(wire)
            return self._size <= self._bound or self._overflow()
        if self._skip is not None and self._skip.sees(event.tx):
            return True
        return self.push(wire)

    def push(self, data: bytes) -> bool:
        """Queue raw bytes (an event or a heartbeat); False on overflow."""
        if self.closed_reason is not None:
            return True
        self._chunks.append(data)
        self._size += len(data)
        if self._size > self._bound:
            return self._overflow()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def go_live(self, replayed: Snapshot) -> None:
        """End the hold: keep the live events the replay (taken at ``replayed``) lacked."""
        held, self._held = self._held or [], None
        self._size -= sum(len(wire) for _, wire in held)
        self._skip = replayed
        for event, wire in held:
            if not replayed.sees(event.tx):
                self.push(wire)

    def forget_skip(self, listener_snapshot: Snapshot) -> None:
        """Drop the replay filter once no future live event can be one the replay sent."""
        if self._skip is not None and listener_snapshot.xmin >= self._skip.xmax:
            self._skip = None

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _overflow(self) -> bool:
        self._chunks.clear()
        self._held = None
        self.close("slow consumer: the client did not read fast enough")
        if self.writing and self.abort is not None:
            self.abort()  # its handler waits on a write that will not drain
        return False

    async def next_chunk(self) -> bytes:
        """Wait for queued bytes and take them all; raise SubscriberClosed once closed."""
        while not self._chunks:
            if self.closed_reason is not None:
                raise SubscriberClosed(self.closed_reason)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.closed_reason is not None:
            raise SubscriberClosed(self.closed_reason)
        data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks.clear()
        self._size = 0
        return data


class Hub:
    """Topic -> subscribers, fed by the listener, read by stream handlers."""

    def __init__(self, buffer_bound: int) -> None:
        self._buffer_bound = buffer_bound
        self._by_topic: dict[str, set[Subscriber]] = {}
        self._subscribers: set[Subscriber] = set()
        self._skipping: set[Subscriber] = set()
        self.position = 0  # highest event id the listener has seen
        self._events_in = 0
        self._deliveries = 0
        self._slow_closed = 0

    def subscribe(self, topics: Iterable[str], resuming: bool) -> Subscriber:
        """Register a subscriber; from now on it receives every event on ``topics``."""
        sub = Subscriber(frozenset(topics), self._buffer_bound, self.position, held=resuming)
        self._subscribers.add(sub)
        for topic in sub.topics:
            self._by_topic.setdefault(topic, set()).add(sub)
        if resuming:
            self._skipping.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Remove ``sub`` everywhere; safe to call twice."""
        if sub not in self._subscribers:
            return
        self._subscribers.discard(sub)
        self._skipping.discard(sub)
        for topic in sub.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[topic]

    def publish(self, events: list[Event]) -> None:
        """Fan a batch of committed events out to their subscribers, in order."""
        overflowed: list[Subscriber] = []
        by_topic = self._by_topic
        deliveries = 0
        for event in events:
            topics = event.topics
            first = by_topic.get(topics[0])
            second = by_topic.get(topics[1]) if len(topics) > 1 else None
            if first is None and second is None:
                continue
            wire = encode_event(event)
            if first is not None:
                deliveries += len(first)
                for sub in first:
                    if not sub.offer(event, wire):
                        overflowed.append(sub)
            if second is not None:
                for sub in second:
                    if first is not None and sub in first:
                        continue
                    deliveries += 1
                    if not sub.offer(event, wire):
                        overflowed.append(sub)
        if events:
            self.position = max(self.position, events[-1].id)
        self._events_in += len(events)
        self._deliveries += deliveries
        for sub in overflowed:
            self._slow_closed += 1
            self.unsubscribe(sub)

    def advance(self, snapshot: Snapshot) -> None:
        """The listener is complete up to ``snapshot``: release replay filters behind it."""
        if self._skipping:
            for sub in list(self._skipping):
                if not sub.is_held:
                    sub.forget_skip(snapshot)
                    if not sub.is_filtering:
                        self._skipping.discard(sub)

    def broadcast(self, data: bytes) -> None:
        """Queue the same bytes (a heartbeat, a goodbye) for every subscriber."""
        for sub in list(self._subscribers):
            if not sub.push(data):
                self._slow_closed += 1
                self.unsubscribe(sub)

    def close_all(self, reason: str) -> None:
        for sub in list(self._subscribers):
            sub.close(reason)
            self.unsubscribe(sub)

    def statistics(self) -> HubStatistics:
        return HubStatistics(
            subscribers=len(self._subscribers),
            topics=len(self._by_topic),
            events_in=self._events_in,
            deliveries=self._deliveries,
            slow_consumers_closed=self._slow_closed,
            position=self.position,
        )
