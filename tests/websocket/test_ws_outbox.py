"""The server's write path in isolation: frame bytes, the outbox over real sockets, the wheel.

The outbox is driven directly here, over a real socket pair, for the byte-level
cases that a whole server cannot force deterministically (partial writes that
split a frame, a write to a peer that is gone); the server-level behaviour is
in test_ws_fanout.py.
"""

from __future__ import annotations

import socket
from functools import partial

import pytest
import trio
import trio.testing
from trio_websocket import WebSocketConnection
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import BytesMessage, Event, Ping, TextMessage

from trio_stream.core import Overflow
from trio_stream.websocket import _inlet
from trio_stream.websocket._frames import wire_frame
from trio_stream.websocket._heartbeat import HeartbeatWheel
from trio_stream.websocket._outbox import Outbox, Tally


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_wire_frames_are_what_wsproto_writes(size: int) -> None:
    text, data = "é" * (size // 2) + "x" * (size % 2), b"\x00" * size
    server = Connection(ConnectionType.SERVER)
    assert wire_frame(text) == server.send(TextMessage(data=text))
    assert wire_frame(data) == server.send(BytesMessage(data=data))
    with pytest.raises(UnicodeEncodeError):
        wire_frame("\ud800")


def socket_pair(buffer: int = 4096) -> tuple[trio.SocketStream, trio.socket.SocketType]:
    """A server-side SocketStream with a small send buffer, and its peer socket."""
    ours, theirs = trio.socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    return trio.SocketStream(ours), theirs


def opened(outbox: Outbox, stream: trio.abc.Stream) -> Outbox:
    """Mark ``outbox`` as serving an open WebSocket (a real, idle trio-websocket object)."""
    outbox.ws = WebSocketConnection(stream, WSConnection(ConnectionType.SERVER))
    return outbox


async def read_all(sock: trio.socket.SocketType, size: int) -> bytes:
    await trio.lowlevel.checkpoint()
    data = b""
    while len(data) < size:
        chunk = await sock.recv(65536)
        assert chunk
        data += chunk
    return data


async def read_events(sock: trio.socket.SocketType, count: int) -> list[Event]:
    """Parse what the server side wrote, as a client would (any corruption raises).

    Text messages come whole (wsproto yields the parts of a message as they arrive).
    """
    await trio.lowlevel.checkpoint()
    client, text = Connection(ConnectionType.CLIENT), ""
    events: list[Event] = []
    while len(events) < count:
        chunk = await sock.recv(65536)
        assert chunk
        client.receive_data(chunk)
        for event in client.events():
            if isinstance(event, TextMessage):
                text += event.data
                if event.message_finished:
                    events.append(TextMessage(data=text))
                    text = ""
            else:
                events.append(event)
    return events


PING = b"\x89\x00"  # a ping without payload, as trio-websocket would write it


async def test_a_batch_split_by_a_full_socket_arrives_whole_and_in_order() -> None:
    stream, peer = socket_pair()
    texts = [f"{n}:" + "x" * 3000 for n in range(30)]
    frames = [wire_frame(text) for text in texts]
    owner = Tally()
    async with trio.open_nursery() as nursery:
        outbox = opened(Outbox(stream, nursery, capacity=100, overflow=Overflow.BLOCK,
                               send_timeout=10), stream)  # fmt: skip
        assert outbox.offer_batch(frames[:20], b"".join(frames[:20]), owner)
        at_once = outbox.sent
        assert at_once < 20
        assert owner.pending == outbox.frames == 20 - at_once
        assert outbox.drop_oldest(owner)  # a whole frame not started yet, never the split one
        for frame in frames[20:]:
            assert outbox.offer(frame)
        nursery.start_soon(outbox.send_all, PING)  # trio-websocket's bytes queue behind
        with trio.fail_after(10):
            events = await read_events(peer, 30)
        got = [event.data for event in events if isinstance(event, TextMessage)]
        (missing,) = [text for text in texts if text not in got]
        assert texts.index(missing) in (at_once, at_once + 1)
        assert got == [text for text in texts if text != missing]
        assert isinstance(events[-1], Ping)
        assert (outbox.sent, outbox.dropped, owner.pending) == (29, 1, 0)
        stats = outbox.statistics()
        assert (stats.depth, stats.closed, stats.peak > 0) == (0, False, True)
        await outbox.aclose()
        assert not outbox.offer(frames[0])
        with pytest.raises(trio.ClosedResourceError):
            await outbox.send_all(b"late")
    peer.close()


async def test_discard_keeps_what_the_close_frame_needs() -> None:
    stream, peer = socket_pair()
    big = wire_frame("y" * 200_000)
    async with trio.open_nursery() as nursery:
        outbox = opened(Outbox(stream, nursery, capacity=10, overflow=Overflow.DISCONNECT,
                               send_timeout=10), stream)  # fmt: skip
        assert outbox.offer(big)  # partly written: the rest must still go
        small = wire_frame("z")
        assert outbox.offer(small)
        assert outbox.offer(small)
        outbox.discard()
        assert not outbox.offer(small)  # refused from now on
        nursery.start_soon(outbox.send_all, b"\x88\x02\x0f\xa0")  # close frame 4000
        with trio.fail_after(10):
            got = await read_all(peer, len(big) + 4)
        assert got == big + b"\x88\x02\x0f\xa0"
        assert outbox.statistics().closed
        await outbox.aclose()
    peer.close()


async def test_writing_to_a_vanished_peer_closes_the_outbox() -> None:
    stream, peer = socket_pair()
    async with trio.open_nursery() as nursery:
        outbox = opened(Outbox(stream, nursery, capacity=4, overflow=Overflow.BLOCK,
                               send_timeout=10), stream)  # fmt: skip
        peer.close()
        assert not outbox.offer(wire_frame("x"))
        assert stream.socket.fileno() == -1
        with pytest.raises(trio.ClosedResourceError):
            await outbox.send_all(b"x")
        await outbox.wait_for_room()  # returns at once once closed


async def test_a_stalled_drain_closes_the_transport(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream, peer = socket_pair()
    async with trio.open_nursery() as nursery:
        outbox = opened(Outbox(stream, nursery, capacity=4, overflow=Overflow.BLOCK,
                               send_timeout=5), stream)  # fmt: skip
        start = trio.current_time()
        assert outbox.offer(wire_frame("w" * 500_000))  # more than the socket takes
        with pytest.raises(trio.BrokenResourceError):
            await outbox.send_all(b"\x89\x00")  # waits behind it, then the stall closes all
        assert trio.current_time() - start >= 5
        assert stream.socket.fileno() == -1
    peer.close()


async def test_in_memory_streams_go_through_the_drain_task() -> None:
    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        outbox = opened(Outbox(left, nursery, capacity=4, overflow=Overflow.BLOCK,
                               send_timeout=5), left)  # fmt: skip
        frames = [wire_frame(str(n)) for n in range(3)]
        assert outbox.offer_batch(frames, b"".join(frames), Tally())
        await outbox.send_all(b"\x89\x00")
        assert await right.receive_some() == b"".join(frames) + b"\x89\x00"
        await outbox.wait_send_all_might_not_block()
        await right.send_all(b"in")
        assert await outbox.receive_some() == b"in"
        await outbox.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await outbox.send_all(b"x")


async def test_the_heartbeat_wheel(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(ValueError, match="positive"):
        HeartbeatWheel(0)
    wheel = HeartbeatWheel(1.0)
    beats: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(wheel.run)
        await trio.sleep(5)  # idle: nothing registered
        slots = [wheel.add(partial(beats.append, n)) for n in range(300)]
        await trio.sleep(1.5)
        assert sorted(beats) == list(range(300))  # all due together, in batches
        slots[0].clear()
        await trio.sleep(1)
        assert len(beats) == 599
        assert beats.count(0) == 1
        assert len(wheel) == 299
        nursery.cancel_scope.cancel()


def test_inline_support_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _inlet.inline_supported()
    detect = _inlet.inline_supported.__wrapped__
    monkeypatch.setattr(_inlet, "_CHANNELS", ("_no_such_channel",))
    assert not detect()
    monkeypatch.setattr(_inlet, "_METHODS", ("_no_such_method",))
    assert not detect()
