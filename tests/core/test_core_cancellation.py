"""Cancel a subscriber, a publisher, or a whole hub at every checkpoint in turn.

An instrument counts the steps of the task under test and cancels its scope
right after its k-th step (so at its k-th checkpoint), for k = 1, 2, ...
until the scenario completes uncancelled. After each run: no subscriber or
queue is left attached, nothing was published that the publisher did not see
returned, and every task ended (the nurseries exited).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
import trio.testing

from trio_stream.core import History, Hub, MemoryBroker, Overflow, open_hub
from trio_stream.protocol import Event

MAX_STEPS = 400  # far more checkpoints than any scenario below takes


class SlowReplayBroker(MemoryBroker):
    """A real MemoryBroker whose replay has checkpoints (as a networked one does)."""

    async def replay(self, topic: str, last_event_id: str) -> list[Event] | None:
        await trio.lowlevel.checkpoint()
        found = await super().replay(topic, last_event_id)
        await trio.lowlevel.checkpoint()
        return found


@dataclass(eq=False)  # hashable: trio keeps instruments in a set
class CancelAtStep(trio.abc.Instrument):
    """Cancel ``scope`` right after the ``target`` task's ``step``-th step (any task if None)."""

    step: int
    scope: trio.CancelScope
    target: trio.lowlevel.Task | None = None
    steps: int = 0

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.target is None or task is self.target:
            self.steps += 1
            if self.steps == self.step:
                self.scope.cancel()


@dataclass
class Published:
    events: list[Event] = field(default_factory=list)
    done: bool = False


async def cancel_at_each_step(run_once: Callable[[int], Awaitable[bool]]) -> None:
    """``await run_once(k)`` for k = 1, 2, ... until a run completes uncancelled."""
    with trio.fail_after(10_000):  # a safety bound, in virtual seconds
        await trio.lowlevel.checkpoint()
        for step in range(1, MAX_STEPS):
            if await run_once(step):
                return
    raise AssertionError("the scenario never completed")  # pragma: no cover


async def while_instrumented(instrument: trio.abc.Instrument, body: Awaitable[None]) -> None:
    trio.lowlevel.add_instrument(instrument)
    try:
        await body
    finally:
        trio.lowlevel.remove_instrument(instrument)


async def publisher(hub: Hub, count: int, record: Published, pace: float = 0.1) -> None:
    await trio.lowlevel.checkpoint()
    for n in range(count):
        record.events.append(await hub.publish("t", Event(str(n))))
        await trio.sleep(pace)
    record.done = True


async def assert_clean(hub: Hub) -> None:
    await trio.testing.wait_all_tasks_blocked()
    stats = hub.statistics()
    assert (stats.subscribers, stats.topics) == (0, 0)


async def subscriber_run(step: int) -> bool:
    hub = Hub(SlowReplayBroker(History(max_events=100)))
    first = await hub.publish("t", Event("first"))
    assert first.id is not None
    await hub.publish("t", Event("missed"))
    record = Published()
    got: list[Event] = []
    scope = trio.CancelScope()
    instrument = CancelAtStep(step, scope)

    async def subscriber() -> None:
        with scope:
            instrument.target = trio.lowlevel.current_task()
            async with hub.subscribe("t", last_event_id=first.id, capacity=4) as sub:
                while len(got) < 6:
                    got.extend(await sub.receive_batch())

    async def both() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(subscriber)
            nursery.start_soon(publisher, hub, 5, record)

    await while_instrumented(instrument, both())
    await assert_clean(hub)
    assert record.done  # the publisher never noticed
    # What was received before the cancellation is a gapless prefix.
    assert [e.data for e in got] == ["missed", "0", "1", "2", "3", "4"][: len(got)]
    return not scope.cancelled_caught


async def test_cancelling_a_subscriber_at_any_checkpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    await cancel_at_each_step(subscriber_run)


async def publisher_run(step: int) -> bool:
    broker = MemoryBroker(epoch="e")
    hub = Hub(broker)
    record = Published()
    got: list[Event] = []
    caught_up = trio.Event()
    scope = trio.CancelScope()
    instrument = CancelAtStep(step, scope)

    async def slow_reader(task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114  started with nursery.start
        async with hub.subscribe("t", capacity=2, overflow=Overflow.BLOCK) as sub:
            task_status.started()
            while batch := await sub.receive_batch(1):
                got.extend(batch)
                if len(got) == len(record.events) and (record.done or scope.cancelled_caught):
                    caught_up.set()
                await trio.sleep(1)

    async def cancellable_publisher() -> None:
        with scope:
            instrument.target = trio.lowlevel.current_task()
            await publisher(hub, 8, record, pace=0)

    async with trio.open_nursery() as nursery:
        await nursery.start(slow_reader)
        await while_instrumented(instrument, cancellable_publisher())
        if len(got) < len(record.events):
            await caught_up.wait()
        hub.close()
    await assert_clean(hub)
    # Exactly the events whose publish() returned were published: a cancelled
    # publish published nothing.
    assert got == record.events
    assert await broker.replay("t", "e-0") == record.events
    if scope.cancelled_caught:
        return False
    assert len(got) == 8
    return True


async def test_cancelling_a_blocked_publisher_at_any_checkpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    await cancel_at_each_step(publisher_run)


async def whole_hub_run(step: int) -> bool:
    record = Published()
    scope = trio.CancelScope()
    instrument = CancelAtStep(step, scope)  # counts the steps of every task
    hubs: list[Hub] = []
    received = [0, 0, 0]

    async def reader(hub: Hub, index: int, task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114  started with nursery.start
        async with hub.subscribe("t", capacity=8) as sub:
            task_status.started()
            async for _ in sub:
                received[index] += 1

    async def everything() -> None:
        with scope:
            async with open_hub(SlowReplayBroker()) as hub, trio.open_nursery() as nursery:
                hubs.append(hub)
                for index in range(3):
                    await nursery.start(reader, hub, index)
                await publisher(hub, 4, record)
                await trio.testing.wait_all_tasks_blocked()
                hub.close()

    await while_instrumented(instrument, everything())
    if hubs:
        assert hubs[0].closed
        await assert_clean(hubs[0])
    if scope.cancelled_caught:
        return False
    assert received == [4, 4, 4]
    return True


async def test_cancelling_a_whole_hub_at_any_checkpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    await cancel_at_each_step(whole_hub_run)
