"""The reconnecting client against our server over real sockets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trustme
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from tests.websocket._ws_helpers import running_server
from trio_stream.core import Overflow, RetryBudgetExhausted
from trio_stream.protocol import Backoff, CloseCode
from trio_stream.websocket import (
    ClientSession,
    MsgPackCodec,
    WebSocketClosed,
    WebSocketPeer,
    WebSocketRejected,
    open_websocket_client,
    serve_websockets,
)

FAST = Backoff(initial=0.01, maximum=0.02)


async def echo(peer: WebSocketPeer) -> None:
    async for message in peer:
        await peer.send({"echo": message})


async def test_echo_hook_and_statistics() -> None:
    sessions: list[int] = []

    async def on_connect(session: ClientSession) -> None:
        sessions.append(session.index)
        await session.send({"hello": session.index})

    options = {"allowed_origins": ["https://app.example"]}
    async with running_server(echo, **options) as server:
        headers = {"Origin": "https://app.example"}
        async with open_websocket_client(
            server.url, on_connect=on_connect, headers=headers
        ) as client:
            assert client.connected
            await client.wait_connected()
            await client.send("hi")
            replies = []
            async for message in client:
                replies.append(message)
                if len(replies) == 2:
                    break
            assert replies == [{"echo": {"hello": 0}}, {"echo": "hi"}]
            stats = client.statistics()
            assert (stats.connected, stats.connections, stats.unsent) == (True, 1, 0)
            assert stats.outbox.delivered == 1
        assert sessions == [0]
        assert not client.connected


@asynccontextmanager
async def restartable(handler: Any) -> AsyncIterator[Any]:
    """A server whose ``stop()`` shuts it down and ``start()`` brings it back on its port."""

    class Control:
        port = 0
        scope = trio.CancelScope()
        stopped = trio.Event()

    async with trio.open_nursery() as nursery:

        async def run(task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114
            with Control.scope:
                async with trio.open_nursery() as inner:
                    server = await inner.start(
                        partial(
                            serve_websockets,
                            handler,
                            host="127.0.0.1",
                            port=Control.port,
                            close_timeout=1.0,
                        )
                    )
                    Control.port = server.port
                    task_status.started()
            Control.stopped.set()

        async def start() -> None:
            Control.scope, Control.stopped = trio.CancelScope(), trio.Event()
            await nursery.start(run)

        async def stop() -> None:
            Control.scope.cancel()
            await Control.stopped.wait()

        Control.start = start  # type: ignore[attr-defined]
        Control.stop = stop  # type: ignore[attr-defined]
        await start()
        yield Control
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("capacity", "overflow", "expected"),
    [(16, Overflow.BLOCK, [0, 1, 2, 3, 4]), (2, Overflow.DROP_OLDEST, [3, 4])],
    ids=["block", "drop-oldest"],
)
async def test_outbox_flushes_in_order_exactly_once_after_a_restart(
    capacity: int, overflow: Overflow, expected: list[int]
) -> None:
    received: list[Any] = []
    arrived = trio.Event()
    sessions: list[int] = []

    async def record(peer: WebSocketPeer) -> None:
        async for message in peer:
            received.append(message)
            if message == "before" or message == expected[-1]:
                arrived.set()

    async def on_connect(session: ClientSession) -> None:
        sessions.append(session.index)
        await trio.lowlevel.checkpoint()

    async with restartable(record) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        async with open_websocket_client(
            url,
            backoff=FAST,
            max_attempts=None,
            on_connect=on_connect,
            outbox_capacity=capacity,
            outbox_overflow=overflow,
        ) as client:
            await client.send("before")
            with trio.fail_after(10):
                await arrived.wait()
                arrived = trio.Event()
                await server.stop()
                await client.wait_disconnected()
            for n in range(5):
                await client.send(n)  # queued while the server is down
            assert client.statistics().outbox.dropped == 5 - len(expected)
            await server.start()
            with trio.fail_after(10):
                await arrived.wait()
                await client.wait_connected()
    assert received == ["before", *expected]
    assert sessions == [0, 1]


@pytest.mark.parametrize("code", [CloseCode.SLOW_CONSUMER, CloseCode.GOING_AWAY])
async def test_reconnects_after_a_reconnect_code_and_resubscribes(code: int) -> None:
    sessions: list[int] = []
    accepted: list[WebSocketPeer] = []

    async def handler(peer: WebSocketPeer) -> None:
        accepted.append(peer)
        if len(accepted) == 1:
            await peer.close(code, "come back")
        else:
            await echo(peer)

    async def on_connect(session: ClientSession) -> None:
        sessions.append(session.index)
        await session.send({"subscribe": "room"})

    async with (
        running_server(handler) as server,
        open_websocket_client(server.url, backoff=FAST, on_connect=on_connect) as client,
    ):
        with trio.fail_after(10):
            assert await client.__anext__() == {"echo": {"subscribe": "room"}}
        assert sessions == [0, 1]
        assert client.statistics().connections == 2


async def stay_connected(url: str) -> None:
    """Connect and wait for the client to stop (it raises out of the block)."""
    async with open_websocket_client(url, backoff=FAST):
        with trio.fail_after(10):
            await trio.sleep_forever()


async def test_a_do_not_reconnect_code_ends_the_client_with_a_typed_error() -> None:
    async def handler(peer: WebSocketPeer) -> None:
        await peer.close(CloseCode.POLICY_VIOLATION, "go away")

    async with running_server(handler) as server:
        with pytest.raises(WebSocketClosed) as info:  # not an ExceptionGroup
            await stay_connected(server.url)
        assert info.value.code == CloseCode.POLICY_VIOLATION


async def test_a_normal_close_ends_iteration_and_sends_fail() -> None:
    async def handler(peer: WebSocketPeer) -> None:
        await peer.send("last words")

    async with (
        running_server(handler) as server,
        open_websocket_client(server.url, backoff=FAST) as client,
    ):
        with trio.fail_after(10):
            assert [message async for message in client] == ["last words"]
            with pytest.raises(WebSocketClosed) as info:
                await client.send("anyone?")
            await client.wait_disconnected()
            with pytest.raises(WebSocketClosed):
                await client.wait_connected()
        assert info.value.code == CloseCode.NORMAL_CLOSURE


async def test_rejected_handshake_and_retry_budget() -> None:
    async def deny(request: object) -> None:
        await trio.lowlevel.checkpoint()

    async with running_server(echo, authenticate=deny) as server:
        with pytest.raises(WebSocketRejected) as rejected:
            async with open_websocket_client(server.url, backoff=FAST):
                pass  # pragma: no cover
        assert rejected.value.status_code == 401
    async with running_server(echo, max_connections=1) as server:
        async with open_websocket_client(server.url):  # takes the only place
            with pytest.raises(RetryBudgetExhausted) as exhausted:
                async with open_websocket_client(server.url, backoff=FAST, max_attempts=3):
                    pass  # pragma: no cover
        assert exhausted.value.attempts == 3
    with pytest.raises(RetryBudgetExhausted):  # nothing listens there any more
        async with open_websocket_client(server.url, backoff=FAST, max_attempts=2):
            pass  # pragma: no cover


async def test_errors_in_the_body_propagate_unwrapped() -> None:
    async with running_server(echo) as server:
        with pytest.raises(KeyError):
            async with open_websocket_client(server.url):
                raise KeyError("mine")


async def test_heartbeat_drops_a_dead_server_and_reconnects() -> None:
    connections: list[int] = []
    second = trio.Event()

    async def deaf_server(stream: trio.SocketStream) -> None:
        # Completes the handshake, then reads and ignores everything: no pongs.
        await trio.lowlevel.checkpoint()
        connections.append(1)
        if len(connections) == 2:
            second.set()
        ws = WSConnection(ConnectionType.SERVER)
        with contextlib.suppress(trio.BrokenResourceError):  # the client aborts: fine
            await deaf_loop(ws, stream)

    async def deaf_loop(ws: WSConnection, stream: trio.SocketStream) -> None:
        while data := await stream.receive_some():
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    await stream.send_all(ws.send(AcceptConnection()))

    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(
            partial(trio.serve_tcp, deaf_server, 0, host="127.0.0.1")
        )
        port = listener.socket.getsockname()[1]
        async with open_websocket_client(
            f"ws://127.0.0.1:{port}",
            backoff=FAST,
            heartbeat_interval=0.05,
            pong_timeout=0.1,
            close_timeout=0.1,
        ):
            with trio.fail_after(10):
                await second.wait()
        nursery.cancel_scope.cancel()


async def test_wss_with_a_private_ca() -> None:
    ca = trustme.CA()
    server_context = __import__("ssl").create_default_context(
        __import__("ssl").Purpose.CLIENT_AUTH
    )
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = __import__("ssl").create_default_context()
    ca.configure_trust(client_context)
    async with running_server(echo, ssl_context=server_context) as server:
        assert server.url.startswith("wss://")
        async with open_websocket_client(server.url, ssl_context=client_context) as client:
            await client.send("secret")
            with trio.fail_after(10):
                assert await client.__anext__() == {"echo": "secret"}


async def test_undecodable_server_messages_end_the_client_with_1007() -> None:
    async def binary_junk(peer: WebSocketPeer) -> None:
        await peer.send(b"\xff\xfe not utf-8 json")
        await peer.wait_closed()

    async with running_server(binary_junk, codec=MsgPackCodec()) as server:
        with pytest.raises(WebSocketClosed) as info:
            await stay_connected(server.url)
        assert info.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


async def test_leaving_the_block_flushes_the_outbox_first() -> None:
    received: list[Any] = []
    done = trio.Event()

    async def record(peer: WebSocketPeer) -> None:
        async for message in peer:
            received.append(message)
        done.set()

    async with running_server(record, rate_limit=None) as server:
        async with open_websocket_client(server.url) as client:
            for n in range(200):
                await client.send(n)  # returns once queued, long before it is sent
        with trio.fail_after(10):
            await done.wait()
    assert received == list(range(200))


async def test_a_url_function_is_asked_before_every_attempt() -> None:
    seen: list[str] = []

    async def hang_up(peer: WebSocketPeer) -> None:
        seen.append(peer.request.query.get("last_event_id", ""))
        await peer.send({"n": len(seen)})
        if len(seen) < 3:
            await peer.close(CloseCode.GOING_AWAY, "moving")  # the client reconnects

    async with running_server(hang_up) as server:
        last = ["none"]
        asked: list[str] = []

        def url() -> str:
            asked.append(last[0])
            return f"{server.url}?last_event_id={last[0]}"

        async with open_websocket_client(url, backoff=FAST) as client:
            async for message in client:
                last[0] = str(message["n"])
                if message["n"] == 3:
                    break
    assert seen == ["none", "1", "2"]
    assert asked == ["none", "1", "2"]


async def test_a_url_function_returning_a_bad_url_stops_the_client() -> None:
    async def hang_up(peer: WebSocketPeer) -> None:
        await peer.close(CloseCode.GOING_AWAY, "moving")  # the client reconnects

    async with running_server(hang_up) as server:
        urls = iter([server.url, "http://not-a-websocket"])

        async def follow() -> None:
            async with open_websocket_client(lambda: next(urls), backoff=FAST) as client:
                async for _ in client:  # pragma: no cover - the server sends nothing
                    pass

        with pytest.raises(ValueError, match="ws:// or wss://"):
            await follow()
