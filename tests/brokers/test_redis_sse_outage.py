"""SSE over RedisBroker: 503 + Retry-After during an outage; multi-topic resume of quiet topics."""

from __future__ import annotations

import logging
from functools import partial

import httpx
import pytest
import trio

from tests.brokers._hubs import redis_hub
from tests.brokers._redis_server import RedisServer
from tests.brokers.test_redis_sse import stream_events
from trio_stream.protocol import Event
from trio_stream.sse import Route, Router, hub_endpoint, hub_topics_endpoint, serve

pytestmark = pytest.mark.needs_redis

DEADLINE = 20  # safety bound only


@pytest.mark.parametrize("path", ["/sse/x", "/sse?topic=a&topic=b"])
async def test_subscribing_while_redis_is_down_is_503_with_retry_after(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO, "trio_stream")
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub, trio.open_nursery() as nursery:
            routes = [
                Route("/sse", hub_topics_endpoint(hub)),
                Route("/sse/{topic}", hub_endpoint(hub)),
            ]
            url = await nursery.start(serve, Router(routes))
            await redis_server.astop()
            async with httpx.AsyncClient(base_url=url) as client:
                response = await client.get(path)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "2"
            assert response.text == "temporarily unavailable"
            nursery.cancel_scope.cancel()
    failures = [r for r in caplog.records if "subscribing to" in r.getMessage()]
    assert failures
    assert all(r.levelno == logging.WARNING for r in failures)
    assert all(r.exc_info is None for r in caplog.records)


async def test_a_multi_topic_stream_resumes_a_quiet_topic_across_a_reconnect(
    redis_server: RedisServer,
) -> None:
    received: list[Event] = []
    with trio.fail_after(DEADLINE):
        async with redis_hub(redis_server.url) as hub, trio.open_nursery() as nursery:
            url = await nursery.start(serve, Router([Route("/sse", hub_topics_endpoint(hub))]))
            stream_url = f"{url}/sse?topic=a&topic=b"
            await hub.publish("b", Event("b0"))  # b has history, but sends nothing on the stream
            async with httpx.AsyncClient() as client:
                got = trio.Event()
                async with trio.open_nursery() as readers:
                    await readers.start(
                        partial(stream_events, received=received, count=1, got=got),
                        client,
                        stream_url,
                    )
                    await hub.publish("a", Event("a1"))
                assert [e.data for e in received] == ["a1"]
                last_id = received[-1].id
                assert last_id is not None
                # Published while the client is away: b1 must not be lost.
                await hub.publish("b", Event("b1"))
                await hub.publish("a", Event("a2"))
                resumed: list[Event] = []
                await stream_events(
                    client, stream_url, received=resumed, count=2, last_event_id=last_id
                )
            nursery.cancel_scope.cancel()
    assert sorted(e.data for e in resumed) == ["a2", "b1"]
    assert all(e.event != "reset" for e in resumed)
