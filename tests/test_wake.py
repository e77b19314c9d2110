"""The wake protocol (gateway.wake) as tables: events in, actions, modes and waits out.

No Postgres, no sleeps: each row starts a machine as a new session would, feeds it
events and checks every action it answers with, then the mode it ends in and how
long it would wait next.
"""

from __future__ import annotations

import pytest

from gateway.wake import BUSY_POLL_MAX, RELIANT_CHECK, SETTLE_POLLS, Action, Event, Mode, ProtocolError, WakeProtocol

# Events.
NOTIFIED, QUIET, CHECKED, LET_GO = Event.NOTIFIED, Event.QUIET, Event.CHECKED, Event.LET_GO
FOUND, EMPTY, HELD, BUSY, OTHER = Event.FOUND, Event.EMPTY, Event.HELD, Event.BUSY, Event.OTHER
# Actions.
WAIT, CHECK, RELEASE, READ, TRY = Action.WAIT, Action.CHECK_BACKEND, Action.LET_GO, Action.READ, Action.TRY_SLEEP

CHECK_INTERVAL = 5.0
BUSY_POLL = 0.01

Steps = list[tuple[Event, Action]]

# Quiet empty polls up to the last one before the listener settles.
UNSETTLED: Steps = [(QUIET, READ), (EMPTY, WAIT)] * (SETTLE_POLLS - 1)
# The settling poll: the tenth empty read in a row tries to take the lock.
SETTLES: Steps = [*UNSETTLED, (QUIET, READ), (EMPTY, TRY)]
ASLEEP_HOLDING: Steps = [*SETTLES, (HELD, READ), (EMPTY, WAIT)]
ASLEEP_RELYING: Steps = [*SETTLES, (OTHER, READ), (EMPTY, WAIT)]

# (what happens, steps from a new session, mode after, empty polls after, next wait)
# fmt: off
ROWS: list[tuple[str, Steps, Mode, int, float]] = [
    ("a new session polls", [], Mode.POLLING, 0, BUSY_POLL),
    ("a quiet empty poll counts", [(QUIET, READ), (EMPTY, WAIT)], Mode.POLLING, 1, BUSY_POLL),
    ("a notified poll that finds events", [(NOTIFIED, READ), (FOUND, WAIT)], Mode.POLLING, 0, BUSY_POLL),
    ("nine empty polls do not settle", UNSETTLED, Mode.POLLING, SETTLE_POLLS - 1, BUSY_POLL),
    ("events found start the count again", [*UNSETTLED, (QUIET, READ), (FOUND, WAIT)], Mode.POLLING, 0, BUSY_POLL),
    ("a notification starts it again", [*UNSETTLED, (NOTIFIED, READ), (EMPTY, WAIT)], Mode.POLLING, 1, BUSY_POLL),
    ("the tenth empty poll tries to sleep", SETTLES, Mode.POLLING, SETTLE_POLLS, 2 * BUSY_POLL),
    # The read after taking the lock catches up with writers that skipped NOTIFY; it
    # counts for nothing, whatever it finds.
    ("lock taken: asleep holding it", ASLEEP_HOLDING, Mode.HOLDING, SETTLE_POLLS, CHECK_INTERVAL),
    ("the catch-up read finds events", [*SETTLES, (HELD, READ), (FOUND, WAIT)],
        Mode.HOLDING, SETTLE_POLLS, CHECK_INTERVAL),
    ("asleep, quiet: check the backend, read", [*ASLEEP_HOLDING, (QUIET, CHECK), (CHECKED, READ), (EMPTY, WAIT)],
        Mode.HOLDING, SETTLE_POLLS + 1, CHECK_INTERVAL),
    ("asleep, notified: let go, poll", [*ASLEEP_HOLDING, (NOTIFIED, RELEASE), (LET_GO, READ), (FOUND, WAIT)],
        Mode.POLLING, 0, BUSY_POLL),
    ("woken, then settles again", [*ASLEEP_HOLDING, (NOTIFIED, RELEASE), (LET_GO, READ), (EMPTY, WAIT),
                                   *UNSETTLED[2:], (QUIET, READ), (EMPTY, TRY), (HELD, READ), (EMPTY, WAIT)],
        Mode.HOLDING, SETTLE_POLLS, CHECK_INTERVAL),
    # Writers hold the lock shared: poll on, ever less often, and try again after each empty poll.
    ("busy: polls on, twice as slow", [*SETTLES, (BUSY, WAIT)], Mode.POLLING, SETTLE_POLLS, 2 * BUSY_POLL),
    ("busy again: slower again", [*SETTLES, (BUSY, WAIT), (QUIET, READ), (EMPTY, TRY), (BUSY, WAIT)],
        Mode.POLLING, SETTLE_POLLS + 1, 4 * BUSY_POLL),
    ("busy, then the writer commits", [*SETTLES, (BUSY, WAIT), (QUIET, READ), (FOUND, WAIT)],
        Mode.POLLING, 0, BUSY_POLL),
    ("busy, then the lock is free", [*SETTLES, (BUSY, WAIT), (QUIET, READ), (EMPTY, TRY), (HELD, READ), (EMPTY, WAIT)],
        Mode.HOLDING, SETTLE_POLLS + 1, CHECK_INTERVAL),
    # Another gateway's listener holds it: sleep too, and try again on the reliant timer.
    ("lock held elsewhere: asleep relying", ASLEEP_RELYING, Mode.RELYING, SETTLE_POLLS, RELIANT_CHECK),
    ("relying, quiet: read, try again", [*ASLEEP_RELYING, (QUIET, READ), (EMPTY, TRY)],
        Mode.RELYING, SETTLE_POLLS + 1, RELIANT_CHECK),
    ("relying, the holder died: take over", [*ASLEEP_RELYING, (QUIET, READ), (EMPTY, TRY), (HELD, READ), (EMPTY, WAIT)],
        Mode.HOLDING, SETTLE_POLLS + 1, CHECK_INTERVAL),
    ("relying, quiet, events: try all the same", [*ASLEEP_RELYING, (QUIET, READ), (FOUND, TRY)],
        Mode.RELYING, 0, RELIANT_CHECK),
    ("relying, notified: poll (no lock to let go)", [*ASLEEP_RELYING, (NOTIFIED, READ), (FOUND, WAIT)],
        Mode.POLLING, 0, BUSY_POLL),
]
# fmt: on


