"""Ten topics on one SSE connection through real Hypercorn, httpx and a cutting proxy."""

from __future__ import annotations

import httpx
import trio
import trio.lowlevel

from trio_stream.core import Hub
from trio_stream.protocol import Backoff, Event
from trio_stream.sse import TopicsEventId, hub_topics_endpoint, open_event_source
from trio_stream.testing import FaultProxy, open_sse_reader, open_test_server

SAFETY = 30  # seconds: a bound on each test, never a wait for something to happen
TOPICS = tuple(f"feed.{i}" for i in range(10))
QUERY = "/sse?" + "&".join(f"topic={topic}" for topic in TOPICS)


async def test_ten_topics_arrive_exactly_once_in_order_across_cuts() -> None:
    # Every connection is cut after 2,000 bytes (about 15 events with their
    # ten-topic ids), mostly in the middle of an event. Half the events are
    # published before the client connects (it starts from a composite id
    # made of one marker per topic, so they are replayed from history), half
    # while it reads, interleaved across topics.
    per_topic = 60
    hub = Hub()
    markers = [await hub.publish(topic, Event("marker")) for topic in TOPICS]
    start = TopicsEventId(TOPICS, tuple(m.id for m in markers), 0).encode()
    for i in range(per_topic // 2):
        for topic in TOPICS:
            await hub.publish(topic, Event(f"{topic}/{i}"))

    async def publish_rest() -> None:
        await trio.lowlevel.checkpoint()
        for i in range(per_topic // 2, per_topic):
            for topic in reversed(TOPICS):
                await hub.publish(topic, Event(f"{topic}/{i}", event="late"))
                await trio.lowlevel.checkpoint()

    received: dict[str, list[str]] = {topic: [] for topic in TOPICS}
    total = 0
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(hub_topics_endpoint(hub)) as server,
            trio.open_nursery() as nursery,
        ):
            proxy = FaultProxy("127.0.0.1", server.port, cut_after_bytes=2000)
            await nursery.start(proxy.serve)
            backoff = Backoff(initial=0.001, maximum=0.01)
            async with open_event_source(
                proxy.url(path=QUERY), last_event_id=start, backoff=backoff, max_retries=3
            ) as source:
                async for event in source:
                    parsed = TopicsEventId.parse(event.id or "", TOPICS)
                    assert parsed is not None
                    received[parsed.topic].append(event.data)
                    total += 1
                    if total == 1:
                        nursery.start_soon(publish_rest)
                    if total == per_topic * len(TOPICS):
                        break
                stats = source.statistics()
            nursery.cancel_scope.cancel()
    for topic in TOPICS:
        assert received[topic] == [f"{topic}/{i}" for i in range(per_topic)], topic
    assert proxy.cuts >= 20
    assert stats.connections == proxy.connections
    assert len(source.last_event_id) <= 25 + 8 * len(TOPICS)  # MemoryBroker ids: compact


async def test_leaving_closes_every_subscription_and_the_connection() -> None:
    hub = Hub()
    with trio.fail_after(SAFETY):
        async with open_test_server(hub_topics_endpoint(hub)) as server:
            async with (
                httpx.AsyncClient() as client,
                client.stream("GET", server.url + QUERY) as response,
                open_sse_reader(response) as reader,
            ):
                await reader.chunk()
                assert hub.statistics().subscribers == len(TOPICS)
                await hub.publish("feed.7", Event("hello"))
                (event,) = await reader.events(1)
            await server.wait_idle()
            assert hub.statistics().subscribers == 0
            await server.wait_connections_closed()
    parsed = TopicsEventId.parse(event.id or "", TOPICS)
    assert parsed is not None
    assert parsed.topic == "feed.7"
