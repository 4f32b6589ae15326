"""Hub: publish, subscribe, close, statistics, BLOCK backpressure, lifecycle."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from trio_stream.core import (
    Hub,
    HubClosedError,
    InvalidTopicError,
    MemoryBroker,
    Overflow,
    SubscriberDisconnected,
    open_hub,
)
from trio_stream.protocol import Event, TrioStreamError


async def test_publish_returns_the_event_with_its_id() -> None:
    hub = Hub(MemoryBroker(epoch="e"))
    stamped = await hub.publish("t", Event("hello", event="greeting"))
    assert stamped == Event("hello", event="greeting", id="e-1")


async def test_subscriber_gets_live_events_only_and_is_not_recovered() -> None:
    hub = Hub()
    await hub.publish("t", Event("before"))
    async with hub.subscribe("t") as sub:
        assert sub.topic == "t"
        assert not sub.recovered
        assert sub.last_event_id is None
        sent = await hub.publish("t", Event("after"))
        assert await sub.receive() == sent
        assert sub.last_event_id == sent.id


async def test_every_subscriber_gets_the_same_encoded_event() -> None:
    hub = Hub()
    async with hub.subscribe("t") as one, hub.subscribe("t") as two:
        sent = await hub.publish("t", Event("x"))
        first, second = await one.receive(), await two.receive()
    # One object for all: encoded once by the publisher, bytes shared.
    assert first is sent
    assert second is sent
    assert first.encode() is second.encode()


async def test_topics_are_isolated() -> None:
    hub = Hub()
    async with hub.subscribe("a") as sub:
        await hub.publish("b", Event("other"))
        mine = await hub.publish("a", Event("mine"))
        assert await sub.receive_batch() == [mine]


async def test_invalid_input_is_rejected_with_typed_errors() -> None:
    hub = Hub()
    with pytest.raises(InvalidTopicError):
        await hub.publish("no spaces", Event())
    with pytest.raises(InvalidTopicError):
        async with hub.subscribe(""):
            pass  # pragma: no cover
    with pytest.raises(TypeError, match="Event"):
        await hub.publish("t", "data")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        async with hub.subscribe("t", capacity=0):
            pass  # pragma: no cover
    async with hub.subscribe("t") as sub:
        with pytest.raises(ValueError, match="max_events"):
            await sub.receive_batch(0)
    assert hub.statistics().subscribers == 0


async def test_receive_batch_takes_the_backlog_in_one_step() -> None:
    hub = Hub()
    async with hub.subscribe("t") as sub:
        sent = [await hub.publish("t", Event(str(n))) for n in range(5)]
        assert await sub.receive_batch(2) == sent[:2]
        assert await sub.receive_batch() == sent[2:]
        assert sub.last_event_id == sent[-1].id


async def test_close_ends_subscriptions_normally_after_draining() -> None:
    hub = Hub()
    got: list[Event] = []
    async with trio.open_nursery() as nursery:

        async def reader(task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114  started with nursery.start
            async with hub.subscribe("t") as sub:
                task_status.started()
                async for event in sub:
                    got.append(event)
                with pytest.raises(trio.EndOfChannel):
                    await sub.receive()
                assert await sub.receive_batch() == []

        await nursery.start(reader)
        sent = await hub.publish("t", Event("last"))
        hub.close()
        hub.close()
    assert got == [sent]
    stats = hub.statistics()
    assert stats.closed
    assert hub.closed
    assert stats.subscribers == 0
    assert stats.topics == 0


async def test_a_closed_hub_refuses_publish_and_subscribe() -> None:
    hub = Hub()
    await hub.aclose()
    with pytest.raises(HubClosedError):
        await hub.publish("t", Event())
    with pytest.raises(trio.ClosedResourceError):
        async with hub.subscribe("t"):
            pass  # pragma: no cover


async def test_leaving_the_block_detaches_and_ends_the_subscription() -> None:
    hub = Hub()
    async with hub.subscribe("t") as sub, hub.subscribe("t", capacity=8):
        assert hub.statistics().subscribers == 2
    assert hub.statistics().subscribers == 0
    assert sub.statistics().closed
    await hub.publish("t", Event("nobody listens"))
    assert await sub.receive_batch() == []


async def test_statistics_count_drops_and_disconnections() -> None:
    hub = Hub()
    async with hub.subscribe("t", capacity=2, overflow=Overflow.DROP_NEWEST) as dropper:
        async with hub.subscribe("t", capacity=2):
            for n in range(5):
                await hub.publish("t", Event(str(n)))
            live = hub.statistics()
            assert (live.published, live.dropped, live.disconnected) == (5, 3, 1)
            assert (live.topics, live.subscribers) == (1, 1)  # the slow one was detached
        assert dropper.statistics().dropped == 3
    final = hub.statistics()
    assert (final.dropped, final.disconnected, final.subscribers) == (3, 1, 0)


async def test_disconnected_subscriber_raises_then_logs(caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub()
    with caplog.at_level(logging.INFO, logger="trio_stream.core"):
        async with hub.subscribe("t", capacity=1) as sub:
            await hub.publish("t", Event("1"))
            await hub.publish("t", Event("2"))  # overflow: detached at once
            assert sub.statistics().disconnected
            with pytest.raises(SubscriberDisconnected) as info:
                await sub.receive_batch()
    assert isinstance(info.value, TrioStreamError)
    assert "disconnected a subscriber" in caplog.text


async def test_block_subscriber_slows_the_publisher_and_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    got: list[Event] = []
    async with trio.open_nursery() as nursery:

        async def slow_reader(task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114  started with nursery.start
            async with hub.subscribe("t", capacity=2, overflow=Overflow.BLOCK) as sub:
                task_status.started()
                while batch := await sub.receive_batch(1):
                    got.extend(batch)
                    await trio.sleep(1)
                stats = sub.statistics()
                assert stats.peak <= stats.capacity

        await nursery.start(slow_reader)
        start = trio.current_time()
        sent = [await hub.publish("t", Event(str(n))) for n in range(10)]
        assert trio.current_time() - start >= 7  # paced by the reader
        await trio.testing.wait_all_tasks_blocked()
        hub.close()
    assert got == sent


async def test_cancelled_blocked_publish_publishes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    broker = MemoryBroker(epoch="e")
    hub = Hub(broker)
    async with hub.subscribe("t", capacity=1, overflow=Overflow.BLOCK) as sub:
        first = await hub.publish("t", Event("fits"))
        with trio.move_on_after(5) as scope:
            await hub.publish("t", Event("waits for room"))
        assert scope.cancelled_caught
        assert await broker.replay("t", "e-0") == [first]
        assert await sub.receive_batch() == [first]
        assert sub.statistics().depth == 0


async def test_leaving_releases_a_blocked_publisher() -> None:
    hub = Hub()
    published: list[Event] = []
    async with trio.open_nursery() as nursery:

        async def publisher() -> None:
            published.append(await hub.publish("t", Event("2")))

        async with hub.subscribe("t", capacity=1, overflow=Overflow.BLOCK):
            await hub.publish("t", Event("1"))
            nursery.start_soon(publisher)
            await trio.testing.wait_all_tasks_blocked()
            assert published == []
    assert len(published) == 1


async def test_closing_releases_a_blocked_publisher_with_an_error() -> None:
    hub = Hub()
    async with trio.open_nursery() as nursery:

        async def publisher() -> None:
            with pytest.raises(HubClosedError):
                await hub.publish("t", Event("2"))

        async with hub.subscribe("t", capacity=1, overflow=Overflow.BLOCK):
            await hub.publish("t", Event("1"))
            nursery.start_soon(publisher)
            await trio.testing.wait_all_tasks_blocked()
            hub.close()


async def test_wait_for_room_returns_when_a_blocking_reader_reads() -> None:
    hub = Hub()
    await hub.wait_for_room("nobody")
    async with hub.subscribe("t", capacity=1, overflow=Overflow.BLOCK) as sub:
        await hub.wait_for_room("t")
        hub.deliver("t", Event("x", id="1"))
        done = trio.Event()
        async with trio.open_nursery() as nursery:

            async def waiter() -> None:
                await hub.wait_for_room("t")
                done.set()

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert not done.is_set()
            await sub.receive_batch()
        assert done.is_set()


async def test_open_hub_runs_the_broker_and_closes_on_exit() -> None:
    async with open_hub() as hub, trio.open_nursery() as nursery:

        async def reader(task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114  started with nursery.start
            async with hub.subscribe("t") as sub:
                task_status.started()
                async for _ in sub:
                    pass  # pragma: no cover

        await nursery.start(reader)
        assert not hub.closed
        nursery.cancel_scope.cancel()
    assert hub.closed


async def test_open_hub_raises_the_body_error_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with open_hub():
            raise KeyError("mine")


class FailingStopBroker(MemoryBroker):
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:  # noqa: ASYNC114  started with nursery.start
        task_status.started()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            raise OSError("broker failed while stopping") from None  # noqa: ASYNC104  on purpose: a broker failing to stop


async def test_open_hub_reports_several_errors_as_one_typed_error() -> None:
    with pytest.raises(TrioStreamError, match="several errors") as info:
        async with open_hub(FailingStopBroker()):
            raise KeyError("body")
    assert isinstance(info.value.__cause__, BaseExceptionGroup)


async def test_hub_run_closes_the_hub_when_cancelled() -> None:
    hub = Hub()
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        nursery.cancel_scope.cancel()
    assert hub.closed
    assert isinstance(hub.broker, MemoryBroker)
