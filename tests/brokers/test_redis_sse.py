"""End to end: two Hypercorn servers with the SSE endpoint on one Redis; clients move between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
import pytest
import trio

from tests.brokers._hubs import broker_of, redis_hub
from tests.brokers._redis_server import RedisServer
from trio_stream.core import Hub
from trio_stream.protocol import Event, SSEDecoder
from trio_stream.sse import Route, Router, hub_endpoint, serve

pytestmark = pytest.mark.needs_redis

DEADLINE = 20  # safety bound only


@asynccontextmanager
async def two_servers(redis_url: str) -> AsyncIterator[tuple[Hub, str, Hub, str]]:
    """Two "instances": each a Hub on its own RedisBroker, served on its own port."""
    async with (
        redis_hub(redis_url) as hub_a,
        redis_hub(redis_url) as hub_b,
        trio.open_nursery() as nursery,
    ):
        url_a = await nursery.start(serve, Router([Route("/sse/{topic}", hub_endpoint(hub_a))]))
        url_b = await nursery.start(serve, Router([Route("/sse/{topic}", hub_endpoint(hub_b))]))
        yield hub_a, url_a, hub_b, url_b
        nursery.cancel_scope.cancel()


async def stream_events(  # noqa: ASYNC114  a test helper, started with nursery.start
    client: httpx.AsyncClient,
    url: str,
    *,
    received: list[Event],
    count: int | None,
    last_event_id: str | None = None,
    got: trio.Event | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Read ``url`` into ``received``; ready once the response headers are in.

    The endpoint subscribes before it answers, so anything published after
    readiness is delivered. Stops after ``count`` events (by cancelling a
    scope, never by breaking out of httpx's iterator) or when the stream ends;
    sets ``got`` whenever events arrive.
    """
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    wanted = len(received) + count if count is not None else None
    with trio.CancelScope() as scope:
        async with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            task_status.started()
            decoder = SSEDecoder(last_event_id or "")
            async for chunk in response.aiter_bytes():
                received.extend(decoder.feed(chunk))
                if got is not None and received:
                    got.set()
                if wanted is not None and len(received) >= wanted:
                    scope.cancel()


def as_sent(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(event.data, event.id) for event in events]


async def test_a_client_resumes_on_the_other_server_with_no_gap_and_no_duplicate(
    redis_server: RedisServer,
) -> None:
    received: list[Event] = []
    with trio.fail_after(DEADLINE):
        async with (
            two_servers(redis_server.url) as (hub_a, url_a, hub_b, url_b),
            httpx.AsyncClient(timeout=DEADLINE) as client,
        ):
            read = partial(stream_events, client, received=received)
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(read, f"{url_a}/sse/news", count=5))
                sent = [await hub_b.publish("news", Event(f"b{n}")) for n in range(3)]
                sent += [await hub_a.publish("news", Event(f"a{n}")) for n in range(2)]
            # Away: these are published while the client has no connection.
            sent += [await hub_a.publish("news", Event(f"missed{n}")) for n in range(3)]
            async with trio.open_nursery() as nursery:
                resume = partial(read, f"{url_b}/sse/news", count=4)
                await nursery.start(partial(resume, last_event_id=received[-1].id))
                sent.append(await hub_a.publish("news", Event("live")))
    assert as_sent(received) == as_sent(sent)


async def test_a_redis_restart_ends_streams_and_clients_resume_elsewhere(
    redis_server: RedisServer,
) -> None:
    received: list[Event] = []
    with trio.fail_after(DEADLINE):
        async with (
            two_servers(redis_server.url) as (hub_a, url_a, hub_b, url_b),
            httpx.AsyncClient(timeout=DEADLINE) as client,
        ):
            read = partial(stream_events, client, received=received)
            async with trio.open_nursery() as nursery:
                got = trio.Event()
                await nursery.start(partial(read, f"{url_a}/sse/ticker", count=None, got=got))
                sent = [await hub_b.publish("ticker", Event(str(n))) for n in range(3)]
                await got.wait()  # at least one event reached the client (maybe all three)
                await redis_server.astop(keep_data=True)
                # The stream ends cleanly on its own: the "reconnect" signal.
            await redis_server.astart()
            await broker_of(hub_a).wait_available()
            await broker_of(hub_b).wait_available()
            sent += [await hub_a.publish("ticker", Event(str(n))) for n in range(3, 5)]
            async with trio.open_nursery() as nursery:
                resume = partial(read, f"{url_b}/sse/ticker", count=5 - len(received))
                await nursery.start(partial(resume, last_event_id=received[-1].id))
    assert as_sent(received) == as_sent(sent)
