"""Sinks: a parked consumer's items taken synchronously by the putting task."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from trio_stream.core import BoundedQueue, Hub, Subscription
from trio_stream.core._subscription import PACED_GAP
from trio_stream.protocol import Event


class Sink:
    """Records what it was offered; takes it while ``accepting``."""

    def __init__(self, accepting: bool = True) -> None:
        self.accepting = accepting
        self.offered: list[Any] = []

    def __call__(self, item: object) -> bool:
        self.offered.append(item)
        return self.accepting


async def test_a_parked_consumers_sink_takes_items_without_waking_it() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    sink = Sink()
    queue.set_sink(sink)
    received: list[list[int]] = []

    async def consume() -> None:
        received.append(await queue.get_batch())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.put_nowait(1)
        assert queue.put_nowait(2)
        await trio.testing.wait_all_tasks_blocked()
        assert received == []  # still parked: the sink took both
        assert sink.offered == [1, 2]
        sink.accepting = False
        assert queue.put_nowait(3)  # refused: queued, and the consumer wakes
        assert queue.put_nowait(4)  # queued behind 3, never offered
    assert received == [[3, 4]]
    assert sink.offered == [1, 2, 3]
    stats = queue.statistics()
    assert (stats.delivered, stats.peak, stats.depth) == (4, 2, 0)


async def test_no_sink_call_without_a_parked_consumer_or_once_removed() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    sink = Sink()
    queue.set_sink(sink)
    queue.put_nowait(1)  # nobody waits: queued
    assert queue.get_batch_nowait() == [1]

    async def consume_one() -> None:
        assert await queue.get_batch() == [2]

    queue.set_sink(None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume_one)
        await trio.testing.wait_all_tasks_blocked()
        queue.put_nowait(2)
    assert sink.offered == []


async def test_a_subscribers_sink_takes_live_events_and_moves_its_last_id() -> None:
    hub = Hub()
    sink = Sink()
    async with hub.subscribe("t") as subscription, trio.open_nursery() as nursery:
        subscription.set_sink(sink)
        received: list[Event] = []

        async def receive() -> None:
            received.extend(await subscription.receive_batch())

        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        first = await hub.publish("t", Event("one"))
        await trio.testing.wait_all_tasks_blocked()
        assert [event.data for event in sink.offered] == ["one"]
        assert subscription.last_event_id == first.id
        assert received == []
        subscription.set_sink(None)
        await hub.publish("t", Event("two"))
    assert [event.data for event in received] == ["two"]
    assert subscription.statistics().delivered == 2


async def test_replayed_and_possibly_duplicate_events_are_never_offered(
    autojump_clock: trio.abc.Clock,
) -> None:
    hub = Hub()
    first = await hub.publish("t", Event("one"))
    await hub.publish("t", Event("two"))
    sink = Sink()
    async with hub.subscribe("t", last_event_id=first.id) as subscription:
        subscription.set_sink(sink)
        assert subscription._offer_to_sink(Event("x")) is False  # the replay is not taken yet
        assert [e.data for e in await subscription.receive_batch()] == ["two"]
        # Until a live event newer than the replay arrives, one could be a duplicate.
        assert subscription._offer_to_sink(Event("y")) is False
        async with trio.open_nursery() as nursery:

            async def receive() -> None:
                assert [e.data for e in await subscription.receive_batch()] == ["three"]

            nursery.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            await hub.publish("t", Event("three"))  # queued: it goes through the skip check
        assert sink.offered == []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(subscription.receive_batch)
            await trio.sleep(1)  # paced: only then are sinks offered an event
            await hub.publish("t", Event("four"))
            await trio.testing.wait_all_tasks_blocked()
            assert [e.data for e in sink.offered] == ["four"]
            nursery.cancel_scope.cancel()
    assert isinstance(subscription, Subscription)


class ClockedSink:
    """Takes every event offered, advancing the mock clock by what writing it takes."""

    def __init__(self, clock: trio.testing.MockClock, costs: Iterator[float]) -> None:
        self.clock = clock
        self.costs = costs
        self.offered: list[str] = []

    def __call__(self, event: Event) -> bool:
        self.offered.append(event.data)
        self.clock.jump(next(self.costs))
        return True


@asynccontextmanager
async def receiving(hub: Hub, sink: ClockedSink) -> AsyncIterator[list[str]]:
    """A subscriber of topic ``t`` with ``sink``; yields what its task received instead."""
    received: list[str] = []
    async with hub.subscribe("t") as subscription, trio.open_nursery() as nursery:
        subscription.set_sink(sink)

        async def receive() -> None:
            async for event in subscription:
                received.append(event.data)

        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        yield received
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()


async def test_sinks_get_a_paced_topics_events_not_a_bursts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    # What each inline delivery takes: a, d, then e and g slow (4 ms).
    sink = ClockedSink(autojump_clock, iter([0.0, 0.0, 0.004, 0.004]))
    async with receiving(hub, sink) as received:
        for name in ("a", "b", "c"):  # a burst: the first goes to the sink
            await hub.publish("t", Event(name))
        await trio.sleep(PACED_GAP)
        await hub.publish("t", Event("d"))  # after a pause: the sink again
        assert (sink.offered, received) == (["a", "d"], ["b", "c"])
        await trio.sleep(PACED_GAP)
        await hub.publish("t", Event("e"))  # slow: the next must wait five times as long
        await trio.sleep(PACED_GAP)
        await hub.publish("t", Event("f"))  # 10 ms after an inline delivery of 4 ms
        await trio.sleep(0.024)
        await hub.publish("t", Event("g"))
    assert (sink.offered, received) == (["a", "d", "e", "g"], ["b", "c", "f"])


async def test_a_costly_fan_out_is_held_back_and_tried_again_every_eighth_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    sink = ClockedSink(autojump_clock, itertools.repeat(0.02))  # a large fan-out, inline
    async with receiving(hub, sink) as received:
        await trio.sleep(1)
        await hub.publish("t", Event("x"))
        for i in range(10):
            await trio.sleep(0.03)  # paced, but under five times 20 ms
            await hub.publish("t", Event(str(i)))
    assert sink.offered == ["x", "7"]  # the eighth held back measures it again: still costly
    assert received == [str(i) for i in range(10) if i != 7]


async def test_one_stalled_delivery_does_not_hold_a_paced_topic_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    sink = ClockedSink(autojump_clock, iter([0.001, 0.03, 0.001, 0.001]))  # the second stalled
    async with receiving(hub, sink) as received:
        for name in "abcd":
            await trio.sleep(0.05)  # 20 events/s
            await hub.publish("t", Event(name))
    assert sink.offered == ["a", "b", "c", "d"]  # 5 x 4 ms (not 5 x 30 ms) fits in 50 ms
    assert received == []
