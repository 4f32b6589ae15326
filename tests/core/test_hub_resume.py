"""Resume from history: no gap, no duplicate, whatever the broker's timing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from trio_stream.core import (
    History,
    Hub,
    LocalFanout,
    MemoryBroker,
    SubscriberDisconnected,
    open_hub,
)
from trio_stream.protocol import Event

# The test brokers below mock nothing: each is a real MemoryBroker that only
# changes *when* things happen, to produce the orderings a networked broker
# (Redis Streams) produces.

ReplayHook = Callable[[str], Awaitable[None]]


class SlowReplayBroker(MemoryBroker):
    """A MemoryBroker whose replay is asynchronous: ``hook`` runs around the snapshot.

    ``hook("before")`` runs after the subscriber's queue is attached but before
    history is read, ``hook("after")`` after it was read: publishes made by
    the hook land in the queue, in the replay, or both.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.hook: ReplayHook | None = None

    async def replay(self, topic: str, last_event_id: str) -> list[Event] | None:
        if self.hook is not None:
            await self.hook("before")
        await trio.lowlevel.checkpoint()
        found = await super().replay(topic, last_event_id)
        await trio.lowlevel.checkpoint()
        if self.hook is not None:
            await self.hook("after")
        return found


class _Inbox:
    def __init__(self, send: trio.MemorySendChannel[tuple[str, Event]]) -> None:
        self._send = send

    def deliver(self, topic: str, event: Event) -> None:
        self._send.send_nowait((topic, event))

    async def wait_for_room(self, topic: str) -> None:
        await trio.lowlevel.checkpoint()

    def disconnect_subscribers(self, topic: str, reason: str) -> int:
        return 0


class LaggingBroker(MemoryBroker):
    """A MemoryBroker whose deliveries reach the Hub later, from a background task.

    Like a Redis tail: ``publish`` returns before local subscribers see the
    event; :meth:`run` (started by ``Hub.run``) delivers in order and then
    awaits the Hub's ``wait_for_room``. The inbox holds at most ``capacity``
    undelivered events.
    """

    def __init__(self, *, capacity: int = 1000, epoch: str | None = None) -> None:
        super().__init__(epoch=epoch)
        self._send, self._receive = trio.open_memory_channel[tuple[str, Event]](capacity)
        self._hub: LocalFanout | None = None
        super().bind(_Inbox(self._send))
        self.watching: dict[str, int] = {}
        self._gate = trio.Event()
        self._gate.set()

    def hold(self) -> None:
        """Stop delivering (published events wait in the inbox) until :meth:`release`."""
        self._gate = trio.Event()

    def release(self) -> None:
        self._gate.set()

    def bind(self, fanout: LocalFanout) -> None:
        self._hub = fanout

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:  # noqa: ASYNC114  started with nursery.start
        assert self._hub is not None
        task_status.started()
        async for topic, event in self._receive:
            await self._gate.wait()
            self._hub.deliver(topic, event)
            await self._hub.wait_for_room(topic)

    async def watch(self, topic: str) -> None:
        await trio.lowlevel.checkpoint()
        self.watching[topic] = self.watching.get(topic, 0) + 1

    def unwatch(self, topic: str) -> None:
        self.watching[topic] -= 1
        if not self.watching[topic]:
            del self.watching[topic]


async def publish_many(hub: Hub, topic: str, count: int, start: int = 0) -> list[Event]:
    await trio.lowlevel.checkpoint()
    return [await hub.publish(topic, Event(str(n))) for n in range(start, start + count)]


async def test_resume_replays_what_was_missed_then_goes_live() -> None:
    hub = Hub()
    sent = await publish_many(hub, "t", 5)
    async with hub.subscribe("t", last_event_id=sent[1].id) as sub:
        assert sub.recovered
        live = await publish_many(hub, "t", 2, start=5)
        assert await sub.receive_batch(2) == sent[2:4]
        assert await sub.receive_batch() == sent[4:]
        assert await sub.receive_batch() == live


async def test_resume_from_the_latest_id_is_recovered_and_live() -> None:
    hub = Hub()
    sent = await publish_many(hub, "t", 3)
    async with hub.subscribe("t", last_event_id=sent[-1].id) as sub:
        assert sub.recovered
        nxt = await hub.publish("t", Event("next"))
        assert await sub.receive_batch() == [nxt]


async def test_empty_id_means_no_id() -> None:
    hub = Hub()
    await publish_many(hub, "t", 2)
    async with hub.subscribe("t", last_event_id="") as sub:
        assert not sub.recovered
        nxt = await hub.publish("t", Event("next"))
        assert await sub.receive_batch() == [nxt]


