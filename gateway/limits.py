"""How many streams one process, and one client address, may hold open.

Past the process limit a new stream gets a 503 (try another replica, or later);
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
        if self._open >= self._per_process:
            raise ApiError(
                Code.TOO_MANY_SUBSCRIBERS,
                f"this gateway holds its maximum of {self._per_process} streams; retry later or elsewhere",
                headers={"Retry-After": "5"},
            )
        if self._by_client[client] >= self._per_client:
            raise ApiError(
                Code.TOO_MANY_STREAMS,
                f"{client} already holds {self._per_client} streams; close one (several topics fit on one stream)",
                headers={"Retry-After": "5"},
            )
        self._open += 1
        self._by_client[client] += 1

    def release(self, client: str) -> None:
        self._open -= 1
        self._by_client[client] -= 1
        if not self._by_client[client]:
            del self._by_client[client]