def walk(wake: WakeProtocol, steps: Steps) -> None:
    assert wake.connected() is WAIT
    for i, (event, expected) in enumerate(steps):
        assert wake.handle(event) is expected, f"step {i}: {event.name} in {wake.mode.name}"
        assert wake.action is expected


@pytest.mark.parametrize(("steps", "mode", "empty_polls", "wait"), [row[1:] for row in ROWS], ids=[r[0] for r in ROWS])
def test_polling_listener(steps: Steps, mode: Mode, empty_polls: int, wait: float) -> None:
    wake = WakeProtocol(CHECK_INTERVAL, busy_poll=BUSY_POLL)
    walk(wake, steps)
    assert (wake.mode, wake.empty_polls, wake.wait_time) == (mode, empty_polls, pytest.approx(wait))


# busy_poll = 0: never poll. Settled from the first read; a notification is read
# without letting go of the lock; a listener relying on another's tries to take it on
# every wake-up (the holder has just let go), and polls in tenths of RELIANT_CHECK.
SLEEPY_HOLDING: Steps = [(QUIET, READ), (EMPTY, TRY), (HELD, READ), (EMPTY, WAIT)]
SLEEPY_RELYING: Steps = [(QUIET, READ), (EMPTY, TRY), (OTHER, READ), (EMPTY, WAIT)]
# fmt: off
SLEEPY_ROWS: list[tuple[str, Steps, Mode, float]] = [
    ("the first empty read tries to sleep", [(QUIET, READ), (EMPTY, TRY)], Mode.POLLING, RELIANT_CHECK / 10),
    ("notified before it slept: read, try", [(NOTIFIED, READ), (FOUND, TRY)], Mode.POLLING, RELIANT_CHECK / 10),
    ("holding, notified: read, keep the lock", [*SLEEPY_HOLDING, (NOTIFIED, READ), (FOUND, WAIT)],
        Mode.HOLDING, CHECK_INTERVAL),
    ("holding, quiet: check, read", [*SLEEPY_HOLDING, (QUIET, CHECK), (CHECKED, READ), (EMPTY, WAIT)],
        Mode.HOLDING, CHECK_INTERVAL),
    ("relying, notified: try to take over", [*SLEEPY_RELYING, (NOTIFIED, READ), (FOUND, TRY), (HELD, READ),
                                             (EMPTY, WAIT)], Mode.HOLDING, CHECK_INTERVAL),
    ("relying, quiet: try again", [*SLEEPY_RELYING, (QUIET, READ), (EMPTY, TRY), (OTHER, READ), (EMPTY, WAIT)],
        Mode.RELYING, RELIANT_CHECK),
    ("busy: polls on", [(QUIET, READ), (EMPTY, TRY), (BUSY, WAIT), (QUIET, READ), (EMPTY, TRY)],
        Mode.POLLING, RELIANT_CHECK / 10),
]
# fmt: on


