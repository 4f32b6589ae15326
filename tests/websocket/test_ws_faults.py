"""Faults: rude and broken peers, dead and frozen ones, and our own slow handler.

Real sockets where the fault is about TCP; in-memory streams with the
autojump clock where the fault is about time (heartbeats, send timeouts).
"""

from __future__ import annotations

import json
import logging
import socket

import pytest
import trio
import trio.lowlevel
import trio.testing
from trio_websocket import wrap_client_stream
from wsproto.events import AcceptConnection, CloseConnection, Ping, TextMessage

from tests.websocket._ws_helpers import RawClient, masked_frame, running_server
from tests.websocket.conftest import OpenRaw
from trio_stream.core import Overflow
from trio_stream.protocol import CloseCode
from trio_stream.websocket import WebSocketClosed, WebSocketPeer

LOGGER = "trio_stream.websocket"


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() and r.name == LOGGER for r in caplog.records)


class Recorder:
    """A handler that echoes and remembers every peer and how it ended."""

    def __init__(self) -> None:
        self.peers: list[WebSocketPeer] = []
        self.errors: list[WebSocketClosed] = []

    async def __call__(self, peer: WebSocketPeer) -> None:
        self.peers.append(peer)
        try:
            async for message in peer:
                await peer.send({"echo": message})
        except WebSocketClosed as exc:
            self.errors.append(exc)
            raise


async def accepted(open_raw: OpenRaw, port: int) -> RawClient:
    client = await open_raw(port)
    assert isinstance(await client.handshake(), AcceptConnection)
    return client


async def assert_echoes(client: RawClient, text: str = "ok") -> None:
    await client.send(TextMessage(data=json.dumps(text)))
    event = await client.next_event()
    assert isinstance(event, TextMessage)
    assert json.loads(event.data) == {"echo": text}


