"""The worker group's shared board (gateway.group), without processes: two slots of one board."""

from __future__ import annotations

import ctypes

import pytest

from gateway.config import ConfigError, load_settings
from gateway.errors import ApiError
from gateway.group import CLIENT_BUCKETS, Board, Group, client_bucket


def board(slots: int = 2) -> Board:
    return Board.allocate(slots, lambda kind, size: (kind * size)())


def worker(shared: Board, slot: int) -> Group:
    return Group(shared, slot, pid=1000 + slot, on_ready=lambda: None)


def test_the_limit_counts_streams_on_every_worker() -> None:
    shared = board()
    first, second = worker(shared, 0).limits(4, 2), worker(shared, 1).limits(4, 2)
    first.admit("10.0.0.1")
    second.admit("10.0.0.2")
    second.admit("10.0.0.1")  # the client's second stream, on the other worker
    with pytest.raises(ApiError) as refused:
        second.admit("10.0.0.1")
    assert refused.value.status == 429
    first.admit("10.0.0.3")
    assert shared.total("streams") == 4
    with pytest.raises(ApiError) as full:
        first.admit("10.0.0.4")
    assert full.value.status == 503
    first.release("10.0.0.1")
    first.admit("10.0.0.4")  # a slot freed on one worker is free for the other


def test_a_vacated_slot_gives_back_its_streams_and_keeps_its_counters() -> None:
    shared = board()
    one = worker(shared, 0)
    one.limits(10, 10).admit("10.0.0.1")
    one.metrics().delivered(7)
    assert shared.total("streams") == 1 and shared.client_total(client_bucket("10.0.0.1")) == 1
    shared.vacate(0)  # its worker died
    assert shared.total("streams") == 0 and shared.client_total(client_bucket("10.0.0.1")) == 0
    worker(shared, 0).metrics().delivered(3)  # its successor adds to what was counted
    assert shared.total("deliveries") == 10


def test_metrics_rows_become_the_group_sums() -> None:
    shared = board()
    members = [worker(shared, slot) for slot in (0, 1)]
    for slot, member in enumerate(members):
        member.limits(10, 10).admit(f"10.0.0.{slot}")
        member.metrics().events_read(5)
        member.ready()
    one_worker = [("gateway_subscribers", "gauge", "", 1), ("gateway_events_in_total", "counter", "", 5)]
    summed = {name: value for name, _, _, value in members[0].aggregate(one_worker)}
    assert summed == {"gateway_subscribers": 2, "gateway_events_in_total": 10, "gateway_workers": 2}
    assert 'gateway_worker_subscribers{worker="1",pid="1001"} 1' in members[0].worker_lines()


def test_client_buckets_do_not_depend_on_the_process() -> None:
    assert client_bucket("203.0.113.7") == client_bucket("203.0.113.7") < CLIENT_BUCKETS
    assert ctypes.sizeof(ctypes.c_int32) == 4  # vacate() clears a row of 4-byte counts


def test_workers_setting() -> None:
    assert load_settings(None, environ={}).workers == 1
    assert load_settings(None, environ={"GATEWAY_WORKERS": "3"}).workers == 3
    assert load_settings(None, environ={"GATEWAY_WORKERS": "auto"}).workers >= 1
    with pytest.raises(ConfigError, match="GATEWAY_WORKERS='0': must be a positive whole number, or auto"):
        load_settings(None, environ={"GATEWAY_WORKERS": "0"})
