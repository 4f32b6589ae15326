"""RedisBroker when Redis goes away: loud publishes, ended subscribers, gap-free resume."""

from __future__ import annotations

import os
import signal

import pytest
import trio

from tests.brokers._hubs import broker_of, receive_n, redis_hub
from tests.brokers._redis_server import RedisServer
from trio_stream.brokers import BrokerUnavailableError
from trio_stream.core import Hub, SubscriberDisconnected, Subscription
from trio_stream.protocol import Event

pytestmark = pytest.mark.needs_redis

DEADLINE = 20  # safety bound only


async def expect_reconnect_signal(subscription: Subscription) -> None:
    """The subscription ends with SubscriberDisconnected once the outage is noticed."""
    with pytest.raises(SubscriberDisconnected):
        await receive_n(subscription, 1)


async def publish_alternating(hubs: tuple[Hub, Hub], count: int, start: int) -> list[Event]:
    await trio.lowlevel.checkpoint()
    return [await hubs[n % 2].publish("feed", Event(str(start + n))) for n in range(count)]


async def test_restart_mid_stream_loses_nothing_for_clients_that_resume(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as a, redis_hub(redis_server.url) as b:
            async with a.subscribe("feed") as on_a, b.subscribe("feed") as on_b:
                before = await publish_alternating((a, b), 6, 0)
                seen_a = await receive_n(on_a, 6)
                seen_b = await receive_n(on_b, 4)  # b's client is a little behind
                assert seen_a == before
                await redis_server.astop(keep_data=True)
                await expect_reconnect_signal(on_a)
                await expect_reconnect_signal(on_b)

            for hub in (a, b):
                with pytest.raises(BrokerUnavailableError):
                    await hub.publish("feed", Event("during the outage"))
                with pytest.raises(BrokerUnavailableError):
                    async with hub.subscribe("feed", last_event_id=seen_a[-1].id):
                        pass  # pragma: no cover
                assert not broker_of(hub).available

            await redis_server.astart()
            await broker_of(a).wait_available()
            await broker_of(b).wait_available()
            after = await publish_alternating((a, b), 4, 6)
            # Each client resumes on the other instance with its own last id.
            async with (
                b.subscribe("feed", last_event_id=seen_a[-1].id) as resumed_a,
                a.subscribe("feed", last_event_id=seen_b[-1].id) as resumed_b,
            ):
                assert resumed_a.recovered
                assert resumed_b.recovered
                assert await receive_n(resumed_a, 4) == after
                assert await receive_n(resumed_b, 6) == before[4:] + after
                live = await a.publish("feed", Event("live"))
                assert await resumed_a.receive() == live
                assert await resumed_b.receive() == live
            stats = broker_of(a).statistics()
            assert stats.outages == 1
            assert stats.publish_failures == 1
    assert redis_server.command("XLEN", "trio_stream:{feed}:stream") == b":11"


async def test_a_restart_that_lost_the_data_is_recognised(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            old = await hub.publish("t", Event("before"))
            await redis_server.astop(keep_data=False)
            await redis_server.astart()
            # Nothing was watching. The pool usually noticed the dead connection
            # already; if not, this publish fails loudly and the next one works.
            try:
                new = await hub.publish("t", Event("after"))
            except BrokerUnavailableError:
                await broker_of(hub).wait_available()
                new = await hub.publish("t", Event("after"))
            assert old.id is not None
            assert new.id is not None
            assert old.id.split(":")[0] != new.id.split(":")[0]  # a new epoch
            async with hub.subscribe("t", last_event_id=old.id) as sub:
                assert not sub.recovered  # never misread as a position in the new stream
                live = await hub.publish("t", Event("live"))
                assert await sub.receive() == live


async def test_redis_down_at_start_then_up(redis_server: RedisServer) -> None:
    await redis_server.astop()
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            broker = broker_of(hub)
            assert not broker.available
            with pytest.raises(BrokerUnavailableError):
                await hub.publish("t", Event("x"))
            with pytest.raises(BrokerUnavailableError):
                async with hub.subscribe("t"):
                    pass  # pragma: no cover
            await redis_server.astart()
            await broker.wait_available()
            async with hub.subscribe("t") as sub:
                event = await hub.publish("t", Event("up"))
                assert await sub.receive() == event


async def test_a_tail_that_cannot_anchor_fails_the_subscribe(redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            await redis_server.astop()
            # No tail or publish has noticed yet: the new tail's first command fails.
            with pytest.raises(BrokerUnavailableError):
                async with hub.subscribe("t"):
                    pass  # pragma: no cover
            assert not broker_of(hub).available
            assert broker_of(hub).statistics().tails == 0


async def test_killed_connections_lose_nothing_either_way(redis_server: RedisServer) -> None:
    # Redis stays up. Whether the tail was blocked in XREAD when its connection
    # died (outage: the subscriber is told to reconnect) or was between two
    # reads (it reconnects unnoticed) depends on timing; both must be gap-free.
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub:
            async with hub.subscribe("t") as sub:
                first = await hub.publish("t", Event("1"))
                assert await sub.receive() == first
                redis_server.command("CLIENT", "KILL", "TYPE", "normal")
                try:
                    second = await hub.publish("t", Event("2"))
                except BrokerUnavailableError:
                    await broker_of(hub).wait_available()
                    second = await hub.publish("t", Event("2"))
                try:
                    assert await sub.receive() == second
                    return
                except SubscriberDisconnected:
                    pass
            await broker_of(hub).wait_available()
            async with hub.subscribe("t", last_event_id=first.id) as resumed:
                assert resumed.recovered
                assert await resumed.receive() == second


async def test_a_frozen_redis_is_detected_by_timeouts(redis_server: RedisServer) -> None:
    pid = redis_server.pid
    assert pid is not None
    options = {"tail_block": 0.1, "command_timeout": 0.2}
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url, **options) as hub:
            async with hub.subscribe("t") as sub:
                first = await hub.publish("t", Event("1"))
                assert await sub.receive() == first
                os.kill(pid, signal.SIGSTOP)
                try:
                    await expect_reconnect_signal(sub)
                    with pytest.raises(BrokerUnavailableError):
                        await hub.publish("t", Event("frozen"))
                finally:
                    os.kill(pid, signal.SIGCONT)
            await broker_of(hub).wait_available()
            async with hub.subscribe("t", last_event_id=first.id) as resumed:
                assert resumed.recovered
                second = await hub.publish("t", Event("2"))
                assert await resumed.receive() == second
