"""What a request asks for: Last-Event-ID / last_event_id, bad values, Hub resume and reset."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio
import trio.testing

from trio_stream.core import Hub
from trio_stream.protocol import Event
from trio_stream.sse import (
    MAX_LAST_EVENT_ID_LENGTH,
    EventStream,
    RequestRejected,
    Route,
    Router,
    hub_endpoint,
    last_event_id_from,
)
from trio_stream.sse._asgi import Receive, Scope, Send
from trio_stream.testing import open_asgi_client, open_sse_reader, open_test_server

SAFETY = 10  # seconds: a bound on each test, never a wait for something to happen


def scope_with(headers: list[tuple[bytes, bytes]] = (), query: bytes = b"") -> Scope:  # type: ignore[assignment]
    return {"type": "http", "headers": list(headers), "query_string": query}


def test_last_event_id_comes_from_the_header_then_the_query() -> None:
    assert last_event_id_from(scope_with()) is None
    assert last_event_id_from(scope_with([(b"last-event-id", b" 42 ")])) == "42"
    assert last_event_id_from(scope_with(query=b"last_event_id=7&x=1")) == "7"
    assert last_event_id_from(scope_with(query=b"other=1&last_event_idx=2")) is None
    header_wins = scope_with([(b"last-event-id", b"h")], query=b"last_event_id=q")
    assert last_event_id_from(header_wins) == "h"
    assert last_event_id_from(scope_with([(b"last-event-id", b"")])) is None
    assert last_event_id_from(scope_with(query=b"last_event_id=")) is None


@pytest.mark.parametrize(
    ("headers", "query", "reason"),
    [
        ([(b"last-event-id", b"x" * (MAX_LAST_EVENT_ID_LENGTH + 1))], b"", "too long"),
        ([(b"last-event-id", "é".encode("latin-1"))], b"", "invalid characters"),
        ([(b"last-event-id", b"a\x01b")], b"", "invalid characters"),
        ([], b"last_event_id=%0A", "invalid characters"),
        ([], b"last_event_id=" + b"&a" * 40, "malformed query"),
    ],
)
def test_malformed_last_event_ids_are_rejected(
    headers: list[tuple[bytes, bytes]], query: bytes, reason: str
) -> None:
    with pytest.raises(RequestRejected, match=reason) as caught:
        last_event_id_from(scope_with(headers, query))
    assert caught.value.status == 400


async def test_malformed_last_event_id_gets_400_others_unaffected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def one(send_channel: trio.MemorySendChannel[Event]) -> None:
        await send_channel.send(Event("fine"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await EventStream(one)(scope, receive, send)

    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as client:
            bad = await client.get(server.url, headers={"Last-Event-ID": "x" * 300})
            good = await client.get(server.url)
    assert (bad.status_code, bad.text) == (400, "Last-Event-ID too long")
    assert bad.headers["content-type"] == "text/plain; charset=utf-8"
    assert good.status_code == 200
    assert good.content.endswith(b"data: fine\n\n")
    record = next(r for r in caplog.records if "rejected" in r.getMessage())
    assert record.name == "trio_stream.sse"
    assert record.levelno == logging.WARNING


async def test_the_stream_sees_the_clients_last_event_id() -> None:
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        stream: EventStream

        async def producer(send_channel: trio.MemorySendChannel[Event]) -> None:
            await trio.lowlevel.checkpoint()
            seen.append(stream.last_event_id)

        stream = EventStream(producer)
        await stream(scope, receive, send)

    async with open_asgi_client(app) as client:
        await client.get("/", headers={"Last-Event-ID": "abc"})
        await client.get("/?last_event_id=def")
    assert seen == ["abc", "def"]


async def test_hub_topic_resumes_after_last_event_id_and_resets_when_unknown() -> None:
    hub = Hub()
    published = [await hub.publish("feed", Event(f"e{i}")) for i in range(3)]
    reset = Event("reload", event="reset")
    router = Router([Route("/sse/{topic}", hub_endpoint(hub, reset_event=reset))])
    async with open_asgi_client(router) as client:
        url = f"/sse/feed?last_event_id={published[0].id}"
        async with client.stream("GET", url) as response, open_sse_reader(response) as reader:
            events = await reader.events(2)
        assert [(e.data, e.id) for e in events] == [(p.data, p.id) for p in published[1:]]
        headers = {"Last-Event-ID": "unknown-epoch-1"}
        async with (
            client.stream("GET", "/sse/feed", headers=headers) as response,
            open_sse_reader(response) as reader,
        ):
            (first,) = await reader.events(1)
            assert (first.event, first.data) == ("reset", "reload")
            await hub.publish("feed", Event("live"))
            (live,) = await reader.events(1)
            assert live.data == "live"


async def test_hub_close_ends_streams_and_refuses_new_ones() -> None:
    hub = Hub()
    app = hub_endpoint(hub)
    router = Router([Route("/sse/{topic}", app)])
    async with open_asgi_client(router) as client:
        async with client.stream("GET", "/sse/t") as response, open_sse_reader(response) as reader:
            await reader.chunk()
            hub.close()
            assert await reader.rest() == []
            assert reader.ended
        refused = await client.get("/sse/t")
    assert (refused.status_code, refused.text) == (503, "server shutting down")


async def test_from_hub_with_an_invalid_topic_is_400() -> None:
    hub = Hub()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await EventStream.from_hub(hub, "bad topic")(scope, receive, send)

    async with open_asgi_client(app) as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (400, "invalid topic")


async def test_a_subscriber_too_slow_for_the_hub_just_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hub = Hub()
    router = Router([Route("/sse/{topic}", hub_endpoint(hub, capacity=2))])
    async with (
        open_asgi_client(router, capacity=1) as client,
        client.stream("GET", "/sse/fast") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.chunk()  # subscribed
        for i in range(10):  # the reader is not reading: its queue overflows
            await hub.publish("fast", Event(str(i)))
        assert hub.statistics().disconnected == 1
        events = await reader.rest()  # what was in flight, then a clean end
        assert reader.ended
        assert len(events) < 10
    assert "too slow" in caplog.text


async def test_statistics_of_a_hub_stream() -> None:
    hub = Hub()
    stream = EventStream.from_hub(hub, "stats", capacity=16)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await stream(scope, receive, send)

    async with (
        open_asgi_client(app) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.chunk()
        await hub.publish("stats", Event("one"))
        await reader.events(1)
        await trio.testing.wait_all_tasks_blocked()
        stats = stream.statistics()
        assert (stats.events, stats.queued, stats.capacity, stats.streaming) == (1, 0, 16, True)
