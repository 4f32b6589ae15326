"""Scale out (issue #8): two ``trio-stream demo`` processes on one redis-server.

Everything is real: redis-server from PATH, two demo subprocesses on
127.0.0.1 port 0, httpx and trio-websocket clients, the library's
``open_event_source``. Waits are on events (printed URLs, SSE headers that
come only once subscribed, presence messages, resume ids); ``fail_after`` is
only a safety bound.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    wrap_client_stream,
)

from tests.brokers._demo_processes import DemoProcess, open_demos
from tests.brokers._redis_server import RedisServer
from trio_stream.brokers._redis_ids import RedisPosition, parse_event_id
from trio_stream.protocol import Backoff, Event
from trio_stream.sse import open_event_source
from trio_stream.testing import FaultProxy, SSEReader, open_sse_reader
from trio_stream.testing._groups import raise_single

pytestmark = pytest.mark.needs_redis

#: Seconds: a bound on each test's waits, never a wait for something to happen.
SAFETY = 60.0
TOPIC = "scale"
NUMBER = "num"  # the event type of the numbered events (presence events are skipped by type)

Received = tuple[str, str, str]  # (id, event type, data)


def _from_sse(event: Event) -> Received:
    return (event.id or "", event.event or "", event.data)


def _from_ws(message: dict[str, Any]) -> Received:
    return (message["id"], message["event"], message["data"])


def _position(event_id: str) -> RedisPosition:
    position = parse_event_id(event_id)
    assert position is not None, event_id
    return position


async def _publish(http: httpx.AsyncClient, demo: DemoProcess, data: str) -> str:
    """``POST /api/topics/{TOPIC}`` on ``demo``; the id it assigned."""
    response = await http.post(
        f"{demo.url}/api/topics/{TOPIC}", json={"data": data, "event": NUMBER}
    )
    assert response.status_code == 201, response.text
    event_id: str = response.json()["id"]
    return event_id


@asynccontextmanager
async def _sse(http: httpx.AsyncClient, demo: DemoProcess) -> AsyncIterator[SSEReader]:
    """``GET /sse/{TOPIC}``: the demo answers 200 only once it has subscribed."""
    async with http.stream("GET", f"{demo.url}/sse/{TOPIC}") as response:
        assert response.status_code == 200, response.status_code
        async with open_sse_reader(response) as reader:
            yield reader


@asynccontextmanager
async def _ws_owning_its_socket(
    demo: DemoProcess, resource: str
) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket connection whose TCP stream this helper closes, whatever happens.

    trio-websocket closes its stream only after a close handshake: when the
    server dies (TCP EOF without a close frame) it marks the connection closed
    and leaves the socket open (a ResourceWarning later). Owning the stream
    (``wrap_client_stream``) lets us close it for sure.
    """
    address = urlsplit(demo.ws_url)
    assert address.hostname is not None
    assert address.port is not None
    stream = await trio.open_tcp_stream(address.hostname, address.port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, address.hostname, resource)
            try:
                yield ws
            finally:
                await ws.aclose()  # a close handshake if the server is alive; else at once
    except BaseExceptionGroup as group:
        raise_single(group)
    finally:
        await trio.aclose_forcefully(stream)


async def _drain(ws: WebSocketConnection) -> None:
    """Read messages until the connection closes (bounded by the caller's fail_after)."""
    while True:
        await ws.get_message()


async def _until_joined(ws: WebSocketConnection, name: str) -> None:
    """Read until the presence event announcing ``name`` (the room subscribed it first)."""
    while True:  # bounded by the caller's fail_after
        message = json.loads(await ws.get_message())
        assert message["event"] == "presence", message
        if message["data"] and json.loads(message["data"]).get("joined") == name:
            return


