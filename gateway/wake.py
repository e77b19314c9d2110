"""The listener's wake protocol as a state machine without I/O.

Theory of operation. NOTIFY serialises the commits of the transactions that send
it, so writers notify only while a listener sleeps; while changes keep coming the
listener polls the journal instead (triggers.sql, notify_statements). The wake lock
(:data:`gateway.locks.WAKE_LOCK`) says which: a writer that can take it shared
skips NOTIFY and holds it until commit. A listener is in one of three modes
(:class:`Mode`):

* POLLING: it reads every ``busy_poll`` seconds while reads find events, and holds
  no lock, so writers skip NOTIFY. After SETTLE_POLLS empty reads in a row it tries
  to take the lock exclusively (TRY_SLEEP). That succeeds only once no skipping
  writer is in flight, so the read that follows sees all their rows. While writers
  hold it shared ("busy": a long or prepared transaction) it keeps polling, less
  and less often (up to BUSY_POLL_MAX) while nothing commits;
* HOLDING: it took the lock and sleeps; every writer notifies. On a notification it
  lets go of the lock (LET_GO, which also sends a "wake" notification to every
  other listener) and polls. A quiet wait ends in a check that the session still
  has its backend (CHECK_BACKEND), then a read;
* RELYING: another listener (another gateway process) holds the lock, so writers
  notify all the same and this one sleeps too. A holder that lets go sends "wake"
  first thing; it still tries to take the lock after at most RELIANT_CHECK, in case
  that holder's connection died.

A wake-up that never comes costs latency, never an event: every sleeping listener
still reads after ``check_interval``. ``busy_poll <= 0`` never polls: the listener
stays asleep, so every writer notifies (lowest latency, lowest concurrency), and a
listener relying on another's lock tries to take it on every wake-up instead.

The machine is driven like h11's: the driver (gateway.listener) asks for
:attr:`WakeProtocol.action`, does it, and reports what happened as an :class:`Event`;
:meth:`WakeProtocol.handle` answers with the next action. One round is WAIT, then
CHECK_BACKEND or LET_GO if the mode needs it, then READ, then TRY_SLEEP if the mode
and the read say so, and a READ after a TRY_SLEEP that took or found the lock taken.
Only :meth:`WakeProtocol.connected` starts a round from outside: a new session holds
no lock. Everything that decides a transition is in this module; it does no I/O, so
its tests are tables.

Room to grow: a standby listener that reads a replica (the primary's notification
only a hint to read now) is one more Mode. It would wait its own poll interval
(``wait_time``), READ after any wait (``_after_wait``: no CHECK_BACKEND, no LET_GO,
stays in its mode), and never TRY_SLEEP (``_after_read``); no other rule changes.
"""

from __future__ import annotations

import enum

# Empty polls in a row before the listener tries to go to sleep.
SETTLE_POLLS = 10
# Longest a listener sleeps on another listener's wake lock between reads.
RELIANT_CHECK = 1.0
# Longest wait between polls while a writer that skipped NOTIFY stays in flight
# without anything committing (the busy poll interval doubles up to this).
BUSY_POLL_MAX = 0.25


class Mode(enum.StrEnum):
    """Whether the listener polls or sleeps, and on whose lock (see the module doc)."""

    POLLING = "polling"
    HOLDING = "holding"
    RELYING = "relying"


class Action(enum.Enum):
    """What the driver must do next; it reports the outcome as an Event."""

    WAIT = "wait"  # for a notification, at most wait_time seconds: NOTIFIED or QUIET
    CHECK_BACKEND = "check backend"  # is this still the session's backend? CHECKED
    LET_GO = "let go"  # release the wake lock and notify "wake": LET_GO
    READ = "read"  # hand the hub what committed since the last read: FOUND or EMPTY
    TRY_SLEEP = "try sleep"  # try to take the wake lock: HELD, BUSY or OTHER


class Event(enum.Enum):
    """What happened when the driver did an Action. The TRY_SLEEP outcomes have the
    values the listener's SQL answers with."""

    NOTIFIED = "notified"  # WAIT: a notification came (the driver drains the rest)
    QUIET = "quiet"  # WAIT: none came in time
    CHECKED = "checked"  # CHECK_BACKEND: still the session's backend
    LET_GO = "let go"  # LET_GO: the lock is released and "wake" sent
    FOUND = "found"  # READ: it handed the hub at least one event
    EMPTY = "empty"  # READ: nothing new
    HELD = "held"  # TRY_SLEEP: the lock is ours now
    BUSY = "busy"  # TRY_SLEEP: writers that skipped NOTIFY are in flight
    OTHER = "other"  # TRY_SLEEP: another listener holds it


