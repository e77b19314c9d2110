"""The hub: topic fan-out, coalesced writes to sinks, slow consumers, and the resume hand-over.

A fake sink stands in for the connection: it records every bytes object the hub
writes, in order, and reports a backlog the test chooses (like a transport's
write buffer size, or -1 once the connection is closing).
"""

from __future__ import annotations

from gateway.ending import EndReason
from gateway.hub import CLIENT_GONE, SLOW_CONSUMER, Subscriber
from gateway.hub import Hub as BareHub
from gateway.journal import Event, Snapshot
from gateway.metrics import Metrics
from gateway.sse import encode_event

BIG = 1 << 20


class Hub(BareHub):
    """A hub handed a recording collaborator, as the app hands it one: ``counted`` is
    what it reported (events read, deliveries, bytes sent, slow consumers closed)."""

    def __init__(self, buffer_bound: int) -> None:
        self.counted = Metrics()
        super().__init__(buffer_bound, self.counted)


HEARTBEAT = b": heartbeat\n\n"


class FakeSink:
    """Records each write (the bytes objects themselves, in order); returns ``backlog``."""

    def __init__(self, backlog: int = 0) -> None:
        self.writes: list[bytes] = []
        self.backlog = backlog

    def __call__(self, data: bytes) -> int:
        assert isinstance(data, bytes) and data, "the hub wrote something that is not non-empty bytes"
        self.writes.append(data)
        return self.backlog

    @property
    def received(self) -> bytes:
        return b"".join(self.writes)


