"""Several topics on one SSE stream, in memory: routing, exact resume, resets, rejections."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import quote

import httpx
import pytest
import trio
import trio.testing

from trio_stream.core import History, Hub, MemoryBroker, Subscription
from trio_stream.protocol import Event
from trio_stream.sse import (
    DEFAULT_ERROR_EVENT,
    TOPIC_RESET_EVENT,
    EventStream,
    TopicsEventId,
    hub_topics_endpoint,
)
from trio_stream.sse._asgi import ASGIApp
from trio_stream.testing import open_asgi_client, open_sse_reader

TOPICS = ("a", "b", "c")
URL = "/sse?topic=a&topic=b&topic=c"


def topic_of(event: Event, topics: tuple[str, ...] = TOPICS) -> str:
    parsed = TopicsEventId.parse(event.id or "", topics)
    assert parsed is not None
    return parsed.topic


async def read(
    client: httpx.AsyncClient, url: str, count: int, headers: dict[str, str] | None = None
) -> list[Event]:
    """The first ``count`` events of a stream, then leave (a disconnect)."""
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        async with open_sse_reader(response) as reader:
            return await reader.events(count)


async def test_events_keep_their_type_and_data_and_say_their_topic() -> None:
    hub = Hub()
    async with open_asgi_client(hub_topics_endpoint(hub)) as client:
        async with client.stream("GET", URL) as response, open_sse_reader(response) as reader:
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            await reader.chunk()  # preamble: subscribed to all three by now
            assert hub.statistics().subscribers == 3
            await hub.publish("b", Event("b1", event="tick"))
            await hub.publish("a", Event.json({"n": 1}))
            await hub.publish("c", Event("c1\nsecond line", event="chat"))
            events = await reader.events(3)
        await trio.testing.wait_all_tasks_blocked()
        assert hub.statistics().subscribers == 0
    assert [(topic_of(e), e.event, e.data) for e in events] == [
        ("b", "tick", "b1"),
        ("a", "message", '{"n":1}'),
        ("c", "chat", "c1\nsecond line"),
    ]


async def test_a_reconnect_resumes_every_topic_exactly() -> None:
    hub = Hub()
    async with open_asgi_client(hub_topics_endpoint(hub)) as client:
        async with client.stream("GET", URL) as response, open_sse_reader(response) as reader:
            await reader.chunk()
            await hub.publish("a", Event("a1"))
            await hub.publish("b", Event("b1"))
            await hub.publish("a", Event("a2"))  # published, not read before leaving
            first = await reader.events(2)
        # While away: more on every topic, including c that sent nothing so far.
        for topic in ("c", "a", "b", "c"):
            await hub.publish(topic, Event(f"{topic} later"))
        last_id = first[-1].id or ""
        resumed = await read(client, URL, 5, {"last-event-id": last_id})
        # A first connection (no header possible) passes the id in the query.
        query_id = quote(resumed[-1].id or "")
        async with (
            client.stream("GET", f"{URL}&last_event_id={query_id}") as response,
            open_sse_reader(response) as reader,
        ):
            await reader.chunk()
            await hub.publish("b", Event("b newest"))
            again = await reader.events(1)
    assert [e.data for e in first] == ["a1", "b1"]
    by_topic: dict[str, list[str]] = {}
    for event in resumed:
        by_topic.setdefault(topic_of(event), []).append(event.data)
    assert by_topic == {"a": ["a2", "a later"], "b": ["b later"], "c": ["c later", "c later"]}
    assert [e.data for e in again] == ["b newest"]  # nothing replayed twice


async def test_a_topic_history_no_longer_covers_gets_a_reset() -> None:
    hub = Hub(MemoryBroker(History(max_events=2)))
    async with open_asgi_client(hub_topics_endpoint(hub)) as client:
        async with client.stream("GET", URL) as response, open_sse_reader(response) as reader:
            await reader.chunk()
            await hub.publish("a", Event("a1"))
            await hub.publish("b", Event("b1"))
            (_, seen_b) = await reader.events(2)
        for i in range(5):
            await hub.publish("b", Event(f"b{i + 2}"))  # more than b's history holds
        await hub.publish("a", Event("a2"))
        async with (
            client.stream("GET", URL, headers={"last-event-id": seen_b.id or ""}) as response,
            open_sse_reader(response) as reader,
        ):
            resumed = await reader.events(2)
            await hub.publish("b", Event("b live"))
            resumed += await reader.events(1)
    # b's missed events are gone: the page is told, then b goes on live.
    assert sorted((topic_of(e), e.event, e.data) for e in resumed[:2]) == [
        ("a", "message", "a2"),
        ("b", "reset", TOPIC_RESET_EVENT.data),
    ]
    assert resumed[0].event == "reset"  # announced before anything else
    assert (topic_of(resumed[2]), resumed[2].data) == ("b", "b live")


async def test_an_id_for_other_topics_resets_them_all() -> None:
    hub = Hub()
    other = TopicsEventId(("x", "y"), ("e-1", "e-2"), 0).encode()
    async with (
        open_asgi_client(hub_topics_endpoint(hub)) as client,
        client.stream("GET", URL, headers={"last-event-id": other}) as response,
        open_sse_reader(response) as reader,
    ):
        resets = await reader.events(3)
        await hub.publish("c", Event("c1"))
        (live,) = await reader.events(1)
    assert [(e.event, topic_of(e)) for e in resets] == [("reset", t) for t in TOPICS]
    assert (live.data, topic_of(live)) == ("c1", "c")


async def test_a_topic_without_a_position_is_reset_and_starts_now() -> None:
    hub = Hub()
    await hub.publish("a", Event("before"))
    start = TopicsEventId(TOPICS, (None, None, None), 0).encode()
    async with (
        open_asgi_client(hub_topics_endpoint(hub, reset_event=None)) as client,
        client.stream("GET", URL, headers={"last-event-id": start}) as response,
        open_sse_reader(response) as reader,
    ):
        await reader.chunk()
        await hub.publish("a", Event("after"))
        (event,) = await reader.events(1)
    assert event.data == "after"  # no reset_event: nothing announced


async def test_explicit_last_event_id_wins_over_the_request() -> None:
    hub = Hub()
    a1 = await hub.publish("a", Event("a1"))
    await hub.publish("a", Event("a2"))
    mark = TopicsEventId(("a",), (a1.id,), 0).encode()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await EventStream.from_hub_topics(hub, ["a"], last_event_id=mark)(scope, receive, send)

    async with open_asgi_client(app) as client:
        (event,) = await read(client, "/", 1, {"last-event-id": "m1;00000000;0;;!"})
    assert event.data == "a2"


@pytest.mark.parametrize(
    ("query", "headers", "status", "reason"),
    [
        ("", {}, 400, "no topic"),
        ("?topic=a&topic=a", {}, 400, "duplicate topic"),
        ("?topic=a&topic=b%20c", {}, 400, "invalid topic"),
        ("?" + "&".join(f"topic=t{i}" for i in range(33)), {}, 400, "too many topics"),
        (
            "?" + "&".join(f"x={i}" for i in range(50)) + "&topic=a",
            {},
            400,
            "too many query parameters",
        ),
        ("?topic=a", {"last-event-id": "3f9a0c1e-42"}, 400, "malformed Last-Event-ID"),
        ("?topic=a", {"last-event-id": "m1;" + "x" * 3000}, 400, "Last-Event-ID too long"),
        ("?topic=a&topic=secret", {}, 404, "unknown topic"),
    ],
)
async def test_bad_requests_are_refused(
    query: str, headers: dict[str, str], status: int, reason: str
) -> None:
    hub = Hub()
    app = hub_topics_endpoint(hub, topics=["a", "b", "t1"])
    async with open_asgi_client(app) as client:
        response = await client.get(f"/sse{query}", headers=headers)
    assert (response.status_code, response.text) == (status, reason)
    assert hub.statistics().subscribers == 0


async def test_options_predicates_and_head() -> None:
    hub = Hub()
    app = hub_topics_endpoint(
        hub, topics=lambda name: name.startswith("ok."), query_param="t", retry=500, max_topics=2
    )
    async with open_asgi_client(app) as client:
        head = await client.head("/sse?t=ok.1&t=ok.2")
        refused = await client.get("/sse?t=ok.1&t=no")
        too_many = await client.get("/sse?t=ok.1&t=ok.2&t=ok.3")
        async with (
            client.stream("GET", "/sse?t=ok.1") as response,
            open_sse_reader(response) as reader,
        ):
            assert await reader.chunk() == b":\nretry: 500\n\n"
    assert (head.status_code, head.content) == (200, b"")
    assert refused.status_code == 404
    assert too_many.status_code == 400
    with pytest.raises(ValueError, match="max_topics"):
        hub_topics_endpoint(hub, max_topics=0)
    with pytest.raises(TypeError, match="not one string"):
        EventStream.from_hub_topics(hub, "abc")


async def test_a_topic_too_fast_for_the_reader_ends_the_stream_and_resume_recovers() -> None:
    hub = Hub()
    app = hub_topics_endpoint(hub, capacity=2)
    async with open_asgi_client(app, capacity=1) as client:
        async with client.stream("GET", URL) as response, open_sse_reader(response) as reader:
            await reader.chunk()
            first = await hub.publish("a", Event("first"))
            (event,) = await reader.events(1)
            for i in range(20):  # nobody reads: a's queue overflows, the stream ends
                await hub.publish("a", Event(str(i)))
            await trio.testing.wait_all_tasks_blocked()
            assert hub.statistics().disconnected == 1
            before_end = await reader.rest()  # what was already on its way; then the end
        last = (before_end[-1] if before_end else event).id or ""
        resumed = await read(client, URL, 20 - len(before_end), {"last-event-id": last})
    assert first.data == event.data
    assert [e.data for e in before_end + resumed] == [str(i) for i in range(20)]


async def test_a_closed_hub_ends_streams_and_refuses_new_ones() -> None:
    hub = Hub()
    async with open_asgi_client(hub_topics_endpoint(hub)) as client:
        async with client.stream("GET", URL) as response, open_sse_reader(response) as reader:
            await reader.chunk()
            await hub.publish("b", Event("last"))
            hub.close()
            assert [e.data for e in await reader.rest()] == ["last"]
        refused = await client.get(URL)
    assert refused.status_code == 503


class _FailingSubscriptions:
    """A Hub whose subscriptions fail after their first batch (a backplane breaking)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @asynccontextmanager
    async def subscribe(self, topic: str, **options: Any) -> AsyncIterator[Subscription]:
        async with self._hub.subscribe(topic, **options) as subscription:
            real = subscription.receive_batch

            async def receive_batch(max_events: int | None = None) -> list[Event]:
                batch = await real(max_events)
                subscription.receive_batch = broken  # type: ignore[method-assign]
                return batch

            async def broken(max_events: int | None = None) -> list[Event]:
                await trio.lowlevel.checkpoint()
                raise RuntimeError("backplane lost")

            subscription.receive_batch = receive_batch  # type: ignore[method-assign]
            yield subscription


async def test_a_failing_subscription_ends_the_stream_with_the_error_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub()
    app: ASGIApp = hub_topics_endpoint(cast(Hub, _FailingSubscriptions(hub)))
    async with (
        open_asgi_client(app) as client,
        client.stream("GET", "/sse?topic=a") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.chunk()
        await hub.publish("a", Event("one"))
        events = await reader.rest()
    assert [e.data for e in events] == ["one", DEFAULT_ERROR_EVENT.data]
    assert "backplane lost" not in "".join(e.data for e in events)
    assert "topic 'a' failed" in caplog.text


async def test_statistics_count_what_waits_in_every_topic() -> None:
    hub = Hub()
    streams: list[EventStream] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        streams.append(EventStream.from_hub_topics(hub, TOPICS, capacity=8))
        await streams[-1](scope, receive, send)

    async with (
        open_asgi_client(app, capacity=1) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.chunk()
        for topic in TOPICS:
            await hub.publish(topic, Event(topic))
        await reader.events(3)
        await trio.testing.wait_all_tasks_blocked()  # the writer saw its send return
        stats = streams[0].statistics()
    assert stats.capacity == 24
    assert stats.events == 3
