"""Maximum stream lifetime: streams end at an event boundary, clients resume with no gap."""

from __future__ import annotations

import math
import random
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trio_stream.core import Hub
from trio_stream.protocol import Backoff, Event, SSEDecoder
from trio_stream.sse import (
    DEFAULT_ERROR_EVENT,
    EventStream,
    Route,
    Router,
    hub_endpoint,
    hub_topics_endpoint,
    open_event_source,
    sse_response,
)
from trio_stream.sse._asgi import ASGIApp, Message, Receive, Scope, Send
from trio_stream.sse._feeds import ProducerFeed
from trio_stream.sse._hub import SubscriptionFeed
from trio_stream.sse._lifetime import LifetimeFeed, check_lifetime, draw_lifetime
from trio_stream.testing import open_asgi_client, open_test_server

SAFETY = 15  # seconds: a bound on each test, never a wait for something to happen
ROUNDS = 4
PER_ROUND = 5


class CountingApp:
    """Counts the streams that ended; the test waits on that, not on a clock."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ended = 0
        self.first_headers = trio.Event()  # sent once subscribed: publishing reaches it
        self._changed = trio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.first_headers.set()
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            if scope["type"] == "http":
                self.ended += 1
                self._changed.set()
                self._changed = trio.Event()

    async def wait_ended(self, count: int) -> None:
        await trio.lowlevel.checkpoint()
        while self.ended < count:
            await self._changed.wait()


@pytest.mark.parametrize("multi", [False, True], ids=["one-topic", "multi-topic"])
async def test_every_event_arrives_exactly_once_across_lifetime_expiries(multi: bool) -> None:
    hub = Hub()
    options: dict[str, Any] = {"max_lifetime": 0.1, "lifetime_jitter": 0.5, "retry": 5}
    if multi:
        endpoint = hub_topics_endpoint(hub, **options)
        path = "/sse?topic=news&topic=other"
    else:
        endpoint = hub_endpoint(hub, **options)
        path = "/sse/news"
    counting = CountingApp(Router([Route("/sse", endpoint), Route("/sse/{topic}", endpoint)]))
    received: list[Event] = []
    total = ROUNDS * PER_ROUND

    async def publisher() -> None:
        await counting.first_headers.wait()  # subscribed: publishing reaches the stream
        for round_ in range(ROUNDS):
            # Published while the previous stream has just ended (the client is
            # reconnecting): only a resume from Last-Event-ID delivers them.
            await counting.wait_ended(round_)
            for n in range(PER_ROUND):
                await hub.publish("news", Event(str(round_ * PER_ROUND + n)))

    with trio.fail_after(SAFETY):
        async with (
            open_test_server(counting) as server,
            open_event_source(
                server.url + path, backoff=Backoff(initial=0.001, maximum=0.01)
            ) as source,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(publisher)
            async for event in source:
                received.append(event)
                if len(received) == total:
                    break
            connections = source.statistics().connections
    assert [event.data for event in received] == [str(n) for n in range(total)]
    assert len({event.id for event in received}) == total
    assert counting.ended >= ROUNDS
    assert connections >= ROUNDS


async def test_a_stream_ends_between_events_never_inside_one() -> None:
    big = "x" * 20_000

    async def flood(send_channel: trio.MemorySendChannel[Event]) -> None:
        for n in range(1_000_000):  # bounded; the lifetime ends it long before
            await send_channel.send(Event(f"{n} {big}", id=str(n)))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await EventStream(flood, max_lifetime=0.2, keepalive_interval=None)(scope, receive, send)

    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            httpx.AsyncClient() as client,
            client.stream("GET", server.url) as response,
        ):
            assert response.status_code == 200
            body = b"".join([chunk async for chunk in response.aiter_raw()])
    assert body.endswith(b"\n\n")
    events = SSEDecoder().feed(body)
    assert len(events) > 1
    assert [event.data.split()[0] for event in events] == [str(n) for n in range(len(events))]
    assert all(event.data.endswith(big) for event in events)


async def test_lifetimes_are_spread_and_reproducible(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    lifetime, jitter, count, seed = 100.0, 0.5, 12, 42
    endpoint = hub_endpoint(
        hub,
        max_lifetime=lifetime,
        lifetime_jitter=jitter,
        lifetime_random=random.Random(seed),
        keepalive_interval=None,
    )
    router = Router([Route("/sse/{topic}", endpoint)])
    durations: list[float] = []

    async def one_stream(client: httpx.AsyncClient) -> None:
        start = trio.current_time()
        async with client.stream("GET", "/sse/news") as response:
            assert response.status_code == 200
            async for _ in response.aiter_raw():
                pass
        durations.append(trio.current_time() - start)

    async with open_asgi_client(router) as client, trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one_stream, client)
    expected_rng = random.Random(seed)
    expected = sorted(lifetime * (1 - jitter * expected_rng.random()) for _ in range(count))
    assert sorted(durations) == pytest.approx(expected, abs=1e-6)
    assert all(lifetime * (1 - jitter) <= d <= lifetime for d in durations)
    assert max(durations) - min(durations) > lifetime * jitter / 4  # spread, not a herd


async def test_no_lifetime_means_the_stream_outlives_any_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    app = sse_response(hub=hub, topic="news", keepalive_interval=None)
    async with open_asgi_client(app) as client:
        with trio.move_on_after(10_000) as waited:
            async with client.stream("GET", "/") as response:
                async for _ in response.aiter_raw():
                    pass
    assert waited.cancelled_caught


async def test_a_failing_source_still_gets_its_error_event_under_a_lifetime() -> None:
    async def not_events(send_channel: trio.MemorySendChannel[Event]) -> None:
        await send_channel.send(Event("fine"))
        await send_channel.send("not an event")  # type: ignore[arg-type]

    app = EventStream(not_events, max_lifetime=1000.0, keepalive_interval=None)
    async with open_asgi_client(app) as client:
        response = await client.get("/")
    events = SSEDecoder().feed(response.content)
    # The bad item's batch is dropped whole; then the error event ends the stream.
    assert (events[-1].event, events[-1].data) == ("error", DEFAULT_ERROR_EVENT.data)
    assert all(event.data in {"fine", DEFAULT_ERROR_EVENT.data} for event in events)


async def test_the_lifetime_feed_shares_the_wrapped_feeds_state() -> None:
    feed = ProducerFeed[Event](lambda channel: trio.lowlevel.checkpoint(), 4)  # noqa: ASYNC105
    limited = LifetimeFeed(feed, deadline=trio.current_time() - 1)
    limited.failed = True
    assert feed.failed
    assert limited.failed
    assert limited.backlog() == (0, 4)
    assert await limited.next_batch(10) == []  # the deadline has passed
    assert limited.expired
    assert await limited.next_batch(10) == []
    await limited.run()  # the wrapped producer: returns at once, closing its channel
    feed.close()
    assert not hasattr(limited, "wait_backlog")  # a producer feed has no parked wait


async def test_the_lifetime_feed_keeps_a_hub_feeds_parked_wait() -> None:
    hub = Hub()
    async with hub.subscribe("news") as subscription:
        feed = SubscriptionFeed(subscription, [])
        limited = LifetimeFeed(feed, deadline=trio.current_time() + 60)
        # The writer looks the wait up by name: it must be the hub feed's own.
        assert limited.wait_backlog == feed.wait_backlog
        await hub.publish("news", Event("one"))
        await limited.wait_backlog(1)
        assert [e.data for e in await limited.next_batch(10)] == ["one"]


def test_draw_lifetime_stays_within_its_band() -> None:
    rng = random.Random(1)
    values = [draw_lifetime(60.0, 0.25, rng) for _ in range(200)]
    assert all(45.0 <= v <= 60.0 for v in values)
    assert draw_lifetime(60.0, 0.0) == 60.0
    check_lifetime(None, 0.0)


@pytest.mark.parametrize(
    ("max_lifetime", "jitter"),
    [(0.0, 0.2), (-1.0, 0.2), (math.inf, 0.2), (math.nan, 0.2), (10.0, 1.0), (10.0, -0.1)],
)
def test_bad_lifetime_settings_are_refused(max_lifetime: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        EventStream(
            [],  # type: ignore[arg-type]  # never iterated: the settings are refused first
            max_lifetime=max_lifetime,
            lifetime_jitter=jitter,
        )