async def test_events_published_on_either_demo_reach_sse_and_ws_readers_of_both(
    redis_server: RedisServer,
) -> None:
    """Two publishers (one per demo, at once) and four readers (SSE and WebSocket on
    each demo): every reader gets every event once, in Redis's order, with one id."""
    per_publisher = 15
    total = 2 * per_publisher
    published: dict[str, str] = {}  # id -> data
    received: dict[str, list[Received]] = {}

    async def publish_from(http: httpx.AsyncClient, demo: DemoProcess) -> None:
        # One publisher per instance, both at once: Redis decides the one order.
        await trio.lowlevel.checkpoint()
        for n in range(per_publisher):
            data = f"{demo.name}: {n}"
            published[await _publish(http, demo, data)] = data

    async def read_sse(label: str, reader: SSEReader) -> None:
        received[label] = [_from_sse(event) for event in await reader.events(total)]

    async def read_ws(label: str, ws: WebSocketConnection) -> None:
        messages = received[label] = []
        await trio.lowlevel.checkpoint()
        while len(messages) < total:
            messages.append(_from_ws(json.loads(await ws.get_message())))

    async with (
        open_demos(redis_server.url) as (one, two),
        httpx.AsyncClient(timeout=SAFETY) as http,
    ):
        # The deadline encloses the exit stack: its connections close inside it.
        with trio.fail_after(SAFETY):
            async with AsyncExitStack() as stack:
                # WebSocket visitors first: their presence events must come before any
                # reader's "everything from now on", or readers would see different streams.
                ws_one = await stack.enter_async_context(
                    _ws_owning_its_socket(one, f"/ws/{TOPIC}?name=ws-one")
                )
                await _until_joined(ws_one, "ws-one")
                ws_two = await stack.enter_async_context(
                    _ws_owning_its_socket(two, f"/ws/{TOPIC}?name=ws-two")
                )
                await _until_joined(ws_two, "ws-two")
                await _until_joined(ws_one, "ws-two")  # demo 2's presence, through Redis
                sse_one = await stack.enter_async_context(_sse(http, one))
                sse_two = await stack.enter_async_context(_sse(http, two))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read_sse, "sse one", sse_one)
                    nursery.start_soon(read_sse, "sse two", sse_two)
                    nursery.start_soon(read_ws, "ws one", ws_one)
                    nursery.start_soon(read_ws, "ws two", ws_two)
                    nursery.start_soon(publish_from, http, one)
                    nursery.start_soon(publish_from, http, two)

    assert len(published) == total
    in_redis_order = sorted(published, key=_position)
    expected = [(event_id, NUMBER, published[event_id]) for event_id in in_redis_order]
    assert set(received) == {"sse one", "sse two", "ws one", "ws two"}
    for label, events in received.items():
        assert events == expected, label
    for name in (one.name, two.name):  # each publisher's own order is kept
        own = [data for _, _, data in expected if data.startswith(f"{name}:")]
        assert own == [f"{name}: {n}" for n in range(per_publisher)]


