"""A stream's end as data: every reason in every phase, and an end that comes twice."""

from __future__ import annotations

import pytest

from gateway.ending import EndReason, Farewell, Phase, farewell
from gateway.sse import encode_goodbye

TOLD = [EndReason.TOKEN_EXPIRED, EndReason.SHUTDOWN, EndReason.REPLAY_FAILED]

# phase, reason -> (goodbye written?, cut off?, the stream logs its own access line?)
TABLE = [
    *[(Phase.OPENING, reason, False, False, False) for reason in EndReason],
    *[(phase, EndReason.CLIENT_GONE, False, False, True) for phase in (Phase.WRITING, Phase.LIVE)],
    *[(phase, EndReason.SLOW_CONSUMER, False, True, True) for phase in (Phase.WRITING, Phase.LIVE)],
    *[(phase, reason, True, False, True) for phase in (Phase.WRITING, Phase.LIVE) for reason in TOLD],
]


def test_the_table_covers_every_reason_in_every_phase_a_stream_can_end_in() -> None:
    assert {(phase, reason) for phase, reason, *_ in TABLE} == {
        (phase, reason) for phase in Phase if phase is not Phase.ENDED for reason in EndReason
    }


@pytest.mark.parametrize(("phase", "reason", "goodbye", "cut_off", "logs"), TABLE)
def test_farewell_by_phase_and_reason(
    phase: Phase, reason: EndReason, goodbye: bool, cut_off: bool, logs: bool
) -> None:
    plan = farewell(phase, reason)

    assert plan == Farewell(reason, reason.goodbye if goodbye else None, cut_off=cut_off, logs_access=logs)
    if goodbye:
        assert plan.goodbye == encode_goodbye(reason.text)


@pytest.mark.parametrize("reason", list(EndReason))
def test_an_ended_stream_ends_no_more_whatever_the_reason(reason: EndReason) -> None:
    assert farewell(Phase.ENDED, reason) is None


def test_nobody_is_told_when_the_client_is_gone_or_not_reading() -> None:
    assert EndReason.CLIENT_GONE.goodbye is None and not EndReason.CLIENT_GONE.cuts_off
    assert EndReason.SLOW_CONSUMER.goodbye is None and EndReason.SLOW_CONSUMER.cuts_off
    assert not any(reason.cuts_off for reason in TOLD)


@pytest.mark.parametrize("reason", TOLD)
def test_each_goodbye_is_one_comment_line_that_says_what_to_do_once(reason: EndReason) -> None:
    assert reason.goodbye is not None
    text = reason.goodbye.decode()
    assert text.startswith(": closing: ") and text.endswith("\n") and text.count("\n") == 1
    assert text.count("reconnect") == 1  # not "reconnect with a new one; reconnect with Last-Event-ID"


def test_goodbye_texts() -> None:
    assert EndReason.TOKEN_EXPIRED.goodbye == b": closing: the token expired; reconnect with a new token\n"
    assert EndReason.SHUTDOWN.goodbye == b": closing: server shutting down; reconnect with Last-Event-ID to resume\n"
    assert EndReason.REPLAY_FAILED.goodbye == b": closing: replay failed; reconnect with Last-Event-ID to resume\n"
