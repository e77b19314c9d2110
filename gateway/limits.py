"""How many streams one gateway, and one client address, may hold open.

A gateway is one process, or with ``--workers N`` the whole group (gateway.group).
Past the gateway's limit a new stream gets a 503 (try another replica, or later);
past the per-address limit a 429 (that client holds too many already: usually a
page that opens a new EventSource without closing the old one).
"""

from __future__ import annotations

from collections import Counter

from .codes import Code
from .errors import ApiError


class StreamLimits:
    def __init__(self, per_process: int, per_client: int) -> None:
        self._per_process = per_process
        self._per_client = per_client
        self._by_client: Counter[str] = Counter()
        self._open = 0

    def admit(self, client: str) -> None:
        """Take one stream slot for ``client`` or refuse; pair with release()."""
        if self.open_streams() >= self._per_process:
            raise ApiError(
                Code.TOO_MANY_SUBSCRIBERS,
                f"this gateway holds its maximum of {self._per_process} streams; retry later or elsewhere",
                headers={"Retry-After": "5"},
            )
        if self.client_streams(client) >= self._per_client:
            raise ApiError(
                Code.TOO_MANY_STREAMS,
                f"{client} already holds {self._per_client} streams; close one (several topics fit on one stream)",
                headers={"Retry-After": "5"},
            )
        self._open += 1
        self._by_client[client] += 1
        self.counted(client, 1)

    def release(self, client: str) -> None:
        self._open -= 1
        self._by_client[client] -= 1
        if not self._by_client[client]:
            del self._by_client[client]
        self.counted(client, -1)

    # Hooks for a group of worker processes (gateway.group.GroupLimits counts the
    # whole group's streams in shared memory); one process counts only its own.

    def open_streams(self) -> int:
        """Streams open now, as the limit counts them."""
        return self._open

    def client_streams(self, client: str) -> int:
        """Streams ``client`` holds now, as the limit counts them."""
        return self._by_client[client]

    def counted(self, client: str, change: int) -> None:
        """``client`` took (+1) or gave back (-1) a stream slot."""