# The events each action can end in.
_OUTCOMES = {
    Action.WAIT: (Event.NOTIFIED, Event.QUIET),
    Action.CHECK_BACKEND: (Event.CHECKED,),
    Action.LET_GO: (Event.LET_GO,),
    Action.READ: (Event.FOUND, Event.EMPTY),
    Action.TRY_SLEEP: (Event.HELD, Event.BUSY, Event.OTHER),
}


class ProtocolError(RuntimeError):
    """The driver reported an event its pending action cannot end in: a bug in the driver."""


class WakeProtocol:
    """One listener's wake protocol: its mode, and the next thing to do.

    ``check_interval``: read after this much silence (a health check, and the
    delivery path for writers that set gateway.notify = off); ``poll_interval`` > 0
    caps it. ``busy_poll``: poll this often while changes keep coming; 0 or less:
    never poll (see the module doc).
    """

    def __init__(self, check_interval: float, poll_interval: float = 0.0, busy_poll: float = 0.01) -> None:
        self.check_interval = min(check_interval, poll_interval) if poll_interval > 0 else check_interval
        self.stay_asleep = busy_poll <= 0
        self.busy_poll = RELIANT_CHECK / 10 if self.stay_asleep else busy_poll
        self.mode = Mode.POLLING
        self.empty_polls = 0  # reads in a row that found nothing
        self.action = Action.WAIT
        self._notified = False  # how this round's wait ended
        self._catching_up = False  # the pending READ follows a TRY_SLEEP: it counts for nothing

    @property
    def wait_time(self) -> float:
        """How long the next WAIT lasts at most, in seconds."""
        if self.mode is Mode.POLLING:
            # Settled but a writer holds the lock shared (a long or idle-in-transaction
            # writer, a prepared transaction): poll ever less often, up to BUSY_POLL_MAX.
            beyond = self.empty_polls - SETTLE_POLLS
            if beyond < 0:
                return self.busy_poll
            return max(self.busy_poll, min(self.busy_poll * float(2 ** min(beyond + 1, 16)), BUSY_POLL_MAX))
        if self.mode is Mode.RELYING:
            return min(self.check_interval, RELIANT_CHECK)
        return self.check_interval

    def connected(self) -> Action:
        """A new session (it holds no lock) has caught up: start polling; WAIT."""
        self.mode = Mode.POLLING
        self.empty_polls = 0
        self._catching_up = False
        self.action = Action.WAIT
        return self.action

    def handle(self, event: Event) -> Action:
        """The pending action ended in ``event``: move on; the next action."""
        if event not in _OUTCOMES[self.action]:
            raise ProtocolError(f"{event.name} cannot end {self.action.name} (mode {self.mode.value})")
        if self.action is Action.WAIT:
            self.action = self._after_wait(event is Event.NOTIFIED)
        elif self.action is Action.CHECK_BACKEND:
            self.action = Action.READ
        elif self.action is Action.LET_GO:
            self.mode = Mode.POLLING
            self.action = Action.READ
        elif self.action is Action.READ:
            self.action = self._after_read(event is Event.FOUND)
        else:
            self.action = self._after_try_sleep(event)
        return self.action

    def _after_wait(self, notified: bool) -> Action:
        self._notified = notified
        if not notified:
            return Action.CHECK_BACKEND if self.mode is Mode.HOLDING else Action.READ
        self.empty_polls = 0
        if self.stay_asleep:
            return Action.READ
        if self.mode is Mode.HOLDING:
            return Action.LET_GO  # then polls (handle: LET_GO)
        self.mode = Mode.POLLING
        return Action.READ

    def _after_read(self, found: bool) -> Action:
        if self._catching_up:
            self._catching_up = False
            return Action.WAIT
        self.empty_polls = 0 if found else self.empty_polls + 1
        settled = self.empty_polls >= SETTLE_POLLS or self.stay_asleep
        # A listener relying on another's lock tries to take it on every wake-up
        # when it never polls (the holder has just let go), else on its timer.
        relying_retry = self.mode is Mode.RELYING and (self.stay_asleep or not self._notified)
        if (self.mode is Mode.POLLING and settled) or relying_retry:
            return Action.TRY_SLEEP
        return Action.WAIT

    def _after_try_sleep(self, outcome: Event) -> Action:
        if outcome is Event.BUSY:
            self.mode = Mode.POLLING
            return Action.WAIT
        self.mode = Mode.HOLDING if outcome is Event.HELD else Mode.RELYING
        self._catching_up = True  # what the writers that skipped NOTIFY committed before
        return Action.READ
