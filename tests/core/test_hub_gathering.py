"""Waiting for a larger batch: ``BoundedQueue.wait_queued`` and ``Subscription.wait_queued``."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_stream.core import BoundedQueue, Hub, Overflow, Subscription
from trio_stream.protocol import Event


async def test_wait_queued_returns_once_enough_items_are_queued() -> None:
    queue: BoundedQueue[int] = BoundedQueue(8)
    done = trio.Event()

    async def wait() -> None:
        await queue.wait_queued(3)
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        queue.put_nowait(1)
        queue.put_nowait(2)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        queue.put_nowait(3)
        await done.wait()
    assert len(queue) == 3  # nothing taken
    assert queue.get_batch_nowait() == [1, 2, 3]


async def test_wait_queued_returns_at_once_when_enough_or_ended() -> None:
    queue: BoundedQueue[int] = BoundedQueue(2)
    with pytest.raises(ValueError, match="count"):
        await queue.wait_queued(0)
    queue.put_nowait(1)
    queue.put_nowait(2)
    await queue.wait_queued(100)  # capped at the capacity: full is enough
    queue.close()
    await queue.wait_queued(5)  # closed
    assert queue.get_batch_nowait() == [1, 2]


async def test_a_waiting_consumer_is_woken_by_the_end_and_by_release() -> None:
    queue: BoundedQueue[int] = BoundedQueue(8)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.wait_queued, 5)
        await trio.testing.wait_all_tasks_blocked()
        queue.release()
    queue.release()  # nobody waiting: no effect
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.wait_queued, 5)
        await trio.testing.wait_all_tasks_blocked()
        queue.disconnect()


async def test_release_does_not_wake_a_plain_receive() -> None:
    queue: BoundedQueue[int] = BoundedQueue(8)
    got: list[int] = []

    async def receive() -> None:
        got.extend(await queue.get_batch())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        queue.release()
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        queue.put_nowait(7)
    assert got == [7]


async def test_a_cancelled_wait_takes_nothing_and_restores_single_wakeups(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: BoundedQueue[int] = BoundedQueue(8)
    with trio.move_on_after(1):
        await queue.wait_queued(5)
    queue.put_nowait(1)
    assert await queue.get_batch() == [1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.wait_queued, 5)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await queue.get_batch()
        nursery.cancel_scope.cancel()


async def _wait_and_record(subscription: Subscription, count: int, seen: list[int]) -> None:
    await subscription.wait_queued(count)
    seen.append(subscription.queued)


async def test_subscribers_wait_for_a_batch_until_the_topic_pauses(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    seen: list[int] = []

    async def publish(count: int) -> None:
        await trio.lowlevel.checkpoint()
        for i in range(count):  # one event per scheduler round, then a pause
            await hub.publish("t", Event(str(i)))

    async with (
        hub.subscribe("t", overflow=Overflow.BLOCK) as a,
        hub.subscribe("t") as b,
        hub.subscribe("t") as c,
    ):
        async with trio.open_nursery() as nursery:
            for subscription in (a, b, c):
                nursery.start_soon(_wait_and_record, subscription, 100, seen)
            nursery.start_soon(publish, 5)
        # Released by the pause, not by a clock: no time passed.
        assert seen == [5, 5, 5]
        assert trio.current_time() == 0
        assert [e.data for e in await a.receive_batch()] == ["0", "1", "2", "3", "4"]


async def test_a_quiet_topic_releases_at_once(autojump_clock: trio.testing.MockClock) -> None:
    hub = Hub()
    seen: list[int] = []
    async with hub.subscribe("t") as a, hub.subscribe("t") as b, trio.open_nursery() as nursery:
        nursery.start_soon(_wait_and_record, a, 10, seen)
        nursery.start_soon(_wait_and_record, b, 10, seen)
    assert seen == [0, 0]
    assert trio.current_time() == 0


async def test_subscribers_wait_until_the_count_is_reached() -> None:
    hub = Hub()
    seen: list[int] = []
    published: list[int] = []

    async def publish(count: int) -> None:
        await trio.lowlevel.checkpoint()
        for i in range(count):
            await hub.publish("t", Event(str(i)))
            published.append(i)

    async with hub.subscribe("t") as a, hub.subscribe("t") as b, trio.open_nursery() as nursery:
        nursery.start_soon(_wait_and_record, a, 3, seen)
        nursery.start_soon(_wait_and_record, b, 3, seen)
        nursery.start_soon(publish, 50)
    assert len(seen) == 2
    assert all(3 <= depth < 50 for depth in seen)


async def test_a_cancelled_watcher_releases_the_others() -> None:
    hub = Hub()
    seen: list[int] = []
    watching = trio.CancelScope()

    async def watch(subscription: Subscription) -> None:
        with watching:
            await subscription.wait_queued(100)

    async def publish_every_round() -> None:
        # Never a quiet round: the watcher sees a busy topic.
        for i in range(60):
            await hub.publish("t", Event(str(i)))
            if i == 3:
                watching.cancel()

    async with hub.subscribe("t") as a, hub.subscribe("t") as b, trio.open_nursery() as nursery:
        nursery.start_soon(publish_every_round)
        nursery.start_soon(watch, a)
        for _ in range(2):  # a has run: it is the topic's watcher
            await trio.lowlevel.checkpoint()
        nursery.start_soon(_wait_and_record, b, 100, seen)
    assert watching.cancelled_caught
    assert len(seen) == 1
    assert 4 <= seen[0] < 60


async def test_wait_queued_returns_at_once_while_replaying_or_ended() -> None:
    hub = Hub()
    first = await hub.publish("t", Event("a"))
    await hub.publish("t", Event("b"))
    async with hub.subscribe("t", last_event_id=first.id) as subscription:
        await subscription.wait_queued(50)  # the replay is ready
        with pytest.raises(ValueError, match="count"):
            await subscription.wait_queued(0)
        assert [e.data for e in await subscription.receive_batch()] == ["b"]
        hub.close()
        await subscription.wait_queued(50)
        assert await subscription.receive_batch() == []


async def test_a_subscription_outside_a_hub_waits_for_its_queue_only() -> None:
    queue: BoundedQueue[Event] = BoundedQueue(4)
    subscription = Subscription("t", queue, lambda _: None, recovered=False)
    queue.put_nowait(Event("a"))
    queue.put_nowait(Event("b"))
    await subscription.wait_queued(2)
    assert subscription.queued == 2