async def test_readers_fail_over_to_the_other_demo_after_a_sigkill(
    redis_server: RedisServer,
) -> None:
    """An SSE reader (``open_event_source`` through a proxy, as behind a load
    balancer) and a WebSocket reader follow demo 1 while demo 2 publishes 1..40.

    After 10, demo 1 is SIGKILLed while 11 and 12 are being published; 13..25
    are published while both readers are cut off (the proxy refuses, the
    WebSocket reader waits), so they can only come from Redis history; 26..40
    are published while the readers resume on demo 2 from their last id. Each
    reader must end with exactly 1..40, in order, with the publisher's ids.
    """
    first, gap_end, count = 10, 25, 40
    ids: dict[int, str] = {}
    sse_got: list[tuple[str, str]] = []
    ws_got: list[tuple[str, str]] = []
    sse_connections: list[int] = []
    ws_urls: list[str] = []
    read_first = {"sse": trio.Event(), "ws": trio.Event()}
    one_dead, gap_published = trio.Event(), trio.Event()

    async def read_sse(url: str, marker: str) -> None:
        async with open_event_source(
            url, last_event_id=marker, backoff=Backoff(0.05, 0.5), max_retries=None
        ) as source:
            async for event in source:
                assert event.event != "reset", "the resume id was not recognised"
                if event.event == NUMBER:
                    sse_got.append((event.id or "", event.data))
                    if len(sse_got) == first:
                        read_first["sse"].set()
                    if len(sse_got) == count:
                        break
            sse_connections.append(source.statistics().connections)

    async def read_ws(marker: str) -> None:
        last_id = marker
        await trio.lowlevel.checkpoint()
        for demo in (one, two):  # one connection each: demo 1 until it dies, then demo 2
            if demo is two:
                await gap_published.wait()  # disconnected while the gap is published
            resource = f"/ws/{TOPIC}?name=reader&last_event_id={quote(last_id)}"
            ws_urls.append(demo.ws_url + resource)
            try:
                async with _ws_owning_its_socket(demo, resource) as ws:
                    while len(ws_got) < count:
                        message = json.loads(await ws.get_message())
                        assert message["event"] != "reset", "the resume id was not recognised"
                        last_id = message["id"]
                        if message["event"] == NUMBER:
                            ws_got.append((message["id"], message["data"]))
                            if len(ws_got) == first:
                                read_first["ws"].set()
                    return
            except ConnectionClosed:
                assert demo is one, "demo 2 closed the connection"

    async def publish(numbers: range) -> None:
        await trio.lowlevel.checkpoint()
        for n in numbers:
            if n == first + 3:
                await one_dead.wait()  # 11 and 12 race the kill; the rest come after it
            ids[n] = await _publish(http, two, str(n))
            if n == gap_end:
                gap_published.set()

    async with (
        open_demos(redis_server.url) as (one, two),
        httpx.AsyncClient(timeout=SAFETY) as http,
        trio.open_nursery() as background,
    ):
        with trio.fail_after(SAFETY):
            # The SSE reader reaches demo 1 through a proxy that can be pointed at
            # demo 2: what a load balancer does when an instance dies.
            proxy = FaultProxy("127.0.0.1", one.port)
            await background.start(proxy.serve)
            marker = await _publish(http, two, "marker")  # both readers resume after it
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_sse, proxy.url(path=f"/sse/{TOPIC}"), marker)
                nursery.start_soon(read_ws, marker)
                await publish(range(1, first + 1))
                for event in read_first.values():
                    await event.wait()
                proxy.target_port, proxy.refuse = two.port, True
                nursery.start_soon(publish, range(first + 1, count + 1))
                await one.kill()
                one_dead.set()
                await gap_published.wait()
                proxy.refuse = False  # now the readers may reach demo 2
            background.cancel_scope.cancel()

    expected = [(ids[n], str(n)) for n in range(1, count + 1)]
    assert sse_got == expected
    assert ws_got == expected
    assert sse_connections == [2]  # one stream from demo 1, one from demo 2
    assert len(ws_urls) == 2
    assert ws_urls[1].startswith(two.ws_url)


async def test_sigterm_with_readers_connected_ends_their_streams_cleanly(
    redis_server: RedisServer,
) -> None:
    """A Redis-backed demo stopped while an SSE and a WebSocket reader are connected:
    the SSE body ends, the WebSocket closes with 1001 (come back later), the process
    exits 0 without a traceback (the visitor's "left" presence races the broker's stop)."""
    async with (
        open_demos(redis_server.url, count=1) as (demo,),
        httpx.AsyncClient(timeout=SAFETY) as http,
    ):
        with trio.fail_after(SAFETY):
            async with (
                _ws_owning_its_socket(demo, f"/ws/{TOPIC}?name=stayer") as ws,
                _sse(http, demo) as reader,
            ):
                await _until_joined(ws, "stayer")
                await demo.terminate()
                rest = await reader.rest()
                with pytest.raises(ConnectionClosed) as closed:
                    await _drain(ws)
    assert closed.value.reason is not None
    assert closed.value.reason.code == 1001
    assert [event.event for event in rest if event.event != "presence"] == []
