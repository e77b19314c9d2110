"""The hub: topic fan-out, coalescing, slow consumers, and the resume hand-over."""

from __future__ import annotations

import asyncio

import pytest

from gateway.hub import Hub, Subscriber, SubscriberClosed
from gateway.journal import Event, Snapshot
from gateway.sse import encode_event

BIG = 1 << 20


def todo(id_: int, pk: str = "1", tx: int = 1, op: str = "insert") -> Event:
    return Event(id=id_, tx=tx, topic="todos", table="todos", op=op, pk=pk, row=f'{{"id":{pk}}}', old=None)


def published(id_: int, topic: str, tx: int = 1) -> Event:
    return Event(id=id_, tx=tx, topic=topic, table=None, op="publish", pk=None, row=f'{{"n":{id_}}}', old=None)


def wire(*events: Event) -> bytes:
    return b"".join(encode_event(e) for e in events)


async def take(sub: Subscriber) -> bytes:
    """What the subscriber has queued now; b"" if nothing (never waits)."""
    try:
        return await asyncio.wait_for(sub.next_chunk(), 0.05)
    except TimeoutError:
        return b""


# Fan-out


async def test_events_reach_only_subscribers_of_matching_topics() -> None:
    hub = Hub(BIG)
    table = hub.subscribe(["todos"], resuming=False)
    row_one = hub.subscribe(["todos/1"], resuming=False)
    row_two = hub.subscribe(["todos/2"], resuming=False)
    chat = hub.subscribe(["chat"], resuming=False)
    other = hub.subscribe(["notes"], resuming=False)
    one, two, msg = todo(1, pk="1"), todo(2, pk="2"), published(3, "chat")

    hub.publish([one, two, msg])

    assert await take(table) == wire(one, two)
    assert await take(row_one) == wire(one)
    assert await take(row_two) == wire(two)
    assert await take(chat) == wire(msg)
    assert await take(other) == b""


async def test_publish_topic_does_not_match_row_topic_prefix() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["todos/1"], resuming=False)

    hub.publish([published(1, "todos"), published(2, "todos/10")])

    assert await take(sub) == b""


async def test_event_matching_two_topics_of_one_subscriber_is_queued_once() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["todos", "todos/1"], resuming=False)
    event = todo(1, pk="1")

    hub.publish([event])

    assert await take(sub) == wire(event)
    assert hub.statistics().deliveries == 1


async def test_statistics_count_events_deliveries_topics_and_subscribers() -> None:
    hub = Hub(BIG)
    hub.subscribe(["todos"], resuming=False)
    hub.subscribe(["todos", "todos/1"], resuming=False)
    hub.subscribe(["chat"], resuming=False)

    hub.publish([todo(1, pk="1"), todo(2, pk="2"), published(3, "nobody")])

    stats = hub.statistics()
    assert (stats.subscribers, stats.topics, stats.events_in) == (3, 3, 3)
    assert stats.deliveries == 4  # event 1 to both todos subscribers, event 2 to both
    assert stats.position == 3


# Coalescing


async def test_batch_published_in_one_call_is_read_in_one_chunk() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=False)
    reader = asyncio.ensure_future(sub.next_chunk())
    await asyncio.sleep(0)  # the reader is now waiting
    events = [published(i, "chat") for i in range(1, 6)]

    hub.publish(events)
    chunk = await asyncio.wait_for(reader, 1)

    assert isinstance(chunk, bytes)
    assert chunk == wire(*events)
    assert await take(sub) == b""


async def test_events_from_several_calls_before_a_read_come_out_together_in_order() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=False)
    first, second = published(1, "chat"), published(2, "chat")

    hub.publish([first])
    hub.publish([second])

    assert await take(sub) == wire(first, second)


async def test_event_is_encoded_once_and_the_same_bytes_object_is_shared() -> None:
    hub = Hub(BIG)
    subs = [hub.subscribe(["chat"], resuming=False) for _ in range(3)]

    hub.publish([published(1, "chat")])
    chunks = [await sub.next_chunk() for sub in subs]

    # one queued chunk is handed out as is, so identity shows the encoding was shared
    assert chunks[0] is chunks[1] is chunks[2]


# Slow consumers


async def test_slow_consumer_is_closed_and_others_unaffected() -> None:
    event_size = len(encode_event(published(1, "chat")))
    hub = Hub(buffer_bound=event_size * 3)
    slow = hub.subscribe(["chat"], resuming=False)
    fast = hub.subscribe(["chat"], resuming=False)
    received = b""
    sent = []

    for i in range(1, 9):
        event = published(i, "chat")
        sent.append(event)
        hub.publish([event])
        received += await take(fast)

    with pytest.raises(SubscriberClosed) as closed:
        await slow.next_chunk()
    assert "slow consumer" in closed.value.reason
    assert slow.closed_reason == closed.value.reason
    stats = hub.statistics()
    assert stats.slow_consumers_closed == 1
    assert stats.subscribers == 1
    assert received == wire(*sent)
    hub.publish([published(9, "chat")])
    assert await take(fast) == wire(published(9, "chat"))


async def test_buffer_exactly_at_bound_is_not_a_slow_consumer() -> None:
    event = published(1, "chat")
    hub = Hub(buffer_bound=len(encode_event(event)) * 2)
    sub = hub.subscribe(["chat"], resuming=False)

    hub.publish([event, published(2, "chat")])

    assert sub.closed_reason is None
    assert await take(sub) == wire(event, published(2, "chat"))


