"""RedisBroker against a real redis-server: fan-out across instances, resume, history."""

from __future__ import annotations

import pytest
import trio

from tests.brokers._hubs import broker_of, receive_n, redis_hub
from tests.brokers._redis_server import RedisServer
from trio_stream.brokers import MIN_RETAINED, BrokerError
from trio_stream.core import History, MemoryBroker, Overflow
from trio_stream.protocol import Event

pytestmark = pytest.mark.needs_redis

DEADLINE = 15  # safety bound only: a healthy run takes milliseconds


async def test_events_published_on_either_instance_reach_subscribers_of_both(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as a, redis_hub(redis_server.url) as b:
            async with a.subscribe("news") as on_a, b.subscribe("news") as on_b:
                published = [
                    await a.publish("news", Event("one")),
                    await b.publish("news", Event.json({"n": 2}, event="update")),
                    await a.publish("news", Event("three\nlines", retry=1500)),
                ]
                assert await receive_n(on_a, 3) == published
                assert await receive_n(on_b, 3) == published
            stats = broker_of(a).statistics()
            assert stats.available
            assert stats.published == 2
            assert stats.delivered == 3


async def test_many_local_subscribers_share_one_tail(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            async with hub.subscribe("t") as first, hub.subscribe("t") as second:
                assert broker_of(hub).statistics().tails == 1
                assert broker_of(hub).statistics().watchers == 2
                event = await hub.publish("t", Event("x"))
                assert await first.receive() == event
                assert await second.receive() == event
            # The last subscriber left: the tail ends after its current XREAD.
            async with hub.subscribe("t") as again:
                event = await hub.publish("t", Event("y"))
                assert await again.receive() == event


async def test_resuming_on_the_other_instance_gets_every_event_once_in_order(
    redis_server: RedisServer,
) -> None:
    total = 200
    published: list[Event] = []
    received: list[Event] = []
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as a, redis_hub(redis_server.url) as b:

            async def publish_all() -> None:  # noqa: ASYNC910  total > 0: it publishes
                for n in range(total):
                    hub = a if n % 2 else b
                    published.append(await hub.publish("feed", Event(str(n))))

            async with trio.open_nursery() as nursery:
                async with a.subscribe("feed") as first:
                    nursery.start_soon(publish_all)
                    received.extend(await receive_n(first, 50))
                # Away while publishing goes on; come back on the other instance.
                async with b.subscribe("feed", last_event_id=received[-1].id) as resumed:
                    assert resumed.recovered
                    received.extend(await receive_n(resumed, total - 50))
    assert [event.data for event in received] == [str(n) for n in range(total)]
    assert received == published


async def test_resume_with_the_newest_id_replays_nothing(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            last = await hub.publish("t", Event("a"))
            async with hub.subscribe("t", last_event_id=last.id) as sub:
                assert sub.recovered
                fresh = await hub.publish("t", Event("b"))
                assert await sub.receive() == fresh


async def test_replay_spans_several_pages(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url, replay_batch=7) as hub:
            first = await hub.publish("t", Event("0"))
            rest = [await hub.publish("t", Event(str(n))) for n in range(1, 31)]
            async with hub.subscribe("t", last_event_id=first.id) as sub:
                assert sub.recovered
                assert await receive_n(sub, 30) == rest


@pytest.mark.parametrize("last_event_id", ["nonsense", "0123456789ab:1-0", "1a2b3c4d-3"])
async def test_unknown_ids_start_live(redis_server: RedisServer, last_event_id: str) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            await hub.publish("t", Event("old"))
            async with hub.subscribe("t", last_event_id=last_event_id) as sub:
                assert not sub.recovered
                live = await hub.publish("t", Event("live"))
                assert await sub.receive() == live


async def test_an_id_from_a_memory_broker_or_another_epoch_is_unknown(
    redis_server: RedisServer,
) -> None:
    memory_id = (await MemoryBroker().publish("t", Event("m"))).id
    assert memory_id is not None
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            ours = await hub.publish("t", Event("a"))
            assert ours.id is not None
            forged = "0" * 12 + ours.id[12:]  # same stream position, other epoch
            for foreign in (memory_id, forged):
                assert await hub.broker.replay("t", foreign) is None
            assert await hub.broker.replay("t", ours.id) == []


async def test_an_id_whose_entry_was_trimmed_is_unknown(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url, history=History(max_events=1)) as hub:
            first = await hub.publish("t", Event("first"))
            assert first.id is not None
            stream_id = first.id.split(":", 1)[1]
            redis_server.command("XTRIM", "trio_stream:{t}:stream", "MINID", stream_id + "1")
            assert await hub.broker.replay("t", first.id) is None


async def test_history_bounds_are_applied_in_redis(redis_server: RedisServer) -> None:
    history = History(max_events=5, max_age=120.0)
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url, history=history, key_prefix="app") as hub:

            async def publish_some(count: int) -> None:  # noqa: ASYNC910  count > 0
                for n in range(count):
                    await hub.publish("t", Event(str(n)))

            async with trio.open_nursery() as nursery:
                for _ in range(10):  # concurrent publishers share the multiplexed connections
                    nursery.start_soon(publish_some, (MIN_RETAINED + 300) // 10)
    length = int(redis_server.command("XLEN", "app:{t}:stream")[1:])
    # Approximate trimming frees whole nodes: never below the floor, not far above.
    assert MIN_RETAINED <= length < MIN_RETAINED + 300
    for key in ("app:{t}:stream", "app:{t}:epoch"):
        ttl = int(redis_server.command("PTTL", key)[1:])
        assert 0 < ttl <= 120_000


async def test_foreign_entries_in_the_stream_are_skipped(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            first = await hub.publish("t", Event("a"))
            async with hub.subscribe("t") as sub:
                redis_server.command("XADD", "trio_stream:{t}:stream", "*", "foo", "bar")
                last = await hub.publish("t", Event("b"))
                assert await sub.receive() == last
            assert first.id is not None
            assert await hub.broker.replay("t", first.id) == [last]


async def test_a_foreign_epoch_key_makes_publish_fail_loudly(redis_server: RedisServer) -> None:
    redis_server.command("SET", "trio_stream:{t}:epoch", "not hex")
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            with pytest.raises(BrokerError, match="unexpected reply"):
                await hub.publish("t", Event("x"))
            redis_server.command("SET", "trio_stream:{u}:stream", "a string")
            with pytest.raises(BrokerError, match="refused publish"):
                await hub.publish("u", Event("x"))
            assert broker_of(hub).statistics().publish_failures == 2
            assert broker_of(hub).available  # refusals are not outages


async def test_a_blocking_subscriber_slows_the_tail_without_losing_events(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            sent: list[Event] = []

            async def publish_all() -> None:
                for n in range(10):
                    sent.append(await hub.publish("t", Event(str(n))))

            async with (
                hub.subscribe("t", capacity=2, overflow=Overflow.BLOCK) as sub,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(publish_all)
                received = await receive_n(sub, 10)
            assert received == sent