class AbortCounter:
    """Stands in for the stream's end (a subscription's ``on_end``): it hears why, once per
    end, unsubscribes as the stream's end does, and counts the connections a slow consumer's
    end cuts off (``calls``, what ``transport.abort`` would have been)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.sub: Subscriber | None = None
        self.reasons: list[EndReason] = []

    @property
    def calls(self) -> int:
        return self.reasons.count(SLOW_CONSUMER)

    def __call__(self, reason: EndReason) -> None:
        self.reasons.append(reason)
        assert self.sub is not None
        self.hub.unsubscribe(self.sub)


def owned(hub: Hub, topics: list[str], resuming: bool) -> tuple[Subscriber, AbortCounter]:
    """A subscriber whose end is owned by an AbortCounter (as a stream's is by its StreamEnd)."""
    end = AbortCounter(hub)
    end.sub = hub.subscribe(topics, resuming=resuming, on_end=end)
    return end.sub, end


def todo(id_: int, pk: str = "1", tx: int = 1, op: str = "insert") -> Event:
    return Event(id=id_, tx=tx, topic="todos", table="todos", op=op, pk=pk, row=f'{{"id":{pk}}}', old=None)


def published(id_: int, topic: str, tx: int = 1) -> Event:
    return Event(id=id_, tx=tx, topic=topic, table=None, op="publish", pk=None, row=f'{{"n":{id_}}}', old=None)


def wire(*events: Event) -> bytes:
    return b"".join(encode_event(e) for e in events)


def live(hub: Hub, topics: list[str], backlog: int = 0) -> tuple[Subscriber, FakeSink, AbortCounter]:
    """A fresh subscriber whose stream is live: subscribed, abort hooked, sink attached."""
    sub, abort = owned(hub, topics, resuming=False)
    sink = FakeSink(backlog)
    hub.attach(sub, sink)
    return sub, sink, abort


# Fan-out


async def test_events_reach_only_subscribers_of_matching_topics() -> None:
    hub = Hub(BIG)
    _, table, _ = live(hub, ["todos"])
    _, row_one, _ = live(hub, ["todos/1"])
    _, row_two, _ = live(hub, ["todos/2"])
    _, chat, _ = live(hub, ["chat"])
    _, other, _ = live(hub, ["notes"])
    one, two, msg = todo(1, pk="1"), todo(2, pk="2"), published(3, "chat")

    hub.publish([one, two, msg])

    assert table.writes == [wire(one, two)]
    assert row_one.writes == [wire(one)]
    assert row_two.writes == [wire(two)]
    assert chat.writes == [wire(msg)]
    assert other.writes == []


async def test_publish_topic_does_not_match_row_topic_subscriber() -> None:
    hub = Hub(BIG)
    _, sink, _ = live(hub, ["todos/1"])

    hub.publish([published(1, "todos"), published(2, "todos/10"), todo(3, pk="10")])

    assert sink.writes == []
    row_change = todo(4, pk="1")
    hub.publish([row_change])  # the row topic itself does match
    assert sink.writes == [wire(row_change)]


async def test_event_matching_two_topics_of_one_subscriber_is_written_once() -> None:
    hub = Hub(BIG)
    _, sink, _ = live(hub, ["todos", "todos/1"])
    event = todo(1, pk="1")

    hub.publish([event])

    assert sink.writes == [wire(event)]
    assert hub.counted.deliveries == 1


async def test_statistics_count_events_deliveries_bytes_topics_and_subscribers() -> None:
    hub = Hub(BIG)
    _, table, _ = live(hub, ["todos"])
    _, both, _ = live(hub, ["todos", "todos/1"])
    _, chat, _ = live(hub, ["chat"])

    hub.publish([todo(1, pk="1"), todo(2, pk="2"), published(3, "nobody")])

    stats = hub.statistics()
    assert (stats.subscribers, stats.topics, hub.counted.events_in) == (3, 3, 3)
    assert hub.counted.deliveries == 4  # event 1 to both todos subscribers, event 2 to both
    assert stats.position == 3
    assert chat.writes == []
    assert hub.subscribers_by_topic() == {"todos": 2, "todos/1": 1, "chat": 1}

    page_bytes = len(wire(todo(1, pk="1"), todo(2, pk="2")))
    assert hub.counted.bytes_out == len(table.received) + len(both.received) == 2 * page_bytes


def test_subscribers_by_topic_counts_each_topic_and_forgets_a_topic_left_empty() -> None:
    hub = Hub(BIG)
    one, _, _ = live(hub, ["todos", "todos/1"])
    live(hub, ["todos"])
    assert hub.subscribers_by_topic() == {"todos": 2, "todos/1": 1}
    hub.unsubscribe(one)
    assert hub.subscribers_by_topic() == {"todos": 1}


async def test_position_tracks_highest_event_id_and_new_subscriber_starts_there() -> None:
    hub = Hub(BIG)
    assert hub.position == 0

    hub.publish([published(3, "x"), published(7, "x")])
    assert hub.position == 7
    hub.publish([])
    assert hub.position == 7
    hub.publish([published(5, "x")])  # never moves backwards
    assert hub.position == 7
    hub.publish([published(12, "nobody-listens")])
    assert hub.position == 12
    assert hub.statistics().position == 12

    assert hub.subscribe(["x"], resuming=False).start_position == 12


async def test_position_is_moved_only_by_the_hub_starting_where_the_listener_starts() -> None:
    hub = Hub(BIG)
    hub.start_at(40)  # the journal's newest id when the listener first connected
    assert hub.position == 40
    assert hub.subscribe(["x"], resuming=False).start_position == 40
    hub.publish([published(12, "x")])
    assert hub.position == 40
    hub.publish([published(41, "x")])
    assert hub.position == 41
    try:
        hub.position = 7  # type: ignore[misc]
    except AttributeError:
        pass
    assert hub.position == 41


# Coalescing


async def test_one_publish_of_five_events_is_one_write_per_subscriber_in_order() -> None:
    hub = Hub(BIG)
    sinks = [live(hub, ["chat"])[1] for _ in range(3)]
    sinks.append(live(hub, ["chat", "notes"])[1])  # multi-topic: taken event by event, still one write
    events = [published(i, "chat") for i in range(1, 6)]

    hub.publish(events)

    for sink in sinks:
        assert sink.writes == [wire(*events)]


async def test_each_publish_page_is_its_own_write() -> None:
    hub = Hub(BIG)
    _, sink, _ = live(hub, ["chat"])
    first, second = published(1, "chat"), published(2, "chat")

    hub.publish([first])
    hub.publish([second])

    assert sink.writes == [wire(first), wire(second)]


async def test_single_topic_subscribers_of_a_topic_receive_the_same_bytes_object() -> None:
    hub = Hub(BIG)
    sinks = [live(hub, ["chat"])[1] for _ in range(3)]
    events = [published(i, "chat") for i in range(1, 4)]

    hub.publish(events)

    (first,), (second,), (third,) = (sink.writes for sink in sinks)
    assert first == wire(*events)
    assert first is second is third  # the page was joined once for the topic


async def test_nothing_is_written_before_attach_and_queued_events_go_first_at_attach() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=False)
    sink = FakeSink()
    early = [published(1, "chat"), published(2, "chat")]

    hub.publish(early[:1])
    hub.publish(early[1:])

    assert sub.buffered_bytes == len(wire(*early))
    assert hub.counted.bytes_out == 0  # nothing has gone anywhere yet
    hub.attach(sub, sink)
    assert sink.writes == [wire(*early)]  # one write at attach
    assert sub.buffered_bytes == 0
    assert hub.counted.bytes_out == len(wire(*early))

    later = published(3, "chat")
    hub.publish([later])
    assert sink.writes == [wire(*early), wire(later)]


