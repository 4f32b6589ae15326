"""open_event_source resuming: server retry, cuts through a fault proxy, a real Hub endpoint."""

from __future__ import annotations

import httpx
import trio
import trio.lowlevel

from trio_stream.core import Hub
from trio_stream.protocol import Backoff, Event
from trio_stream.sse import EventSourceStatistics, open_event_source, sse_response
from trio_stream.sse._asgi import Receive, Scope, Send, handle_lifespan
from trio_stream.testing import FaultProxy, open_test_server

SAFETY = 20  # seconds: a bound on each test, never a wait for something to happen


async def test_server_retry_sets_the_reconnection_delay() -> None:
    requests = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal requests
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        requests += 1
        status, body = (200, b"retry: 40\ndata: hello\n\n") if requests == 1 else (204, b"")
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    backoff = Backoff(initial=0.001, maximum=5.0, jitter=0.0)
    seen: list[EventSourceStatistics] = []
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, backoff=backoff, on_reconnect=seen.append) as source,
        ):
            assert [e.data async for e in source] == ["hello"]
    assert backoff.server_retry == 0.04
    (stats,) = seen
    assert stats.retry == 40
    assert stats.last_delay == 0.04  # jitter 0: exactly the server's delay


async def test_resumes_through_cuts_every_few_events_exactly_once_in_order() -> None:
    # The real endpoint (sse_response + Hub with history) behind a proxy that
    # cuts every connection after 1000 bytes: ~25 events per connection, and
    # most cuts land mid-event. Half the events are published before the
    # client connects (it starts after a marker event, so they are replayed
    # from history), half while it reads.
    total = 500
    hub = Hub()
    marker = await hub.publish("t", Event("marker"))
    assert marker.id is not None
    for i in range(total // 2):
        await hub.publish("t", Event(str(i)))

    async def publish_rest() -> None:
        await trio.lowlevel.checkpoint()
        for i in range(total // 2, total):
            await hub.publish("t", Event(str(i)))
            await trio.lowlevel.checkpoint()

    app = sse_response(hub=hub, topic="t")
    received: list[str] = []
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, trio.open_nursery() as nursery:
            proxy = FaultProxy("127.0.0.1", server.port, cut_after_bytes=1000)
            await nursery.start(proxy.serve)
            backoff = Backoff(initial=0.001, maximum=0.01)
            async with open_event_source(
                proxy.url(), last_event_id=marker.id, backoff=backoff, max_retries=3
            ) as source:
                async for event in source:
                    received.append(event.data)
                    if len(received) == 1:
                        nursery.start_soon(publish_rest)
                    if len(received) == total:
                        break
                stats = source.statistics()
            nursery.cancel_scope.cancel()
    assert received == [str(i) for i in range(total)]
    assert proxy.cuts >= 10
    assert stats.connections == proxy.connections
    assert stats.reconnects == stats.connections - 1
    assert source.last_event_id == stats.last_event_id != ""


async def test_a_stream_cut_mid_event_drops_the_partial_event_and_resumes() -> None:
    seen_ids: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        headers = dict(scope["headers"])
        seen_ids.append(headers.get(b"last-event-id", b"").decode() or None)
        if len(seen_ids) == 3:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        start = int(seen_ids[-1] or 0)
        body = b"id: %d\ndata: %d\n\nid: %d\ndata: par" % (start + 1, start + 1, start + 2)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"content-length", b"999")],
            }
        )
        # Fewer bytes than announced: the client sees the body end early
        # (httpx.RemoteProtocolError), a cut in the middle of an event.
        await send({"type": "http.response.body", "body": body})

    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            backoff = Backoff(initial=0.001, maximum=0.01)
            async with open_event_source(server.url, backoff=backoff) as source:
                data = [event.data async for event in source]
    assert data == ["1", "2"]  # never "par"
    assert seen_ids == [None, "1", "2"]
    assert isinstance(source.statistics().last_error, httpx.RemoteProtocolError)
