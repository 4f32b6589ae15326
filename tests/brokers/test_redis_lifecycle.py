"""RedisBroker's moving parts: tail lifetime, shutdown, long gaps, recovery probing."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
import trio

from tests.brokers._hubs import broker_of, fast_broker, receive_n, redis_hub
from tests.brokers._redis_server import RedisServer
from trio_stream.brokers import MIN_RETAINED, BrokerUnavailableError
from trio_stream.core import Overflow, SubscriberDisconnected, open_hub
from trio_stream.protocol import Event

pytestmark = pytest.mark.needs_redis

DEADLINE = 15  # safety bound only

_BULK_XADD = """
for i = 1, tonumber(ARGV[2]) do
  redis.call('XADD', KEYS[1], '*', 'ep', ARGV[1], 'd', tostring(i))
end
return 'OK'
"""


async def test_an_idle_tail_stops_after_one_block(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url, tail_block=0.05) as hub:
            broker = broker_of(hub)
            async with hub.subscribe("t"):
                tail = broker._tails._tails["t"]
                assert broker.statistics().tails == 1
            await tail.done.wait()  # its XREAD timed out with nobody left to serve
            assert broker.statistics().tails == 0
            assert broker.statistics().watchers == 0
            async with hub.subscribe("t") as sub:  # a new tail takes over
                event = await hub.publish("t", Event("again"))
                assert await sub.receive() == event


async def test_a_gap_longer_than_the_history_is_not_replayed(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            first = await hub.publish("t", Event("first"))
            assert first.id is not None
            epoch = first.id.split(":")[0]
            count = str(MIN_RETAINED * 2 + 600)
            redis_server.command("EVAL", _BULK_XADD, "1", "trio_stream:{t}:stream", epoch, count)
            async with hub.subscribe("t", last_event_id=first.id) as sub:
                assert not sub.recovered


async def test_replay_notices_an_outage_itself(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            first = await hub.publish("t", Event("first"))
            assert first.id is not None
            await redis_server.astop()
            with pytest.raises(BrokerUnavailableError):
                await hub.broker.replay("t", first.id)
            assert not broker_of(hub).available


async def test_closing_the_hub_releases_a_tail_held_by_a_blocking_subscriber(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as publisher, redis_hub(redis_server.url) as hub:
            async with hub.subscribe("t", capacity=1, overflow=Overflow.BLOCK) as sub:
                tail = broker_of(hub)._tails._tails["t"]
                for n in range(3):  # the other instance does not wait for our reader
                    await publisher.publish("t", Event(str(n)))
                assert (await sub.receive()).data == "0"
                hub.close()  # the tail is waiting for room: it must end quietly
                await tail.done.wait()
            assert broker_of(hub).available


async def test_a_custom_fanout_is_told_to_disconnect_subscribers(
    redis_server: RedisServer,
) -> None:
    disconnected: list[str] = []
    delivered: list[Event] = []
    told = trio.Event()
    got = trio.Event()

    class RecordingFanout:
        def deliver(self, topic: str, event: Event) -> None:
            delivered.append(event)
            got.set()

        async def wait_for_room(self, topic: str) -> None:
            await trio.lowlevel.checkpoint()

        def disconnect_subscribers(self, topic: str, reason: str) -> int:
            disconnected.append(topic)
            told.set()
            return 1

    broker = fast_broker(redis_server.url)
    broker.bind(RecordingFanout())
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run)
            await broker.watch("t")
            event = await broker.publish("t", Event("x"))
            await got.wait()
            await redis_server.astop()
            await told.wait()
            await redis_server.astart()
            await broker.wait_available()
            broker.unwatch("t")
            nursery.cancel_scope.cancel()
    assert delivered == [event]
    assert disconnected == ["t"]


async def test_recovery_probing_stops_when_its_backoff_runs_out(
    redis_server: RedisServer,
) -> None:
    exhausted = trio.Event()

    def two_attempts() -> Iterator[float]:
        yield 0.01
        yield 0.01
        exhausted.set()

    await redis_server.astop()
    broker = fast_broker(redis_server.url, reconnect_backoff=two_attempts())
    with trio.fail_after(DEADLINE):
        async with open_hub(broker) as hub:
            await exhausted.wait()
            await redis_server.astart()
            assert not broker.available  # nobody probes any more
            with pytest.raises(BrokerUnavailableError):
                await hub.publish("t", Event("x"))


async def test_statistics_count_deliveries_and_watchers(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with (
            redis_hub(redis_server.url) as hub,
            hub.subscribe("a") as on_a,
            hub.subscribe("b") as on_b,
        ):
            sent = [await hub.publish(topic, Event(topic)) for topic in ("a", "b", "a")]
            assert await receive_n(on_a, 2) == [sent[0], sent[2]]
            assert await receive_n(on_b, 1) == [sent[1]]
            stats = broker_of(hub).statistics()
            assert (stats.tails, stats.watchers, stats.delivered) == (2, 2, 3)
            assert (stats.published, stats.publish_failures, stats.outages) == (3, 0, 0)


async def test_a_failed_publish_ends_the_running_tails(redis_server: RedisServer) -> None:
    pid = redis_server.pid
    assert pid is not None
    # The tail's XREAD would time out only after 5 s: the publish notices first.
    options = {"tail_block": 5.0, "command_timeout": 0.2}
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url, **options) as hub, hub.subscribe("t") as sub:
            first = await hub.publish("t", Event("1"))
            assert await sub.receive() == first
            os.kill(pid, signal.SIGSTOP)
            try:
                with pytest.raises(BrokerUnavailableError):
                    await hub.publish("t", Event("frozen"))
                assert broker_of(hub).statistics().tails == 0
                with pytest.raises(SubscriberDisconnected):
                    await sub.receive()
            finally:
                os.kill(pid, signal.SIGCONT)


async def test_an_outage_ends_hub_subscribers_with_a_clear_reason(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(DEADLINE):
        async with (
            redis_hub(redis_server.url) as hub,
            hub.subscribe("t") as first,
            hub.subscribe("t") as second,
        ):
            await redis_server.astop()
            for sub in (first, second):
                with pytest.raises(SubscriberDisconnected) as caught:
                    await receive_n(sub, 1)
                message = str(caught.value)
                assert "Redis backplane is unavailable" in message
                assert "behind" not in message
            stats = hub.statistics()
            assert stats.disconnected == 2
            assert stats.subscribers == 0  # detached at once: nothing more is queued