async def test_attach_with_nothing_queued_writes_nothing() -> None:
    hub = Hub(BIG)
    _, sink, _ = live(hub, ["chat"])

    assert sink.writes == []


async def test_multi_topic_subscriber_gets_interleaved_page_in_order_without_duplicates() -> None:
    hub = Hub(BIG)
    _, sink, _ = live(hub, ["chat", "todos", "todos/2"])
    chat1 = published(1, "chat")
    todo2 = todo(2, pk="2")  # on "todos" and "todos/2": both subscribed
    chat3 = published(3, "chat")
    todo4 = todo(4, pk="1")  # on "todos" only
    notes5 = published(5, "notes")  # not subscribed
    todo6 = todo(6, pk="2", op="update")
    chat7 = published(7, "chat")

    hub.publish([chat1, todo2, chat3, todo4, notes5, todo6, chat7])

    assert sink.writes == [wire(chat1, todo2, chat3, todo4, todo6, chat7)]
    assert hub.counted.deliveries == 6


# Slow consumers


async def test_slow_consumer_is_closed_aborted_removed_and_counted() -> None:
    bound = 10_000
    hub = Hub(bound)
    slow, slow_sink, slow_abort = live(hub, ["chat"], backlog=bound + 1)
    fast = [live(hub, ["chat"]) for _ in range(3)]
    _, multi_sink, _ = live(hub, ["chat", "notes"])
    page = [published(i, "chat") for i in range(1, 6)]

    hub.publish(page)

    assert slow_sink.writes == [wire(*page)]  # it was written to, then its backlog was too big
    assert slow.closed_reason == SLOW_CONSUMER
    assert slow.closed_reason is SLOW_CONSUMER
    assert slow_abort.calls == 1
    stats = hub.statistics()
    assert hub.counted.slow_consumers_closed == 1
    assert stats.subscribers == 4
    for _, sink, abort in fast:
        assert sink.writes == [wire(*page)]
        assert abort.calls == 0
    assert multi_sink.writes == [wire(*page)]

    later = published(6, "chat")
    hub.publish([later])

    assert slow_sink.writes == [wire(*page)]  # removed: no more writes
    assert slow_abort.calls == 1
    for _, sink, _ in fast:
        assert sink.writes == [wire(*page), wire(later)]
    assert multi_sink.writes == [wire(*page), wire(later)]
    assert hub.counted.slow_consumers_closed == 1
    assert not any(sub.closed_reason is SLOW_CONSUMER for sub, _, _ in fast)


async def test_backlog_exactly_at_bound_is_not_a_slow_consumer() -> None:
    bound = 10_000
    hub = Hub(bound)
    sub, sink, abort = live(hub, ["chat"], backlog=bound)
    events = [published(i, "chat") for i in range(1, 4)]

    for event in events:
        hub.publish([event])

    assert sub.closed_reason is None
    assert sub.closed_reason is not SLOW_CONSUMER
    assert abort.calls == 0
    assert sink.writes == [wire(e) for e in events]
    assert hub.counted.slow_consumers_closed == 0
    assert hub.statistics().subscribers == 1


