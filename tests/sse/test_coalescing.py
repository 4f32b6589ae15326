"""Coalescing: a fast producer's events go out in large writes; a paused one's at once."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_stream.core import Hub, Overflow, Subscription
from trio_stream.protocol import Event
from trio_stream.sse import EventStream
from trio_stream.sse._asgi import Message, Receive, Scope, Send
from trio_stream.sse._hub import SubscriptionFeed, hub_feed_factory
from trio_stream.sse._pump import (
    _COALESCE_DELAY,
    _COALESCE_MAX_DELAY,
    _coalesce,
    coalescing_delay,
    pump,
)
from trio_stream.sse._writer import Writer
from trio_stream.testing import open_asgi_client, open_sse_reader


class FakeFeed:
    """A feed whose queue grows by ``growth`` items per look while ``growing`` is set."""

    def __init__(self, growth: int, *, parks: bool) -> None:
        self.failed = False
        self.queued = 0
        self.growth = growth
        self.looks = 0
        self.waited: list[int] = []
        if parks:
            self.wait_backlog = self._wait_backlog

    def backlog(self) -> tuple[int, int]:
        self.looks += 1
        if self.looks > 1:
            self.queued += self.growth
        return self.queued, 256

    async def _wait_backlog(self, count: int) -> None:
        self.waited.append(count)
        await trio.sleep_forever()

    async def next_batch(self, max_events: int) -> list[int]:
        await trio.lowlevel.checkpoint()
        taken = min(self.queued, max_events)
        self.queued -= taken
        return list(range(taken))

    async def run(self) -> None:
        await trio.lowlevel.checkpoint()


def never_full(batch: list[int]) -> bool:
    return False


def test_the_delay_grows_with_a_busy_server_within_bounds() -> None:
    assert coalescing_delay(0.0) == _COALESCE_DELAY
    assert coalescing_delay(0.1) == 0.2
    assert coalescing_delay(60.0) == _COALESCE_MAX_DELAY


async def test_a_paced_producer_is_not_held_back(autojump_clock: trio.testing.MockClock) -> None:
    feed = FakeFeed(0, parks=True)
    batch = await _coalesce(feed, [0], 256, never_full, 0.05)
    assert batch == [0]
    assert feed.waited == []
    assert trio.current_time() == 0


async def test_a_fast_producer_fills_half_the_queue_or_waits_the_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    feed = FakeFeed(1, parks=True)
    batch = await _coalesce(feed, [0], 256, never_full, 0.05)
    # Waited, parked, for half the capacity (128 with the one in hand), then
    # for no more than the delay, and took what had come.
    assert feed.waited == [127]
    assert trio.current_time() == 0.05
    assert len(batch) > 1


async def test_no_wait_once_the_check_used_up_the_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    feed = FakeFeed(1, parks=True)
    batch = await _coalesce(feed, [0], 256, never_full, 0.0)
    assert feed.waited == []
    assert len(batch) > 1  # what came during the check still goes along
    assert trio.current_time() == 0


async def test_max_batch_bounds_the_target(autojump_clock: trio.testing.MockClock) -> None:
    feed = FakeFeed(1, parks=True)
    await _coalesce(feed, [0, 1], 10, never_full, 0.05)
    assert feed.waited == [8]


async def test_a_full_batch_or_backlog_goes_out_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    feed = FakeFeed(1, parks=True)
    await _coalesce(feed, [0], 256, lambda batch: True, 0.05)
    assert feed.waited == []
    feed = FakeFeed(200, parks=True)
    batch = await _coalesce(feed, [0], 256, never_full, 0.05)
    assert feed.waited == []
    assert len(batch) == 256  # max_batch
    assert trio.current_time() == 0


async def test_a_feed_that_cannot_park_is_polled_while_it_grows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    feed = FakeFeed(1, parks=False)
    batch = await _coalesce(feed, [0], 256, never_full, 0.05)
    assert len(batch) > 2
    assert trio.current_time() == 0  # the polling ended with the rounds, not the clock


def hub_app(hub: Hub, streams: list[EventStream]):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        stream = EventStream.from_hub(
            hub, "t", overflow=Overflow.BLOCK, capacity=256, keepalive_interval=None
        )
        streams.append(stream)
        await stream(scope, receive, send)

    return app


async def test_a_fast_topic_goes_out_in_large_writes() -> None:
    hub = Hub()
    streams: list[EventStream] = []
    async with (
        open_asgi_client(hub_app(hub, streams)) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        for i in range(600):  # one event per scheduler round, as fast as possible
            await hub.publish("t", Event(str(i)))
        events = await reader.events(600)
        assert [e.data for e in events] == [str(i) for i in range(600)]
        assert streams[0].statistics().writes <= 1 + 600 // 32


async def test_a_burst_then_a_pause_is_not_held_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    streams: list[EventStream] = []
    async with (
        open_asgi_client(hub_app(hub, streams)) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        for i in range(5):
            await hub.publish("t", Event(str(i)))
        assert [e.data for e in await reader.events(5)] == ["0", "1", "2", "3", "4"]
        assert trio.current_time() == 0  # the pause released it, not the delay


async def test_a_pending_reset_event_needs_no_wait() -> None:
    hub = Hub()
    await hub.publish("t", Event("a"))
    factory = hub_feed_factory(hub, "t", "unknown-id", 16, None, Event("reset"))
    async with factory.open(None) as feed:
        assert isinstance(feed, SubscriptionFeed)
        await feed.wait_backlog(10)  # the reset event is ready to go
        assert [e.data for e in await feed.next_batch(10)] == ["reset"]


async def test_a_failing_on_resume_leaves_no_subscriber_behind() -> None:
    hub = Hub()

    def on_resume(subscription: Subscription) -> None:
        raise RuntimeError("boom")

    factory = hub_feed_factory(hub, "t", "1", 16, None, None, on_resume)
    with pytest.raises(RuntimeError, match="boom"):
        async with factory.open(None):
            pass  # pragma: no cover  never entered
    assert hub.statistics().subscribers == 0


class ScriptedFeed:
    """A feed that gives the batches it was given, then ends; counts backlog looks."""

    def __init__(self, *batches: list[int]) -> None:
        self.failed = False
        self.batches = list(batches)
        self.looks = 0

    def backlog(self) -> tuple[int, int]:
        self.looks += 1
        return 0, 256

    async def next_batch(self, max_events: int) -> list[int]:
        await trio.lowlevel.checkpoint()
        return self.batches.pop(0) if self.batches else []

    async def run(self) -> None:
        await trio.lowlevel.checkpoint()


async def _pump(feed: ScriptedFeed, writer: Writer, preamble: bytes = b"") -> None:
    await pump(
        feed,
        writer,
        preamble,
        256,
        lambda batch: b"".join(b"%d" % i for i in batch),
        keepalive_interval=None,
        full=never_full,
        written=lambda count: None,
    )


async def _send(message: Message) -> None:
    await trio.lowlevel.checkpoint()


async def test_a_lone_event_after_a_quiet_spell_goes_out_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    writer = Writer(_send, 30.0, None)
    await trio.sleep(1)  # quiet since the writer was made
    feed = ScriptedFeed([7])
    await _pump(feed, writer)
    assert feed.looks == 0  # no look for a fast producer
    assert writer.writes == 1


async def test_a_lone_event_right_after_a_write_looks_for_more(
    autojump_clock: trio.testing.MockClock,
) -> None:
    writer = Writer(_send, 30.0, None)
    feed = ScriptedFeed([7], [8])
    await _pump(feed, writer)
    assert feed.looks > 0
    assert writer.writes == 2


async def test_a_streams_first_batch_goes_out_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Right after the preamble, with more than one event: the very case that
    # coalesces later on, but the time to the first event is never traded.
    writer = Writer(_send, 30.0, None)
    feed = ScriptedFeed([1, 2])
    await _pump(feed, writer, b": preamble\n\n")
    assert writer.writes == 2  # the preamble, then the batch
    assert feed.looks == 0  # no look for a fast producer
    assert trio.current_time() == 0