async def test_slow_consumer_stuck_in_a_write_is_aborted_and_closed() -> None:
    hub = Hub(buffer_bound=10)
    sub = hub.subscribe(["chat"], resuming=False)
    sub.writing = True  # its handler is stuck in a write
    aborted = []
    sub.abort = lambda: aborted.append(True)

    hub.publish([published(1, "chat")])

    assert aborted == [True]
    with pytest.raises(SubscriberClosed):
        await asyncio.wait_for(sub.next_chunk(), 1)


async def test_reader_blocked_in_next_chunk_gets_closed_when_overflow_happens() -> None:
    hub = Hub(buffer_bound=10)
    sub = hub.subscribe(["chat"], resuming=False)
    reader = asyncio.ensure_future(sub.next_chunk())
    await asyncio.sleep(0)

    hub.publish([published(1, "chat")])

    with pytest.raises(SubscriberClosed):
        await asyncio.wait_for(reader, 1)


async def test_held_subscriber_that_overflows_is_closed_too() -> None:
    event = published(1, "chat")
    hub = Hub(buffer_bound=len(encode_event(event)))
    held = hub.subscribe(["chat"], resuming=True)

    hub.publish([event, published(2, "chat")])

    assert hub.statistics().slow_consumers_closed == 1
    assert hub.statistics().subscribers == 0
    with pytest.raises(SubscriberClosed):
        await held.next_chunk()


async def test_broadcast_reaches_everyone_and_closes_an_overflowing_subscriber() -> None:
    hub = Hub(buffer_bound=40)
    full = hub.subscribe(["a"], resuming=False)
    empty = hub.subscribe(["b"], resuming=False)
    full.push(b"x" * 30)

    hub.broadcast(b": heartbeat\n\n")

    assert await take(empty) == b": heartbeat\n\n"
    with pytest.raises(SubscriberClosed):
        await full.next_chunk()
    assert hub.statistics().slow_consumers_closed == 1


# Resume hand-over


async def test_held_subscriber_receives_nothing_until_go_live() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=True)

    hub.publish([published(1, "chat", tx=50)])

    assert sub.is_held
    assert await take(sub) == b""


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
    assert await take(sub) == wire(in_flight, after, later)


async def test_late_live_event_the_replay_saw_is_dropped_until_listener_passes_replay() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=True)
    replayed = Snapshot.parse("100:110:104")
    sub.go_live(replayed)
    late_seen = published(1, "chat", tx=105)  # the replay already sent it
    late_missed = published(2, "chat", tx=104)

    hub.publish([late_seen, late_missed])  # the listener publishes its pages, then advances
    hub.advance(Snapshot.parse("104:112:104"))  # xmin < replay xmax: keep filtering

    assert sub.is_filtering
    assert await take(sub) == wire(late_missed)

    hub.advance(Snapshot.parse("110:115:"))  # xmin >= replay xmax: nothing the replay saw can still arrive

    assert not sub.is_filtering
    low_tx = published(3, "chat", tx=105)  # would have been dropped by the filter
    hub.publish([low_tx])
    assert await take(sub) == wire(low_tx)


async def test_advance_does_not_release_filter_of_still_held_subscriber() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=True)

    hub.advance(Snapshot.parse("5000:5000:"))
    sub.go_live(Snapshot.parse("100:110:"))

    assert sub.is_filtering  # released only by a listener snapshot that arrives after go_live
    hub.advance(Snapshot.parse("5000:5000:"))
    assert not sub.is_filtering


async def test_fresh_subscriber_is_never_held_or_filtered() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat"], resuming=False)

    assert not sub.is_held and not sub.is_filtering
    event = published(1, "chat", tx=5)
    hub.publish([event])
    assert await take(sub) == wire(event)


# Lifecycle


async def test_unsubscribe_stops_delivery_and_is_safe_twice() -> None:
    hub = Hub(BIG)
    sub = hub.subscribe(["chat", "todos"], resuming=True)
    keep = hub.subscribe(["chat"], resuming=False)

    hub.unsubscribe(sub)
    hub.unsubscribe(sub)

    stats = hub.statistics()
    assert (stats.subscribers, stats.topics) == (1, 1)
    hub.publish([published(1, "chat")])
    sub.go_live(Snapshot.parse("1000:1000:"))
    assert await take(sub) == b""
    assert await take(keep) == wire(published(1, "chat"))


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

    assert hub.subscribe(["x"], resuming=False).start_position == 12


async def test_close_all_closes_every_subscriber_with_the_reason() -> None:
    hub = Hub(BIG)
    subs = [hub.subscribe([topic], resuming=held) for topic, held in [("a", False), ("b", True), ("a", False)]]
    waiting = asyncio.ensure_future(subs[0].next_chunk())
    await asyncio.sleep(0)

    hub.close_all("server shutting down")

    with pytest.raises(SubscriberClosed, match="server shutting down"):
        await asyncio.wait_for(waiting, 1)
    for sub in subs:
        with pytest.raises(SubscriberClosed, match="server shutting down"):
            await sub.next_chunk()
    stats = hub.statistics()
    assert (stats.subscribers, stats.topics) == (0, 0)
    assert stats.slow_consumers_closed == 0