async def test_queue_over_bound_before_attach_is_a_slow_consumer() -> None:
    event_size = len(encode_event(published(1, "chat")))
    hub = Hub(buffer_bound=event_size * 2)
    sub, abort = owned(hub, ["chat"], resuming=False)

    hub.publish([published(1, "chat")])
    hub.publish([published(2, "chat")])  # exactly at the bound: still fine
    assert sub.closed_reason is None
    assert hub.statistics().subscribers == 1

    hub.publish([published(3, "chat"), published(4, "chat")])

    assert sub.closed_reason == SLOW_CONSUMER
    assert sub.closed_reason is SLOW_CONSUMER
    assert abort.calls == 1
    stats = hub.statistics()
    assert hub.counted.slow_consumers_closed == 1
    assert (stats.subscribers, stats.topics) == (0, 0)
    sink = FakeSink()
    hub.attach(sub, sink)
    assert sink.writes == []
    assert hub.counted.slow_consumers_closed == 1


async def test_held_subscriber_whose_held_events_pass_the_bound_is_a_slow_consumer() -> None:
    event_size = len(encode_event(published(1, "chat")))
    hub = Hub(buffer_bound=event_size * 2)
    held, abort = owned(hub, ["chat"], resuming=True)

    hub.publish([published(1, "chat", tx=500)])
    hub.publish([published(2, "chat", tx=500)])  # exactly at the bound: still fine
    assert held.closed_reason is None
    assert held.is_held

    hub.publish([published(i, "chat", tx=500) for i in range(3, 6)])

    assert held.closed_reason == SLOW_CONSUMER
    assert held.closed_reason is SLOW_CONSUMER
    assert abort.calls == 1
    stats = hub.statistics()
    assert hub.counted.slow_consumers_closed == 1
    assert (stats.subscribers, stats.topics) == (0, 0)
    held.go_live(Snapshot.parse("100:100:"))
    sink = FakeSink()
    hub.attach(held, sink)
    assert sink.writes == []


async def test_sink_reporting_a_closing_connection_closes_subscriber_as_client_gone() -> None:
    hub = Hub(BIG)
    gone, gone_sink, _ = live(hub, ["chat"], backlog=-1)
    _, other_sink, _ = live(hub, ["chat"])
    first = published(1, "chat")

    hub.publish([first])

    assert gone.closed_reason == CLIENT_GONE
    assert gone.closed_reason is not SLOW_CONSUMER
    stats = hub.statistics()
    assert hub.counted.slow_consumers_closed == 0
    assert stats.subscribers == 1
    hub.publish([published(2, "chat")])
    assert gone_sink.writes == [wire(first)]
    assert other_sink.writes == [wire(first), wire(published(2, "chat"))]


async def test_sink_reporting_a_closing_connection_at_attach_closes_subscriber_as_client_gone() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=False)
    hub.publish([published(1, "chat")])

    hub.attach(sub, FakeSink(backlog=-1))

    assert sub.closed_reason == CLIENT_GONE
    assert sub.closed_reason is not SLOW_CONSUMER
    stats = hub.statistics()
    assert (stats.subscribers, stats.topics, hub.counted.slow_consumers_closed) == (0, 0, 0)


async def test_subscriber_closed_by_its_handler_gets_no_more_writes_and_leaves_the_hub() -> None:
    hub = Hub(BIG)
    sub, sink, abort = live(hub, ["chat"])
    sub.close(EndReason.TOKEN_EXPIRED)

    hub.publish([published(1, "chat")])

    assert sink.writes == []
    assert sub.closed_reason == EndReason.TOKEN_EXPIRED
    assert sub.closed_reason is not SLOW_CONSUMER
    assert abort.calls == 0
    stats = hub.statistics()
    assert (stats.subscribers, hub.counted.slow_consumers_closed) == (0, 0)


async def test_held_subscriber_closed_for_another_reason_is_not_made_a_slow_consumer() -> None:
    event_size = len(encode_event(published(1, "chat")))
    hub = Hub(buffer_bound=event_size)
    held, abort = owned(hub, ["chat"], resuming=True)
    held.close(EndReason.TOKEN_EXPIRED)  # e.g. the expiry timer, mid-replay

    hub.publish([published(1, "chat", tx=500), published(2, "chat", tx=500)])

    assert held.closed_reason == EndReason.TOKEN_EXPIRED
    assert held.closed_reason is not SLOW_CONSUMER
    assert abort.calls == 0
    assert hub.counted.slow_consumers_closed == 0


