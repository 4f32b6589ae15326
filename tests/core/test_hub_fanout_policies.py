"""1,000 subscribers, one of them frozen: the publisher never notices (except under BLOCK).

Under each overflow policy the frozen subscriber gets its documented
treatment, every other subscriber gets every event in order, and statistics
prove memory stayed bounded (peak depth <= capacity).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from trio_stream.core import History, Hub, MemoryBroker, Overflow, SubscriberDisconnected
from trio_stream.protocol import Event

SUBSCRIBERS = 1000
CAPACITY = 16
EVENTS = 3 * CAPACITY
INTERVAL = 0.01  # the publisher's pace, in virtual seconds


@dataclass
class Readers:
    """The 999 well-behaved subscribers: each checks order as it reads."""

    hub: Hub
    counts: list[int] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)

    async def read(self, task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114  started with nursery.start
        index = len(self.counts)
        self.counts.append(0)
        async with self.hub.subscribe("t", capacity=CAPACITY) as sub:
            task_status.started()
            while batch := await sub.receive_batch():
                for event in batch:
                    assert int(event.data) == self.counts[index]  # in order, no gap
                    self.counts[index] += 1
            self.peaks.append(sub.statistics().peak)


async def publish_paced(hub: Hub) -> tuple[list[Event], float]:
    """Publish EVENTS events, one every INTERVAL; assert no publish ever waited."""
    await trio.lowlevel.checkpoint()
    sent = []
    start = trio.current_time()
    for n in range(EVENTS):
        before = trio.current_time()
        sent.append(await hub.publish("t", Event(str(n))))
        # Virtual time only moves when every task is blocked: a publish that
        # waited on the frozen subscriber would let the clock jump.
        assert trio.current_time() == before
        await trio.sleep(INTERVAL)
    return sent, trio.current_time() - start


def make_hub() -> Hub:
    return Hub(MemoryBroker(History(max_events=4 * EVENTS)))


async def run_scenario(hub: Hub) -> tuple[list[Event], float, Readers]:
    """Start the 999 readers, publish at a steady pace, close the hub; return what was sent."""
    readers = Readers(hub)
    async with trio.open_nursery() as nursery:
        for _ in range(SUBSCRIBERS - 1):
            await nursery.start(readers.read)
        sent, elapsed = await publish_paced(hub)
        await trio.testing.wait_all_tasks_blocked()
        assert readers.counts == [EVENTS] * (SUBSCRIBERS - 1)
        hub.close()
    assert max(readers.peaks) <= CAPACITY
    return sent, elapsed, readers


async def test_disconnect_frees_the_frozen_one_and_resume_recovers_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(600):  # a safety bound, in virtual seconds
        hub = make_hub()
        async with hub.subscribe("t", capacity=CAPACITY) as frozen:
            warm_up = await hub.publish("t", Event("warm-up"))
            assert await frozen.receive() == warm_up  # reads one event, then freezes
            readers = Readers(hub)
            async with trio.open_nursery() as nursery:
                for _ in range(SUBSCRIBERS - 1):
                    await nursery.start(readers.read)
                sent, elapsed = await publish_paced(hub)
                assert elapsed == pytest.approx(
                    EVENTS * INTERVAL
                )  # the publisher's pace, undisturbed
                stats = frozen.statistics()
                # Detached at once when full; its queued events were released.
                assert stats.disconnected
                assert stats.depth == 0
                assert stats.peak == CAPACITY
                assert hub.statistics().disconnected == 1
                assert hub.statistics().subscribers == SUBSCRIBERS - 1
                await trio.testing.wait_all_tasks_blocked()
                assert readers.counts == [EVENTS] * (SUBSCRIBERS - 1)
                hub_stats = hub.statistics()

                # Its client reconnects with its last event id...
                try:
                    await frozen.receive_batch()
                    raise AssertionError("expected SubscriberDisconnected")  # pragma: no cover
                except SubscriberDisconnected:
                    last = frozen.last_event_id
                assert last == warm_up.id
                async with hub.subscribe("t", last_event_id=last, capacity=CAPACITY) as back:
                    # ...and recovers every event it missed, exactly once, in order.
                    assert back.recovered
                    assert await back.receive_batch() == sent
                    live = await hub.publish("t", Event(str(EVENTS)))  # the readers get it too
                    assert await back.receive_batch() == [live]
                hub.close()
        assert max(readers.peaks) <= CAPACITY
        assert hub_stats.dropped == 0


async def test_drop_oldest_keeps_the_newest_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(600):  # a safety bound, in virtual seconds
        hub = make_hub()
        async with hub.subscribe("t", capacity=CAPACITY, overflow=Overflow.DROP_OLDEST) as frozen:
            sent, elapsed, _ = await run_scenario(hub)
            assert elapsed == pytest.approx(EVENTS * INTERVAL)
            stats = frozen.statistics()
            assert (stats.dropped, stats.peak, stats.disconnected) == (
                EVENTS - CAPACITY,
                CAPACITY,
                False,
            )
            assert await frozen.receive_batch() == sent[-CAPACITY:]
            assert await frozen.receive_batch() == []  # the hub was closed: ends normally
        assert hub.statistics().dropped == EVENTS - CAPACITY


async def test_drop_newest_keeps_the_oldest_and_resume_fills_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(600):  # a safety bound, in virtual seconds
        hub = make_hub()
        async with hub.subscribe("t", capacity=CAPACITY, overflow=Overflow.DROP_NEWEST) as frozen:
            sent, elapsed, _ = await run_scenario(hub)
            assert elapsed == pytest.approx(EVENTS * INTERVAL)
            stats = frozen.statistics()
            assert (stats.dropped, stats.peak) == (EVENTS - CAPACITY, CAPACITY)
            assert await frozen.receive_batch() == sent[:CAPACITY]
            last = frozen.last_event_id
        # Its last id is the last event it kept: history holds everything after it.
        assert last is not None
        assert last == sent[CAPACITY - 1].id
        assert await hub.broker.replay("t", last) == sent[CAPACITY:]


async def test_block_slows_the_publisher_and_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(600):  # a safety bound, in virtual seconds
        hub = make_hub()
        got: list[Event] = []
        peaks: list[int] = []
        all_read = trio.Event()
        readers = Readers(hub)
        async with trio.open_nursery() as nursery:

            async def slow(task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114  started with nursery.start
                async with hub.subscribe("t", capacity=CAPACITY, overflow=Overflow.BLOCK) as sub:
                    task_status.started()
                    while batch := await sub.receive_batch(1):
                        got.extend(batch)
                        if len(got) == EVENTS:
                            all_read.set()
                        await trio.sleep(10 * INTERVAL)  # ten times slower than the publisher
                    peaks.append(sub.statistics().peak)

            await nursery.start(slow)
            for _ in range(SUBSCRIBERS - 1):
                await nursery.start(readers.read)
            sent = []
            start = trio.current_time()
            for n in range(EVENTS):
                sent.append(await hub.publish("t", Event(str(n))))
                await trio.sleep(INTERVAL)
            elapsed = trio.current_time() - start
            await all_read.wait()
            hub.close()
        # Backpressure: the publisher went at the slow reader's pace once its
        # queue was full, and nothing was dropped or disconnected.
        assert elapsed > (EVENTS - CAPACITY - 2) * 10 * INTERVAL  # vs EVENTS * INTERVAL unslowed
        assert got == sent
        assert readers.counts == [EVENTS] * (SUBSCRIBERS - 1)
        assert peaks[0] <= CAPACITY
        assert max(readers.peaks) <= CAPACITY
        stats = hub.statistics()
        assert (stats.dropped, stats.disconnected) == (0, 0)


async def test_fan_out_itself_never_checkpoints() -> None:
    hub = Hub()
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(SUBSCRIBERS):
            await stack.enter_async_context(hub.subscribe("t", capacity=CAPACITY))
        with trio.testing.assert_no_checkpoints():
            for n in range(CAPACITY + 1):
                hub.deliver("t", Event(str(n), id=str(n)))
        # Nobody read: all of them were detached, synchronously, by the publisher.
        assert hub.statistics().disconnected == SUBSCRIBERS
        assert hub.statistics().subscribers == 0
