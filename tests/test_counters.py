"""The counting collaborator: the hub and the listener report to it; nobody reads them back."""

from __future__ import annotations

from gateway.ending import EndReason
from gateway.hub import Hub
from gateway.journal import Event
from gateway.metrics import Metrics
from gateway.wake import Mode


def _event(event_id: int, topic: str = "todos") -> Event:
    return Event(id=event_id, tx=event_id, topic=topic, table=None, op="publish", pk=None, row="{}", old=None)


def test_a_hub_built_without_counters_still_fans_out() -> None:
    hub = Hub(1 << 20)
    got: list[bytes] = []
    sub = hub.subscribe(["todos"], resuming=False)
    hub.attach(sub, lambda data: got.append(data) or 0)
    hub.publish([_event(1)])
    assert got and hub.position == 1


def test_the_hub_reports_each_page_its_deliveries_bytes_and_slow_consumers() -> None:
    counted = Metrics()
    hub = Hub(1 << 20, counted)
    written: list[bytes] = []
    subs = [hub.subscribe(["todos"], resuming=False) for _ in range(3)]
    for sub in subs:
        hub.attach(sub, lambda data: written.append(data) or 0)
    hub.publish([_event(1), _event(2), _event(3, "other")])
    assert (counted.events_in, counted.deliveries) == (3, 6)
    assert counted.bytes_out == sum(map(len, written)) > 0
    subs[0].close(EndReason.SLOW_CONSUMER)
    subs[1].close(EndReason.CLIENT_GONE)
    assert counted.slow_consumers_closed == 1
    assert hub.statistics().subscribers == 1


def test_metrics_records_what_the_listener_reports() -> None:
    counted = Metrics()
    counted.listener_connected(True)
    counted.listener_mode(Mode.HOLDING)
    counted.listener_reconnected()
    counted.listener_connected(False)
    assert (counted.listener_up, counted.wake_mode, counted.listener_reconnects) == (False, Mode.HOLDING, 1)