# Broadcast


async def test_broadcast_writes_to_live_subscribers_only_not_held_ones() -> None:
    hub = Hub(BIG)
    _, one, _ = live(hub, ["a"])
    _, two, _ = live(hub, ["b", "c"])
    held = hub.subscribe(["a"], resuming=True)
    held_sink = FakeSink()
    attached_held = hub.subscribe(["a"], resuming=True)
    attached_held_sink = FakeSink()
    hub.attach(attached_held, attached_held_sink)

    hub.broadcast(HEARTBEAT)

    assert one.writes == [HEARTBEAT]
    assert two.writes == [HEARTBEAT]
    assert one.writes[0] is HEARTBEAT and two.writes[0] is HEARTBEAT
    assert attached_held_sink.writes == []
    assert hub.counted.bytes_out == 2 * len(HEARTBEAT)
    held.go_live(Snapshot.parse("100:100:"))
    hub.attach(held, held_sink)
    assert held_sink.writes == []  # the heartbeat was not queued for it either


async def test_broadcast_closes_a_subscriber_whose_backlog_passes_the_bound() -> None:
    bound = 40
    hub = Hub(buffer_bound=bound)
    full, full_sink, abort = live(hub, ["a"], backlog=bound + 1)
    _, ok_sink, _ = live(hub, ["b"], backlog=bound)

    hub.broadcast(HEARTBEAT)

    assert ok_sink.writes == [HEARTBEAT]
    assert full_sink.writes == [HEARTBEAT]
    assert full.closed_reason == SLOW_CONSUMER
    assert full.closed_reason is SLOW_CONSUMER
    assert abort.calls == 1
    stats = hub.statistics()
    assert (stats.subscribers, hub.counted.slow_consumers_closed) == (1, 1)
    hub.broadcast(HEARTBEAT)
    assert full_sink.writes == [HEARTBEAT]
    assert ok_sink.writes == [HEARTBEAT, HEARTBEAT]


# Resume hand-over


async def test_held_subscriber_receives_nothing_while_held_even_if_attached() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=True)
    sink = FakeSink()
    hub.attach(sub, sink)
    event = published(1, "chat", tx=50)

    hub.publish([event])
    hub.publish([published(2, "chat", tx=51)])

    assert sub.is_held
    assert sink.writes == []
    assert sub.buffered_bytes == len(wire(event, published(2, "chat", tx=51)))


async def test_go_live_drops_events_the_replay_saw_and_keeps_the_rest_in_order() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=True)
    replayed = Snapshot.parse("100:110:104")
    seen_old = published(1, "chat", tx=90)  # below xmin: the replay sent it
    in_flight = published(2, "chat", tx=104)  # in progress for the replay: it missed it
    seen_mid = published(3, "chat", tx=105)  # committed before the replay: sent
    after = published(4, "chat", tx=110)  # started after the replay's snapshot
    later = published(5, "chat", tx=120)

    hub.publish([seen_old, in_flight])
    hub.publish([seen_mid, after, later])
    sub.go_live(replayed)

    assert not sub.is_held
    assert sub.buffered_bytes == len(wire(in_flight, after, later))
    sink = FakeSink()
    hub.attach(sub, sink)  # as the stream does: go_live, then attach
    assert sink.writes == [wire(in_flight, after, later)]


async def test_late_live_event_the_replay_saw_is_dropped_until_listener_passes_replay() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=True)
    replayed = Snapshot.parse("100:110:104")
    sub.go_live(replayed)
    sink = FakeSink()
    hub.attach(sub, sink)
    late_seen = published(1, "chat", tx=105)  # the replay already sent it
    late_missed = published(2, "chat", tx=104)

    hub.publish([late_seen, late_missed])  # the listener publishes its pages, then advances
    hub.advance(Snapshot.parse("104:112:104"))  # xmin < replay xmax: keep filtering

    assert sub.is_filtering
    assert sink.writes == [wire(late_missed)]
    also_seen = published(3, "chat", tx=99)
    hub.publish([also_seen])
    assert sink.writes == [wire(late_missed)]

    hub.advance(Snapshot.parse("110:115:"))  # xmin >= replay xmax: nothing the replay saw can still arrive

    assert not sub.is_filtering
    low_tx = published(4, "chat", tx=105)  # would have been dropped by the filter
    hub.publish([low_tx])
    assert sink.writes == [wire(late_missed), wire(low_tx)]


