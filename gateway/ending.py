"""How a stream ends: why (EndReason) and what its end does, as data without I/O.

Theory of operation. A stream lives in three phases: OPENING (subscribed, nothing
of the response written yet), WRITING (the handler writes the preamble and any
replay through aiohttp's response) and LIVE (handed over: the hub writes to the
transport, gateway.live). Whatever ends it (the client goes, the hub finds it too
slow, its token expires, the server shuts down, its replay fails), the end runs
once, through one owner (gateway.stream's StreamEnd), and does the same things:
it cancels the token's expiry, unsubscribes, releases the stream's limits slot,
says goodbye or cuts the connection off, and writes the access-log line.

What differs by phase and reason is decided here, by ``farewell()``, so the
table of cases is tested without a socket (tests/test_ending.py):

* before the response is prepared nothing is written: aiohttp answers and logs;
* a client that went away gets nothing (it is not there to read it);
* a slow consumer is cut off at once: it is not reading, so a goodbye would
  never arrive and a write could only grow its backlog;
* every other reason gets one goodbye comment saying what to do, the end of the
  body, and a close (cut off after a grace if the client does not read it);
* a second end, whatever its reason, does nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .sse import encode_goodbye


class EndReason(enum.Enum):
    """Why a stream ends; ``goodbye`` is what it is told (None: nothing can be)."""

    CLIENT_GONE = ("the client went away", False)
    SLOW_CONSUMER = ("slow consumer: the client did not read fast enough", False)
    TOKEN_EXPIRED = ("the token expired; reconnect with a new token", True)
    SHUTDOWN = ("server shutting down; reconnect with Last-Event-ID to resume", True)
    REPLAY_FAILED = ("replay failed; reconnect with Last-Event-ID to resume", True)

    def __init__(self, text: str, told: bool) -> None:
        self.text = text
        self.goodbye: bytes | None = encode_goodbye(text) if told else None

    @property
    def cuts_off(self) -> bool:
        """True if the connection is aborted at once, without a goodbye."""
        return self is EndReason.SLOW_CONSUMER


class Phase(enum.Enum):
    OPENING = "opening"  # subscribed; the response is not prepared
    WRITING = "writing"  # the handler writes the preamble and any replay
    LIVE = "live"  # handed over: the hub writes to the transport
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Farewell:
    """What the end of a stream does to its connection and the access log."""

    reason: EndReason
    goodbye: bytes | None  # written, then the body's end and a close
    cut_off: bool  # abort the connection now
    logs_access: bool  # the stream writes its own access-log line (else aiohttp does)


def farewell(phase: Phase, reason: EndReason) -> Farewell | None:
    """What ending a stream in ``phase`` for ``reason`` does; None once it has ended."""
    if phase is Phase.ENDED:
        return None
    if phase is Phase.OPENING:
        return Farewell(reason, None, cut_off=False, logs_access=False)
    return Farewell(reason, reason.goodbye, cut_off=reason.cuts_off, logs_access=True)