@pytest.mark.parametrize(("steps", "mode", "wait"), [r[1:] for r in SLEEPY_ROWS], ids=[r[0] for r in SLEEPY_ROWS])
def test_listener_that_never_polls(steps: Steps, mode: Mode, wait: float) -> None:
    wake = WakeProtocol(CHECK_INTERVAL, busy_poll=0)
    walk(wake, steps)
    assert (wake.mode, wake.wait_time) == (mode, pytest.approx(wait))


# Empty polls in a row -> the wait before the next poll, for busy_poll 0.01: the
# interval doubles from the first poll past settling, up to BUSY_POLL_MAX.
BACK_OFF = [(0, 0.01), (SETTLE_POLLS - 1, 0.01), (10, 0.02), (11, 0.04), (12, 0.08), (13, 0.16), (14, BUSY_POLL_MAX)]


def empty_polls_in_a_row(n: int) -> Steps:
    """Quiet empty polls, ``n`` in all; past settling each one tries to sleep and finds writers."""
    if n < SETTLE_POLLS:
        return [(QUIET, READ), (EMPTY, WAIT)] * n
    return [*SETTLES, (BUSY, WAIT)] + [(QUIET, READ), (EMPTY, TRY), (BUSY, WAIT)] * (n - SETTLE_POLLS)


@pytest.mark.parametrize(("empty_polls", "wait"), [*BACK_OFF, (40, BUSY_POLL_MAX), (10_000, BUSY_POLL_MAX)])
def test_busy_polls_back_off_to_busy_poll_max(empty_polls: int, wait: float) -> None:
    wake = WakeProtocol(CHECK_INTERVAL, busy_poll=BUSY_POLL)
    walk(wake, empty_polls_in_a_row(empty_polls))
    assert (wake.mode, wake.empty_polls, wake.wait_time) == (Mode.POLLING, empty_polls, pytest.approx(wait))


def test_busy_poll_slower_than_the_cap_is_kept() -> None:
    wake = WakeProtocol(CHECK_INTERVAL, busy_poll=1.0)
    walk(wake, empty_polls_in_a_row(SETTLE_POLLS + 5))
    assert wake.wait_time == 1.0


@pytest.mark.parametrize(
    ("check", "poll", "holding", "relying"),
    [(5.0, 0.0, 5.0, RELIANT_CHECK), (60.0, 0.2, 0.2, 0.2), (0.5, 2.0, 0.5, 0.5), (60.0, 0.0, 60.0, RELIANT_CHECK)],
)
def test_sleepers_read_after_the_check_interval_capped_by_the_poll_interval(
    check: float, poll: float, holding: float, relying: float
) -> None:
    for outcome, mode, wait in ((HELD, Mode.HOLDING, holding), (OTHER, Mode.RELYING, relying)):
        wake = WakeProtocol(check, poll_interval=poll, busy_poll=BUSY_POLL)
        walk(wake, [*SETTLES, (outcome, READ), (EMPTY, WAIT)])
        assert (wake.mode, wake.wait_time) == (mode, wait)


@pytest.mark.parametrize("steps", [ASLEEP_HOLDING, ASLEEP_RELYING, [*SETTLES, (BUSY, WAIT)], [*SETTLES, (HELD, READ)]])
def test_a_new_session_starts_polling_whatever_came_before(steps: Steps) -> None:
    """A dropped connection lost its lock: the next session polls, and counts from zero."""
    wake = WakeProtocol(CHECK_INTERVAL, busy_poll=BUSY_POLL)
    walk(wake, steps)
    walk(wake, [(QUIET, READ), (EMPTY, WAIT)])  # walk() starts with connected()
    assert (wake.mode, wake.empty_polls, wake.wait_time) == (Mode.POLLING, 1, BUSY_POLL)


@pytest.mark.parametrize(
    ("steps", "wrong"),
    [
        ([], FOUND),  # WAIT ends in NOTIFIED or QUIET
        ([(QUIET, READ)], QUIET),
        ([*ASLEEP_HOLDING, (QUIET, CHECK)], EMPTY),
        ([*ASLEEP_HOLDING, (NOTIFIED, RELEASE)], NOTIFIED),
        (SETTLES, EMPTY),
    ],
)
def test_an_event_the_pending_action_cannot_end_in_is_refused(steps: Steps, wrong: Event) -> None:
    wake = WakeProtocol(CHECK_INTERVAL, busy_poll=BUSY_POLL)
    walk(wake, steps)
    before = (wake.mode, wake.empty_polls, wake.action)
    with pytest.raises(ProtocolError, match=wrong.name):
        wake.handle(wrong)
    assert (wake.mode, wake.empty_polls, wake.action) == before


def test_modes_are_the_names_metrics_and_logs_use() -> None:
    assert [str(mode) for mode in Mode] == ["polling", "holding", "relying"]
    assert {Event(value) for value in ("held", "busy", "other")} == {HELD, BUSY, OTHER}  # TRY_SLEEP's answers