async def test_released_subscriber_shares_page_bytes_with_fresh_ones() -> None:
    hub = Hub(BIG)
    resumed = hub.subscribe(["chat"], resuming=True)
    resumed.go_live(Snapshot.parse("100:110:"))
    resumed_sink = FakeSink()
    hub.attach(resumed, resumed_sink)
    _, fresh_sink, _ = live(hub, ["chat"])
    hub.advance(Snapshot.parse("110:110:"))
    events = [published(1, "chat", tx=200), published(2, "chat", tx=201)]

    hub.publish(events)

    assert resumed_sink.writes == [wire(*events)]
    assert resumed_sink.writes[0] is fresh_sink.writes[0]


async def test_advance_does_not_release_filter_of_still_held_subscriber() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=True)

    hub.advance(Snapshot.parse("5000:5000:"))
    sub.go_live(Snapshot.parse("100:110:"))
    sink = FakeSink()
    hub.attach(sub, sink)

    assert sub.is_filtering  # released only by a listener snapshot that arrives after go_live
    hub.publish([published(1, "chat", tx=105)])  # the replay saw it: still dropped
    assert sink.writes == []
    hub.advance(Snapshot.parse("5000:5000:"))
    assert not sub.is_filtering
    event = published(2, "chat", tx=105)
    hub.publish([event])
    assert sink.writes == [wire(event)]


async def test_fresh_subscriber_is_never_held_or_filtered() -> None:
    hub = Hub(BIG)
    sub, sink, _ = live(hub, ["chat"])

    assert not sub.is_held and not sub.is_filtering
    event = published(1, "chat", tx=5)
    hub.publish([event])
    assert sink.writes == [wire(event)]


# Lifecycle


def test_on_end_hears_the_first_reason_once() -> None:
    hub = Hub(BIG)
    reasons: list[EndReason] = []
    sub = hub.subscribe(["chat"], resuming=False, on_end=reasons.append)

    sub.close(EndReason.TOKEN_EXPIRED)
    sub.close(EndReason.SHUTDOWN)  # a second reason is ignored

    assert reasons == [EndReason.TOKEN_EXPIRED]
    assert sub.closed_reason is EndReason.TOKEN_EXPIRED


async def test_close_all_closes_every_subscriber_with_the_reason_and_empties_the_hub() -> None:
    hub = Hub(BIG)
    first, first_sink, first_end = live(hub, ["a"])
    held = hub.subscribe(["b"], resuming=True)
    third, third_sink, _ = live(hub, ["a", "c"])

    hub.close_all(EndReason.SHUTDOWN)

    assert first_end.reasons == [EndReason.SHUTDOWN]
    for sub in (first, held, third):
        assert sub.closed_reason is EndReason.SHUTDOWN
        assert sub.closed_reason is not SLOW_CONSUMER
    stats = hub.statistics()
    assert (stats.subscribers, stats.topics) == (0, 0)
    assert hub.counted.slow_consumers_closed == 0
    hub.publish([published(1, "a")])
    hub.broadcast(HEARTBEAT)
    assert first_sink.writes == [] and third_sink.writes == []


async def test_unsubscribe_stops_delivery_and_is_safe_twice() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat", "todos"], resuming=True)
    _, keep_sink, _ = live(hub, ["chat"])

    hub.unsubscribe(sub)
    hub.unsubscribe(sub)

    stats = hub.statistics()
    assert (stats.subscribers, stats.topics) == (1, 1)
    event = published(1, "chat")
    hub.publish([event])
    sub.go_live(Snapshot.parse("1000:1000:"))
    sink = FakeSink()
    hub.attach(sub, sink)  # it has nothing queued
    assert sink.writes == []
    assert keep_sink.writes == [wire(event)]


