"""What the worker processes of one gateway (``--workers N``) share: a board in shared memory.

Theory of operation. The supervisor (gateway.supervisor) allocates one :class:`Board`
before it starts any worker and hands it to each: a row of figures per worker slot
(its pid, whether it serves, its open streams, its counters) and a row of per-client
stream counts per slot. A worker writes only its own slot's rows, from its event loop
thread, so no lock is needed: a reader sees each 64-bit figure whole, possibly one
update old. Anyone reads every slot and sums.

- ``/metrics`` on any worker renders the group (:meth:`Group.aggregate`): counters and
  the subscriber gauge summed over slots. A slot's counters survive its worker: a
  restarted worker adds to what its predecessor counted, so every summed counter only
  goes up. Its gauges are zeroed by the supervisor when its worker dies.
- Stream limits are the group's (:class:`GroupLimits`): a worker admits a stream when
  the sum over slots is under the limit. Two workers admitting at the same instant can
  both see the last free slot, so the group may pass a limit by at most N-1 streams,
  never more. Per-client counts are kept in :data:`CLIENT_BUCKETS` buckets by a hash of
  the client address: two addresses in one bucket share its count, so the per-client
  limit can refuse early (never late) when buckets collide.

No I/O, no aiohttp beyond the response hook.
"""

from __future__ import annotations

import ctypes
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .limits import StreamLimits
from .metrics import Metrics

# One row of figures per slot; counters are cumulative for the slot, gauges are now.
FIELDS = (
    "pid",
    "ready",
    "streams",
    "events_in",
    "deliveries",
    "bytes_out",
    "slow_consumers_closed",
    "listener_up",
    "listener_reconnects",
)
_AT = {name: index for index, name in enumerate(FIELDS)}
GAUGES = ("pid", "ready", "streams", "listener_up")
CLIENT_BUCKETS = 65536

# /metrics rows (gateway.metrics) whose value is the group's sum of a slot figure.
SUMMED = {
    "gateway_subscribers": "streams",
    "gateway_events_in_total": "events_in",
    "gateway_deliveries_total": "deliveries",
    "gateway_bytes_out_total": "bytes_out",
    "gateway_slow_consumers_closed_total": "slow_consumers_closed",
    "gateway_listener_connected": "listener_up",
    "gateway_listener_reconnects_total": "listener_reconnects",
}

# Help texts that change meaning when summed.
GROUP_HELP = {
    "gateway_subscribers": "Open /events streams, all workers together.",
    "gateway_listener_connected": "Workers whose LISTEN connection is up.",
}

WORKER_HEADER = "X-Gateway-Worker"


def client_bucket(client: str) -> int:
    """The bucket of a client address: the same in every process (unlike ``hash()``)."""
    return zlib.crc32(client.encode()) % CLIENT_BUCKETS


@dataclass
class Board:
    """The group's shared memory: ``figures`` (slots x FIELDS) and ``clients`` (slots x buckets).

    Both are ctypes arrays from ``multiprocessing.RawArray``, inherited by each worker
    when it is started (gateway.supervisor); a test may build one from plain ctypes.
    """

    slots: int
    figures: Any
    clients: Any

    @classmethod
    def allocate(cls, slots: int, raw_array: Callable[[Any, int], Any]) -> Board:
        """A zeroed board for ``slots`` workers; ``raw_array`` is a context's ``RawArray``."""
        return cls(
            slots, raw_array(ctypes.c_int64, slots * len(FIELDS)), raw_array(ctypes.c_int32, slots * CLIENT_BUCKETS)
        )

    def get(self, slot: int, name: str) -> int:
        return int(self.figures[slot * len(FIELDS) + _AT[name]])

    def set(self, slot: int, name: str, value: int) -> None:
        self.figures[slot * len(FIELDS) + _AT[name]] = value

    def add(self, slot: int, name: str, change: int) -> None:
        self.figures[slot * len(FIELDS) + _AT[name]] += change

    def total(self, name: str) -> int:
        at, width = _AT[name], len(FIELDS)
        return sum(int(self.figures[slot * width + at]) for slot in range(self.slots))

    def client_total(self, bucket: int) -> int:
        return sum(int(self.clients[slot * CLIENT_BUCKETS + bucket]) for slot in range(self.slots))

    def add_client(self, slot: int, bucket: int, change: int) -> None:
        self.clients[slot * CLIENT_BUCKETS + bucket] += change

    def vacate(self, slot: int) -> None:
        """Zero a slot's gauges and client counts (its worker is gone); keep its counters."""
        for name in GAUGES:
            self.set(slot, name, 0)
        ctypes.memset(ctypes.addressof(self.clients) + slot * CLIENT_BUCKETS * 4, 0, CLIENT_BUCKETS * 4)


