"""Third-party clients (curl -N, httpx-sse) read the same events from our server."""

from __future__ import annotations

import shutil

import httpx
import pytest
import trio
from httpx_sse import aconnect_sse

from trio_stream.core import Hub
from trio_stream.protocol import Event, SSEDecoder
from trio_stream.sse import EventStream, Route, Router, hub_endpoint
from trio_stream.sse._asgi import Receive, Scope, Send
from trio_stream.testing import open_test_server

SAFETY = 10  # seconds: a bound on each test, never a wait for something to happen

EVENTS = [
    Event("plain", id="1"),
    Event("two\nlines", event="multi", id="2"),
    Event.json({"ünï": "cödé", "n": 3}, event="json", id="3"),
    Event("", id="4"),
]


async def fixed(send_channel: trio.MemorySendChannel[Event]) -> None:
    async with send_channel:
        for event in EVENTS:
            await send_channel.send(event)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await EventStream(fixed, retry=3000)(scope, receive, send)


async def app_without_retry(scope: Scope, receive: Receive, send: Send) -> None:
    # httpx-sse (unlike browsers and the spec) turns a retry-only block into an event.
    await EventStream(fixed)(scope, receive, send)


EXPECTED = [(e.event or "message", e.data, e.id or "") for e in EVENTS]


async def test_curl_reads_the_events() -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not found on PATH")
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            done = await trio.run_process(
                [curl, "-N", "-s", "--max-time", str(SAFETY), server.url],
                capture_stdout=True,
            )
    decoder = SSEDecoder()
    events = decoder.feed(done.stdout)
    assert [(e.event or "", e.data, e.id or "") for e in events] == EXPECTED
    assert decoder.retry == 3000


async def test_httpx_sse_reads_the_events() -> None:
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app_without_retry) as server,
            httpx.AsyncClient() as client,
            aconnect_sse(client, "GET", server.url) as source,
        ):
            seen = [(sse.event, sse.data, sse.id) async for sse in source.aiter_sse()]
    assert seen == EXPECTED


async def test_httpx_sse_resumes_a_hub_topic_with_last_event_id() -> None:
    hub = Hub()
    published = [await hub.publish("room", Event(f"m{i}")) for i in range(4)]
    router = Router([Route("/sse/{topic}", hub_endpoint(hub))])
    with trio.fail_after(SAFETY):
        async with open_test_server(router) as server, httpx.AsyncClient() as client:
            headers = {"Last-Event-ID": published[1].id or ""}
            url = f"{server.url}/sse/room"
            async with aconnect_sse(client, "GET", url, headers=headers) as source:
                seen = []
                async for sse in source.aiter_sse():
                    seen.append((sse.data, sse.id))
                    if len(seen) == 2:
                        hub.close()  # ends the stream normally: iteration finishes
    assert seen == [("m2", published[2].id), ("m3", published[3].id)]