async def test_page_larger_than_the_bound_reaches_a_live_client_that_keeps_up() -> None:
    hub = Hub(100)
    sub, sink, abort = live(hub, ["todos"], backlog=0)
    row = '{"x":"' + "y" * 500 + '"}'
    big = Event(id=1, tx=1, topic="todos", table="todos", op="insert", pk="1", row=row, old=None)

    hub.publish([big])

    assert sink.writes == [wire(big)]
    assert sub.closed_reason is not SLOW_CONSUMER and abort.calls == 0
    assert hub.statistics().subscribers == 1


# The end's one owner


async def test_a_closed_subscriber_stays_until_its_owner_unsubscribes_it_once() -> None:
    """The hub tells the owner why and removes nothing itself: one unsubscribe, the owner's."""
    hub = Hub(100)
    reasons: list[EndReason] = []
    slow = hub.subscribe(["chat"], resuming=False, on_end=reasons.append)
    hub.attach(slow, FakeSink(backlog=101))

    hub.publish([published(1, "chat")])

    assert reasons == [SLOW_CONSUMER]
    assert hub.statistics().subscribers == 1  # closed, but the owner has not unsubscribed it yet
    hub.publish([published(2, "chat")])
    assert reasons == [SLOW_CONSUMER]
    hub.unsubscribe(slow)
    hub.unsubscribe(slow)
    stats = hub.statistics()
    assert (stats.subscribers, stats.topics, hub.counted.slow_consumers_closed) == (0, 0, 1)


async def test_subscribers_not_yet_live_overflowing_in_one_page_are_closed_after_the_walk() -> None:
    """Their owners unsubscribe them at once: never while the hub walks the topic's set."""
    event_size = len(encode_event(published(1, "chat")))
    hub = Hub(buffer_bound=event_size)
    waiting = [owned(hub, ["chat"], resuming=False) for _ in range(3)]
    _, sink, _ = live(hub, ["chat"])
    page = [published(1, "chat"), published(2, "chat")]

    hub.publish(page)

    assert [end.reasons for _, end in waiting] == [[SLOW_CONSUMER]] * 3
    assert sink.writes == [wire(*page)]
    stats = hub.statistics()
    assert (stats.subscribers, hub.counted.slow_consumers_closed) == (1, 3)


def test_bytes_out_counts_replayed_and_live_bytes_in_one_counter() -> None:
    """A stream's replay is written by the stream, its live pages by the hub: one total."""
    hub = Hub(buffer_bound=1 << 20)
    hub.count_sent(123)  # what a resuming stream replayed itself
    assert hub.counted.bytes_out == 123
    hub.broadcast(HEARTBEAT)  # nobody subscribed: nothing more went out
    assert hub.counted.bytes_out == 123


async def test_statistics_add_up_over_pages_attaches_and_slow_consumers() -> None:
    """Counters count from the start, not the last page: /metrics serves them as counters."""
    hub = Hub(100)
    early, _ = owned(hub, ["todos"], resuming=False)
    hub.publish([todo(1)])  # queued: not written yet
    sink = FakeSink()
    hub.attach(early, sink)  # written at attach
    _, other, _ = live(hub, ["todos", "chat"])
    hub.publish([todo(2), todo(3, pk="3")])
    hub.publish([published(4, "chat")])
    for _ in range(2):  # two slow consumers, one page after the other
        _, _, abort = live(hub, ["slow"], backlog=101)
        hub.publish([published(5, "slow")])
        assert abort.calls == 1

    assert hub.counted.events_in == 6 and hub.counted.deliveries == 1 + 2 * 2 + 1 + 2
    assert hub.counted.slow_consumers_closed == 2
    written = len(sink.received) + len(other.received) + 2 * len(wire(published(5, "slow")))
    assert hub.counted.bytes_out == written


async def test_bytes_for_a_closing_connection_are_not_counted_as_sent() -> None:
    hub = Hub(BIG)
    live(hub, ["chat"], backlog=-1)
    hub.publish([published(1, "chat")])
    assert hub.counted.bytes_out == 0


async def test_a_closed_subscriber_holds_no_bytes() -> None:
    hub = Hub(BIG)
    held, _ = owned(hub, ["todos"], resuming=True)
    hub.publish([todo(1)])
    assert held.buffered_bytes == len(wire(todo(1)))
    held.close(EndReason.TOKEN_EXPIRED)
    assert held.buffered_bytes == 0 and not held.is_held