class GroupMetrics(Metrics):
    """This worker's Metrics, each count also added to its slot of the board."""

    def __init__(self, board: Board, slot: int) -> None:
        super().__init__()
        self._board, self._slot = board, slot

    def events_read(self, count: int) -> None:
        super().events_read(count)
        self._board.add(self._slot, "events_in", count)

    def delivered(self, count: int) -> None:
        super().delivered(count)
        self._board.add(self._slot, "deliveries", count)

    def bytes_sent(self, count: int) -> None:
        super().bytes_sent(count)
        self._board.add(self._slot, "bytes_out", count)

    def slow_consumer_closed(self) -> None:
        super().slow_consumer_closed()
        self._board.add(self._slot, "slow_consumers_closed", 1)

    def listener_connected(self, connected: bool) -> None:
        super().listener_connected(connected)
        self._board.set(self._slot, "listener_up", int(connected))

    def listener_reconnected(self) -> None:
        super().listener_reconnected()
        self._board.add(self._slot, "listener_reconnects", 1)


class GroupLimits(StreamLimits):
    """Stream limits for the whole group: admit against the sums over every slot."""

    def __init__(self, per_group: int, per_client: int, board: Board, slot: int) -> None:
        super().__init__(per_group, per_client)
        self._board, self._slot = board, slot

    def open_streams(self) -> int:
        return self._board.total("streams")

    def client_streams(self, client: str) -> int:
        return self._board.client_total(client_bucket(client))

    def counted(self, client: str, change: int) -> None:
        self._board.add(self._slot, "streams", change)
        self._board.add_client(self._slot, client_bucket(client), change)


class Group:
    """One worker's view of its group: its slot on the board, and how it says it serves."""

    def __init__(self, board: Board, slot: int, pid: int, on_ready: Callable[[], None]) -> None:
        self.board, self.slot, self.pid = board, slot, pid
        self._on_ready = on_ready
        board.vacate(slot)  # whatever a killed predecessor left
        board.set(slot, "pid", pid)

    def metrics(self) -> GroupMetrics:
        return GroupMetrics(self.board, self.slot)

    def limits(self, per_group: int, per_client: int) -> GroupLimits:
        return GroupLimits(per_group, per_client, self.board, self.slot)

    def ready(self) -> None:
        """This worker listens: mark its slot and tell the supervisor."""
        self.board.set(self.slot, "ready", 1)
        self._on_ready()

    async def tag_response(self, request: web.Request, response: web.StreamResponse) -> None:
        """on_response_prepare: which worker answered (its pid), for operators and tests."""
        response.headers[WORKER_HEADER] = str(self.pid)

    def aggregate(self, rows: Sequence[tuple[str, str, str, float | None]]) -> list[tuple[str, str, str, float | None]]:
        """/metrics rows with the group's sums in place of this worker's figures."""
        summed = [
            (name, kind, GROUP_HELP.get(name, text), self.board.total(SUMMED[name]) if name in SUMMED else value)
            for name, kind, text, value in rows
        ]
        return [
            *summed,
            ("gateway_workers", "gauge", "Worker processes serving (--workers).", self.board.total("ready")),
        ]

    def worker_lines(self) -> list[str]:
        """Per-worker subscriber gauges, labelled by slot and pid."""
        lines = [
            "# HELP gateway_worker_subscribers Open /events streams of one worker process.",
            "# TYPE gateway_worker_subscribers gauge",
        ]
        for slot in range(self.board.slots):
            if self.board.get(slot, "ready"):
                pid, streams = self.board.get(slot, "pid"), self.board.get(slot, "streams")
                lines.append(f'gateway_worker_subscribers{{worker="{slot}",pid="{pid}"}} {streams}')
        return lines
