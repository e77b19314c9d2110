"""What the parts that count report, as they count it: a collaborator handed in.

The hub and the listener are each given a :class:`Counters` when they are built and
tell it what happened (a page read, bytes written, a slow consumer closed, the
LISTEN connection lost); nobody reads counters back out of them by name. The app
hands them its :class:`gateway.metrics.Metrics`, which renders ``/metrics``; a unit
test hands them nothing and gets :data:`NO_COUNTERS` (Mercure's ``NopMetrics``).

The calls are made per page of events and per state change, never per delivery, so
counting costs the fan-out nothing it would notice. No I/O, no aiohttp.
"""

from __future__ import annotations

from typing import Protocol

from .wake import Mode


class Counters(Protocol):
    def events_read(self, count: int) -> None:
        """The listener handed the hub ``count`` committed events."""

    def delivered(self, count: int) -> None:
        """The hub queued ``count`` events to subscribers (one per subscriber per event)."""

    def bytes_sent(self, count: int) -> None:
        """``count`` bytes of events and heartbeats went to streams, live or replayed."""

    def slow_consumer_closed(self) -> None:
        """A subscriber fell behind its bound and was closed."""

    def listener_connected(self, connected: bool) -> None:
        """The LISTEN connection is up (True) or down (False)."""

    def listener_reconnected(self) -> None:
        """The LISTEN connection was lost after it had been up."""

    def listener_mode(self, mode: Mode) -> None:
        """The listener's wake protocol is now in ``mode``."""


class NoCounters:
    """Counts nothing: the default for a hub or listener built without a collaborator."""

    def events_read(self, count: int) -> None:
        pass

    def delivered(self, count: int) -> None:
        pass

    def bytes_sent(self, count: int) -> None:
        pass

    def slow_consumer_closed(self) -> None:
        pass

    def listener_connected(self, connected: bool) -> None:
        pass

    def listener_reconnected(self) -> None:
        pass

    def listener_mode(self, mode: Mode) -> None:
        pass


NO_COUNTERS: Counters = NoCounters()