@pytest.mark.parametrize("last_event_id", ["someone-else-3", "garbage", "e-1"])
async def test_unknown_or_too_old_ids_start_live(
    last_event_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub = Hub(MemoryBroker(History(max_events=2), epoch="e"))
    await publish_many(hub, "t", 5)  # e-1 and e-2 were forgotten
    with caplog.at_level(logging.INFO, logger="trio_stream.core"):
        async with hub.subscribe("t", last_event_id=last_event_id) as sub:
            assert not sub.recovered
            nxt = await hub.publish("t", Event("next"))
            assert await sub.receive_batch() == [nxt]
    assert "not in history" in caplog.text


async def test_publishes_during_an_async_replay_arrive_once_in_order() -> None:
    broker = SlowReplayBroker(epoch="e")
    hub = Hub(broker)
    sent = await publish_many(hub, "t", 3)
    during: list[Event] = []

    async def hook(phase: str) -> None:
        # "before": lands in the queue AND in the replay; "after": queue only.
        during.extend(await publish_many(hub, "t", 2, start=len(sent) + len(during)))

    broker.hook = hook
    async with hub.subscribe("t", last_event_id=sent[0].id) as sub:
        assert sub.recovered
        got: list[Event] = []
        while len(got) < 6:
            got.extend(await sub.receive_batch())
    assert got == sent[1:] + during  # each exactly once, in publish order


async def test_disconnect_during_replay_keeps_the_replay_then_resumes() -> None:
    broker = SlowReplayBroker(epoch="e")
    hub = Hub(broker)
    sent = await publish_many(hub, "t", 3)

    async def hook(phase: str) -> None:
        await trio.lowlevel.checkpoint()
        if phase == "after":
            sent.extend(await publish_many(hub, "t", 3, start=3))  # overflows capacity 2

    broker.hook = hook
    got: list[Event] = []
    async with hub.subscribe("t", last_event_id=sent[0].id, capacity=2) as sub:
        got.extend(await sub.receive_batch())
        with pytest.raises(SubscriberDisconnected):
            await sub.receive_batch()
        last = sub.last_event_id
    broker.hook = None
    async with hub.subscribe("t", last_event_id=last) as again:
        assert again.recovered
        got.extend(await again.receive_batch())
    assert got == sent[1:]


async def test_lagging_delivery_skips_what_the_replay_already_gave() -> None:
    broker = LaggingBroker(epoch="e")
    async with open_hub(broker) as hub:
        broker.hold()
        sent = await publish_many(hub, "t", 4)
        # Deliveries of e-1..e-4 are still queued in the broker: the tail lags.
        async with hub.subscribe("t", last_event_id=sent[0].id) as sub:
            assert broker.watching == {"t": 1}
            broker.release()
            await trio.testing.wait_all_tasks_blocked()
            assert sub.statistics().depth == 4  # the late deliveries, all duplicates
            assert await sub.receive_batch() == sent[1:]
            live = await publish_many(hub, "t", 2, start=4)
            got: list[Event] = []
            while len(got) < 2:
                got.extend(await sub.receive_batch())
            assert got == live
        assert broker.watching == {}


async def test_lagging_delivery_skips_events_the_client_saw_elsewhere() -> None:
    broker = LaggingBroker(epoch="e")
    async with open_hub(broker) as hub:
        broker.hold()
        sent = await publish_many(hub, "t", 3)
        # The client read up to e-3 from another instance; e-1..e-3 are still
        # to be delivered here: none of them may come out again.
        async with hub.subscribe("t", last_event_id=sent[-1].id) as sub:
            assert sub.recovered
            broker.release()
            nxt = await hub.publish("t", Event("next"))
            assert await sub.receive_batch() == [nxt]


async def test_lagging_delivery_to_a_live_subscriber() -> None:
    broker = LaggingBroker()
    async with open_hub(broker) as hub, hub.subscribe("t") as sub:
        sent = await publish_many(hub, "t", 3)
        got: list[Event] = []
        while len(got) < 3:
            got.extend(await sub.receive_batch())
        assert got == sent


async def test_events_with_foreign_ids_end_the_skip() -> None:
    broker = LaggingBroker(epoch="e")
    async with open_hub(broker) as hub:
        sent = await publish_many(hub, "t", 2)
        await trio.testing.wait_all_tasks_blocked()  # both delivered (nobody listens)
        async with hub.subscribe("t", last_event_id=sent[-1].id) as sub:
            hub.deliver("t", Event("injected", id="not-ours"))
            hub.deliver("t", Event("no id"))
            got = await sub.receive_batch()
            assert [e.data for e in got] == ["injected", "no id"]
