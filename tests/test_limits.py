"""Stream slots: per process (503, try elsewhere) and per client address (429, close one)."""

from __future__ import annotations

import pytest

from gateway.errors import ApiError
from gateway.limits import StreamLimits


def refusal(limits: StreamLimits, client: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        limits.admit(client)
    return caught.value


def test_a_client_past_its_own_limit_gets_a_429_that_says_to_close_one() -> None:
    limits = StreamLimits(per_process=10, per_client=2)
    limits.admit("10.0.0.1")
    limits.admit("10.0.0.1")
    error = refusal(limits, "10.0.0.1")
    assert (error.status, error.code.code) == (429, "too_many_streams")
    assert error.headers == {"Retry-After": "5"}
    assert "10.0.0.1 already holds 2 streams" in error.message and "close one" in error.message
    limits.admit("10.0.0.2")  # another address has its own count


def test_a_full_process_gets_a_503_for_everyone_that_says_retry_elsewhere() -> None:
    limits = StreamLimits(per_process=2, per_client=5)
    limits.admit("a")
    limits.admit("b")
    for client in ("a", "c"):
        error = refusal(limits, client)
        assert (error.status, error.code.code) == (503, "too_many_subscribers")
        assert error.headers == {"Retry-After": "5"}
        assert "maximum of 2 streams" in error.message and "elsewhere" in error.message


def test_the_process_limit_is_checked_before_the_client_limit() -> None:
    limits = StreamLimits(per_process=1, per_client=1)
    limits.admit("a")
    assert refusal(limits, "a").status == 503  # both are full: the process answer wins


def test_a_released_slot_admits_the_next_stream_and_a_refusal_takes_none() -> None:
    limits = StreamLimits(per_process=2, per_client=1)
    limits.admit("a")
    refusal(limits, "a")  # refused: counts nothing
    limits.admit("b")
    refusal(limits, "c")
    limits.release("a")
    limits.admit("c")  # the process slot came back
    limits.release("b")
    limits.release("c")
    limits.admit("a")  # everything came back, the per-address counts too
    limits.admit("b")
    assert refusal(limits, "c").status == 503


def test_release_gives_back_one_slot_of_that_client() -> None:
    limits = StreamLimits(per_process=10, per_client=2)
    limits.admit("a")
    limits.admit("a")
    limits.release("a")
    limits.admit("a")  # one came back...
    assert refusal(limits, "a").status == 429  # ...and only one