async def test_rude_tcp_reset_is_logged_and_contained(
    open_raw: OpenRaw, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    handler = Recorder()
    async with running_server(handler) as server:
        bystander = await accepted(open_raw, server.port)
        rude = await accepted(open_raw, server.port)
        await assert_echoes(rude)
        rude.reset()
        with trio.fail_after(5):
            await handler.peers[1].wait_closed()
        assert handler.peers[1].close_code == CloseCode.ABNORMAL_CLOSURE
        assert logged(caplog, "connection lost without a close frame")
        await assert_echoes(bystander)


async def test_close_in_the_middle_of_a_message(open_raw: OpenRaw) -> None:
    handler = Recorder()
    async with running_server(handler) as server:
        bystander = await accepted(open_raw, server.port)
        client = await accepted(open_raw, server.port)
        await client.send(TextMessage(data='"first half', message_finished=False))
        await client.aclose()  # the second half never comes
        with trio.fail_after(5):
            await handler.peers[1].wait_closed()
        assert handler.peers[1].statistics().messages_received == 0
        assert handler.peers[1].close_code == CloseCode.ABNORMAL_CLOSURE
        await assert_echoes(bystander)


async def test_ping_arriving_while_we_close_does_not_crash_the_server(
    open_raw: OpenRaw, caplog: pytest.LogCaptureFixture
) -> None:
    # trio-websocket #184: the reader answers a ping with a pong, which wsproto
    # refuses once our close frame is out (LOCAL_CLOSING) -> LocalProtocolError
    # in the reader task. With trio_websocket.serve_websocket that kills the
    # whole server; here it ends only that connection.
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def handler(peer: WebSocketPeer) -> None:
        if peer.request.path == "/bye":
            await peer.close(CloseCode.SLOW_CONSUMER, "bye")
        else:
            await Recorder()(peer)

    async with running_server(handler) as server:
        bystander = await accepted(open_raw, server.port)
        client = await open_raw(server.port)
        assert isinstance(await client.handshake("/bye"), AcceptConnection)
        event = await client.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == CloseCode.SLOW_CONSUMER
        await client.send_raw(masked_frame(0x9, b"ping!"))  # a ping instead of the close reply
        with trio.fail_after(5):
            await client.wait_eof()
            await trio.testing.wait_all_tasks_blocked()  # the server finished with it
        assert logged(caplog, "trio-websocket #184")
        await assert_echoes(bystander)
        again = await accepted(open_raw, server.port)
        await assert_echoes(again)


async def test_dead_peer_is_detected_within_interval_plus_timeout(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder()
    async with running_server(handler, heartbeat_interval=5.0, pong_timeout=3.0) as server:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_stream, server_stream)
            client = RawClient(client_stream)  # answers no ping: a dead peer
            assert isinstance(await client.handshake(), AcceptConnection)
            start = trio.current_time()
            pings = 0
            while (event := await client.next_event()) is not None:
                pings += isinstance(event, Ping)
                if isinstance(event, CloseConnection):
                    break
            detected = trio.current_time() - start
        assert pings == 1
        assert 5.0 <= detected <= 5.0 + 3.0
        assert handler.peers[0].close_code == CloseCode.HEARTBEAT_TIMEOUT
        assert logged(caplog, "no pong within 3s")


async def test_our_own_slow_handler_is_not_mistaken_for_a_dead_peer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()
    got: list[object] = []

    async def slow(peer: WebSocketPeer) -> None:
        await (
            release.wait()
        )  # the inbound queue (capacity 1) fills  # not reading: the connection stops reading too
        async for message in peer:
            got.append(message)
            await peer.send({"echo": message})

    options = {"heartbeat_interval": 1.0, "pong_timeout": 1.0, "inbound_capacity": 1}
    async with running_server(slow, **options) as server:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_stream, server_stream)
            # trio-websocket annotates SocketStream, but any trio Stream works.
            ws = await wrap_client_stream(nursery, client_stream, "t", "/")  # type: ignore[arg-type]
            for n in range(5):
                await ws.send_message(json.dumps(n))
            await trio.sleep(60)  # many heartbeat periods while the handler is stuck
            release.set()
            replies = [json.loads(await ws.get_message()) for _ in range(5)]
            assert replies == [{"echo": n} for n in range(5)]
            await trio.sleep(10)  # heartbeats work again once it reads
            (peer,) = server.peers
            assert not peer.closed
            nursery.cancel_scope.cancel()  # (a trio-websocket client's aclose could hit #184)
        assert got == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("overflow", "code", "log_text"),
    [
        (Overflow.DISCONNECT, CloseCode.SLOW_CONSUMER, "too slow (outbound queue full"),
        (Overflow.BLOCK, CloseCode.ABNORMAL_CLOSURE, "a send took over 2s"),
    ],
    ids=["disconnect", "block-then-send-timeout"],
)
async def test_a_peer_that_stops_reading(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    overflow: Overflow,
    code: int,
    log_text: str,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    outcome: dict[str, WebSocketClosed] = {}
    failed = trio.Event()

    async def producer(peer: WebSocketPeer) -> None:
        await trio.lowlevel.checkpoint()
        if peer.request.path == "/healthy":
            await Recorder()(peer)
            return
        try:
            for n in range(100):
                await peer.send({"n": n, "pad": "x" * 1000})
        except WebSocketClosed as exc:
            outcome["error"] = exc
            failed.set()

    options = {
        "outbound_capacity": 4,
        "outbound_overflow": overflow,
        "send_timeout": 2.0,
        "close_timeout": 1.0,
        "heartbeat_interval": None,
    }
    async with running_server(producer, **options) as server, trio.open_nursery() as nursery:
        # lockstep: no buffering at all, so a peer that stops reading stalls at once
        frozen_side, server_side = trio.testing.lockstep_stream_pair()
        nursery.start_soon(server.serve_stream, server_side)
        frozen = RawClient(frozen_side)
        assert isinstance(await frozen.handshake("/slow"), AcceptConnection)
        healthy_side, server_side2 = trio.testing.memory_stream_pair()
        nursery.start_soon(server.serve_stream, server_side2)
        healthy = RawClient(healthy_side)
        assert isinstance(await healthy.handshake("/healthy"), AcceptConnection)
        await assert_echoes(healthy, "before")
        with trio.fail_after(30):
            await failed.wait()
        await assert_echoes(healthy, "after")
        await healthy.send(CloseConnection(code=1000))
        nursery.cancel_scope.cancel()
    assert outcome["error"].code == code
    assert logged(caplog, log_text)


async def test_a_real_socket_peer_that_stops_reading(
    open_raw: OpenRaw, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    done = trio.Event()
    errors: list[WebSocketClosed] = []

    async def producer(peer: WebSocketPeer) -> None:
        await trio.lowlevel.checkpoint()
        if peer.request.path == "/healthy":
            await Recorder()(peer)
            return
        try:
            while True:
                await peer.send("x" * 65536)
                await trio.lowlevel.checkpoint()
        except WebSocketClosed as exc:
            errors.append(exc)
            done.set()

    async with running_server(producer, outbound_capacity=8) as server:
        healthy = await open_raw(server.port)
        assert isinstance(await healthy.handshake("/healthy"), AcceptConnection)
        frozen = await open_raw(server.port)
        assert isinstance(frozen.stream, trio.SocketStream)
        frozen.stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert isinstance(await frozen.handshake("/frozen"), AcceptConnection)
        with trio.fail_after(20):
            await done.wait()
        await assert_echoes(healthy)
    assert errors[0].code == CloseCode.SLOW_CONSUMER
    assert server.statistics().slow_consumers == 1
    assert logged(caplog, "too slow")


async def test_a_handler_that_ignores_the_close_is_cancelled_after_close_timeout(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    seen: list[object] = []

    async def stubborn(peer: WebSocketPeer) -> None:
        seen.append(await peer.receive())
        with pytest.raises(WebSocketClosed) as closed:
            await peer.receive()
        seen.append(closed.value.code)
        with pytest.raises(WebSocketClosed):
            await peer.send("anyone?")
        try:
            await trio.sleep_forever()  # forgets to return
        finally:
            seen.append(trio.current_time())

    async with running_server(stubborn, close_timeout=3.0) as server:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_stream, server_stream)
            client = RawClient(client_stream)
            assert isinstance(await client.handshake(), AcceptConnection)
            await client.send(TextMessage(data='"hello"'))
            await client.send(CloseConnection(code=1000))
            closed_at = trio.current_time()
            assert await client.close_code() == 1000
    assert seen[:2] == ["hello", 1000]
    assert closed_at + 3.0 <= seen[2] <= closed_at + 3.0 + 0.1  # type: ignore[operator]
    assert logged(caplog, "handler outlived the connection")


async def test_a_client_gone_during_the_handshake_checks_is_noticed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The reader sees the end before the connection is accepted: the peer must
    # still learn of it (its iteration ends), or it would wait forever.
    gone = trio.Event()
    ended: list[bool] = []

    async def authenticate(request: object) -> str:
        await gone.wait()
        return "late"

    async def handler(peer: WebSocketPeer) -> None:
        async for _ in peer:
            pass  # pragma: no cover - nothing arrives
        ended.append(peer.closed)

    async with running_server(handler, authenticate=authenticate) as server:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        with trio.fail_after(60):  # a safety bound (fake clock): a missed end hangs
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.serve_stream, server_stream)
                await client_stream.send_all(
                    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n"
                )
                await client_stream.send_eof()
                await trio.testing.wait_all_tasks_blocked()
                gone.set()
        assert ended == [True]
        assert server.statistics().open == 0
