"""FaultProxy: forwards bytes, and cuts, stalls, delays or refuses on demand."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio

from trio_stream.protocol import Event
from trio_stream.sse import EventStream
from trio_stream.sse._asgi import Receive, Scope, Send
from trio_stream.testing import FaultProxy, open_sse_reader, open_test_server

SAFETY = 10  # seconds: a bound on each test, never a wait for something to happen
PAYLOAD = bytes(range(256)) * 64  # 16 KiB


async def start_target(nursery: trio.Nursery, received: list[bytes]) -> int:
    """A TCP server that sends PAYLOAD, records what it receives, and waits for EOF."""

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.send_all(PAYLOAD)
            async for chunk in stream:
                received.append(bytes(chunk))

    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def read_until_eof(stream: trio.SocketStream) -> bytes:
    data = b""
    async for chunk in stream:
        data += chunk
    return data


async def test_forwards_both_ways_and_counts() -> None:
    received: list[bytes] = []
    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            target = await start_target(nursery, received)
            proxy = FaultProxy("127.0.0.1", target)
            port = await nursery.start(proxy.serve)
            assert proxy.url("http", "/x") == f"http://127.0.0.1:{port}/x"
            client = await trio.open_tcp_stream("127.0.0.1", port)
            async with client:
                await client.send_all(b"hello")
                data = b""
                while len(data) < len(PAYLOAD):
                    data += await client.receive_some()
                assert data == PAYLOAD
                assert proxy.open_connections == 1
            nursery.cancel_scope.cancel()
    assert b"".join(received) == b"hello"
    assert (proxy.connections, proxy.bytes_to_client, proxy.cuts) == (1, len(PAYLOAD), 0)


async def test_cut_after_bytes_delivers_exactly_that_many_then_closes() -> None:
    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            target = await start_target(nursery, [])
            proxy = FaultProxy("127.0.0.1", target, cut_after_bytes=1000)
            port = await nursery.start(proxy.serve)
            for _ in range(2):  # every connection is cut
                async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                    assert await read_until_eof(client) == PAYLOAD[:1000]
            assert proxy.cuts == 2
            nursery.cancel_scope.cancel()


async def test_cut_after_seconds_closes_the_connection() -> None:
    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            target = await start_target(nursery, [])
            proxy = FaultProxy("127.0.0.1", target, cut_after_seconds=0.05)
            port = await nursery.start(proxy.serve)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                assert await read_until_eof(client) == PAYLOAD
            assert proxy.cuts == 1
            nursery.cancel_scope.cancel()


async def test_stall_holds_data_until_released_and_delay_still_delivers() -> None:
    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            target = await start_target(nursery, [])
            proxy = FaultProxy("127.0.0.1", target, stalled=True, delay=0.001)
            port = await nursery.start(proxy.serve)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                with trio.move_on_after(0.1) as waited:  # absence can only be bounded
                    await client.receive_some()
                assert waited.cancelled_caught
                assert proxy.stalled
                proxy.stalled = False
                proxy.stalled = False  # idempotent
                data = b""
                while len(data) < len(PAYLOAD):
                    data += await client.receive_some()
                assert data == PAYLOAD
            proxy.stalled = True
            assert proxy.stalled
            nursery.cancel_scope.cancel()


async def test_refuse_closes_new_connections_and_a_dead_target_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            target = await start_target(nursery, [])
            proxy = FaultProxy("127.0.0.1", target, refuse=True)
            port = await nursery.start(proxy.serve)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                assert await read_until_eof(client) == b""
            proxy.refuse = False
            proxy.target_port = 1  # nothing listens there
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                assert await read_until_eof(client) == b""
            assert proxy.connections == 2
            nursery.cancel_scope.cancel()
    assert "refused" in caplog.text


async def test_sse_through_a_cutting_proxy_breaks_the_body_mid_stream() -> None:
    async def many(send_channel: trio.MemorySendChannel[Event]) -> None:
        for i in range(100):
            await send_channel.send(Event(f"event {i}", id=str(i)))
        await trio.sleep_forever()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await EventStream(many)(scope, receive, send)

    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, trio.open_nursery() as nursery:
            proxy = FaultProxy("127.0.0.1", server.port, cut_after_bytes=600)
            await nursery.start(proxy.serve)
            async with (
                httpx.AsyncClient() as client,
                client.stream("GET", proxy.url()) as response,
                open_sse_reader(response) as reader,
            ):
                with pytest.raises(httpx.RemoteProtocolError):
                    await reader.rest()
            await server.wait_idle()  # the server noticed and cleaned up
            nursery.cancel_scope.cancel()


async def test_a_target_that_closes_and_a_client_that_leaves() -> None:
    async def talker(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.send_all(b"bye")

    async def streamer(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                while True:  # bounded: the proxy drops the connection when the client goes
                    await stream.send_all(PAYLOAD)
            except trio.BrokenResourceError:
                pass

    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, talker, 0)
            proxy = FaultProxy("127.0.0.1", listeners[0].socket.getsockname()[1])
            port = await nursery.start(proxy.serve)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                assert await read_until_eof(client) == b"bye"
            listeners = await nursery.start(trio.serve_tcp, streamer, 0)
            proxy.target_port = listeners[0].socket.getsockname()[1]
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.receive_some()
            nursery.cancel_scope.cancel()
    assert proxy.connections == 2


async def test_cut_all_closes_every_open_connection_and_keeps_serving() -> None:
    received: list[bytes] = []
    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            target = await start_target(nursery, received)
            proxy = FaultProxy("127.0.0.1", target)
            port = await nursery.start(proxy.serve)
            clients = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(2)]
            for client in clients:
                data = b""
                while len(data) < len(PAYLOAD):
                    data += await client.receive_some()
            assert proxy.cut_all() == 2
            for client in clients:
                async with client:
                    assert await read_until_eof(client) == b""
            assert proxy.cuts == 2
            async with await trio.open_tcp_stream("127.0.0.1", port) as later:
                assert await later.receive_some() != b""  # new connections still work
            assert proxy.cut_all() in (0, 1)  # 1 if `later` is still closing
            nursery.cancel_scope.cancel()


async def test_lowering_cut_after_bytes_below_what_was_sent_cuts_at_once() -> None:
    async def target(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.send_all(PAYLOAD)
            await stream.receive_some()  # "more, please"
            await stream.send_all(PAYLOAD)
            await stream.receive_some()

    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, target, 0)
            proxy = FaultProxy("127.0.0.1", listeners[0].socket.getsockname()[1])
            port = await nursery.start(proxy.serve)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                data = b""
                while len(data) < len(PAYLOAD):
                    data += await client.receive_some()
                proxy.cut_after_bytes = 10  # already past it
                await client.send_all(b"more")
                assert await read_until_eof(client) == b""
            assert proxy.bytes_to_client == len(PAYLOAD)
            assert proxy.cuts == 1
            nursery.cancel_scope.cancel()
