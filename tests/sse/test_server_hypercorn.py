"""EventStream on real Hypercorn and sockets: cleanup on disconnect, frozen readers, errors."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
import trio

from trio_stream.core import Hub
from trio_stream.protocol import Event
from trio_stream.sse import DEFAULT_ERROR_EVENT, EventStream, Route, Router, sse_response
from trio_stream.sse._asgi import Receive, Scope, Send
from trio_stream.testing import open_sse_reader, open_test_server

SAFETY = 15  # seconds: a bound on each test, never a wait for something to happen
BIG = "x" * 65536


def frozen_reader(port: int, path: str) -> socket.socket:
    """A client that sends a request and then never reads (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    return sock


async def test_disconnect_closes_the_subscription_and_leaves_nothing_behind() -> None:
    hub = Hub()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await sse_response(hub=hub, topic="news")(scope, receive, send)

    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            async with (
                httpx.AsyncClient() as client,
                client.stream("GET", server.url) as response,
                open_sse_reader(response) as reader,
            ):
                await reader.chunk()  # preamble: subscribed by now
                assert hub.statistics().subscribers == 1
                await hub.publish("news", Event("one"))
                assert [e.data for e in await reader.events(1)] == ["one"]
            await server.wait_idle()
            assert hub.statistics().subscribers == 0
            await server.wait_connections_closed()


async def test_disconnect_runs_the_producers_finally() -> None:
    steps: list[str] = []

    async def ticks(send_channel: trio.MemorySendChannel[Event]) -> None:
        try:
            for i in range(10_000):
                await send_channel.send(Event(str(i)))
                await trio.sleep(0.001)
        finally:
            steps.append("finally")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await EventStream(ticks)(scope, receive, send)

    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            async with (
                httpx.AsyncClient() as client,
                client.stream("GET", server.url) as response,
                open_sse_reader(response) as reader,
            ):
                await reader.events(3)
            await server.wait_idle()
            assert steps == ["finally"]
            assert server.requests_started == 1


async def test_frozen_reader_is_closed_by_send_timeout_others_keep_receiving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    frozen_done = trio.Event()

    async def flood(send_channel: trio.MemorySendChannel[Event]) -> None:
        try:
            for i in range(100_000):  # far more than any socket buffer holds
                await send_channel.send(Event(BIG, id=str(i)))
        finally:
            frozen_done.set()

    async def ticks(send_channel: trio.MemorySendChannel[Event]) -> None:
        for i in range(100_000):
            await send_channel.send(Event(str(i)))
            await trio.sleep(0.01)

    router = Router(
        [
            Route("/flood", lambda s, r, w: EventStream(flood, send_timeout=1.0)(s, r, w)),
            Route("/ticks", lambda s, r, w: EventStream(ticks, send_timeout=1.0)(s, r, w)),
        ]
    )
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(router, send_timeout=1.0) as server,
            httpx.AsyncClient() as client,
            client.stream("GET", f"{server.url}/ticks") as response,
            open_sse_reader(response) as reader,
        ):
            await reader.events(1)
            with frozen_reader(server.port, "/flood"):
                await frozen_done.wait()  # the flood's producer was cancelled
                await server.wait_in_flight(1)  # and its response ended
                before = len(reader.chunks)
                await reader.events(5)  # the healthy stream goes on
                assert len(reader.chunks) > before
    assert "client not reading" in caplog.text


async def test_slow_subscriber_is_disconnected_by_the_hub_others_keep_up() -> None:
    hub = Hub()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await sse_response(hub=hub, topic="firehose", capacity=4)(scope, receive, send)

    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app, send_timeout=SAFETY) as server,
            httpx.AsyncClient() as client,
            client.stream("GET", server.url) as response,
            open_sse_reader(response) as reader,
        ):
            await reader.chunk()
            with frozen_reader(server.port, "/"):
                # Bounded by fail_after: the frozen subscriber's queue overflows
                # once its socket buffers are full.
                while hub.statistics().disconnected == 0:
                    await hub.publish("firehose", Event(BIG))
                    await reader.events(1)  # the healthy reader keeps up
                await hub.publish("firehose", Event("after"))
                events = await reader.events(1)
                assert events[0].data == "after"
                assert hub.statistics().subscribers == 1


async def test_producer_error_reaches_one_client_and_not_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(send_channel: trio.MemorySendChannel[Event]) -> None:
        await send_channel.send(Event("ok"))
        raise KeyError("/etc/secret")

    async def fine(send_channel: trio.MemorySendChannel[Event]) -> None:
        for i in range(3):
            await send_channel.send(Event(str(i)))

    router = Router(
        [
            Route("/broken", lambda s, r, w: EventStream(broken)(s, r, w)),
            Route("/fine", lambda s, r, w: EventStream(fine)(s, r, w)),
        ]
    )
    with trio.fail_after(SAFETY):
        async with open_test_server(router) as server, httpx.AsyncClient() as client:
            bad = await client.get(f"{server.url}/broken")
            good = await client.get(f"{server.url}/fine")
    assert bad.status_code == 200
    assert bad.content.endswith(DEFAULT_ERROR_EVENT.encode())
    assert b"secret" not in bad.content
    assert good.content.endswith(b"data: 2\n\n")
    assert "SSE event producer failed" in caplog.text
