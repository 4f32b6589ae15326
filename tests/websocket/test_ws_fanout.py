"""Rooms and outbound policies through the whole server: what each member receives.

Members that stop reading are played by clients on lockstep streams (no
buffering at all); the autojump clock keeps these in-memory tests instant.
Real sockets where the point is TCP: frames split by a full socket buffer.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from wsproto.events import AcceptConnection, CloseConnection, Ping, Pong, TextMessage

from tests.websocket._ws_helpers import RawClient, running_server
from tests.websocket.conftest import OpenRaw
from trio_stream.core import Hub, HubClosedError, Overflow
from trio_stream.protocol import CloseCode, Event
from trio_stream.websocket import JsonCodec, WebSocketClosed, WebSocketPeer, WebSocketServer

QUIET = {"heartbeat_interval": None, "send_timeout": 1000.0}


@asynccontextmanager
async def in_memory(
    server: WebSocketServer, path: str = "/", *, lockstep: bool = False
) -> AsyncIterator[RawClient]:
    """A RawClient served through ``server.serve_stream``, accepted; closed after the block."""
    pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
    client_side, server_side = pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        client = RawClient(client_side)
        assert isinstance(await client.handshake(path), AcceptConnection)
        yield client
        nursery.cancel_scope.cancel()


def decoded(event: TextMessage) -> Any:
    """A message's value; a room event (``{"id", "event", "data"}``) becomes its data."""
    message = json.loads(event.data)
    if isinstance(message, dict) and message.keys() == {"id", "event", "data"}:
        return json.loads(message["data"])
    return message


async def whole(client: RawClient) -> TextMessage | CloseConnection:
    """The next whole text message (wsproto yields big ones in parts), or the close."""
    await trio.lowlevel.checkpoint()
    text = ""
    while True:
        event = await client.next_event()
        if isinstance(event, CloseConnection):
            return event
        assert isinstance(event, TextMessage), event
        text += event.data
        if event.message_finished:
            return TextMessage(data=text)


async def texts(client: RawClient, count: int) -> list[Any]:
    """The next ``count`` messages, decoded."""
    await trio.lowlevel.checkpoint()
    got: list[Any] = []
    while len(got) < count:
        event = await whole(client)
        assert isinstance(event, TextMessage), event
        got.append(decoded(event))
    return got


async def until_close(client: RawClient) -> list[Any]:
    """Every message up to the server's close frame (answered), decoded."""
    got: list[Any] = []
    while not isinstance(event := await whole(client), CloseConnection):
        got.append(decoded(event))
    await client.send(event.response())
    return got


def joiner(
    hub: Hub, expect: int = 1, **subscribe: Any
) -> tuple[Callable[[WebSocketPeer], Any], trio.Event]:
    """A handler joining topic "t" ("/resume/<id>" resumes), then waiting for the close.

    The event is set once ``expect`` connections have joined.
    """
    joined, count = trio.Event(), [0]

    async def handler(peer: WebSocketPeer) -> None:
        last = (
            peer.request.path.removeprefix("/resume/") if "resume" in peer.request.path else None
        )
        await peer.subscribe("t", last_event_id=last, **subscribe)
        count[0] += 1
        if count[0] == expect:
            joined.set()
        await peer.wait_closed()

    return handler, joined


def kept_by(overflow: Overflow, got: list[int], sent: int, capacity: int) -> bool:
    """Whether ``got`` is what ``overflow`` keeps of 0..sent-1 for a reader that stalled.

    What was being written when the reader stalled arrives too (one chunk, at
    most ``capacity`` messages); of the rest, the policy decides.
    """
    if overflow is Overflow.BLOCK:
        return got == list(range(sent))
    if got != sorted(got) or not capacity <= len(got) <= 2 * capacity + 1:
        return False
    if overflow is Overflow.DROP_NEWEST:
        return got == list(range(len(got)))  # the oldest
    return got[-1] == sent - 1  # DROP_OLDEST: the newest


async def close_from_server(server: WebSocketServer, client: RawClient) -> list[Any]:
    """Close the only connection from the server side; what the client read before the close."""
    (peer,) = server.peers
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer.close)
        got = await until_close(client)
    return got


@pytest.mark.parametrize("overflow", [Overflow.DROP_NEWEST, Overflow.DROP_OLDEST, Overflow.BLOCK])
async def test_a_members_policy_applies_to_its_topic(
    autojump_clock: trio.testing.MockClock, overflow: Overflow
) -> None:
    hub = Hub()
    handler, joined = joiner(hub, capacity=2, overflow=overflow)
    async with (
        running_server(handler, hub=hub, **QUIET) as server,
        in_memory(server, lockstep=True) as client,
    ):
        await joined.wait()
        for n in range(10):
            await hub.publish("t", Event(json.dumps(n)))
        await trio.testing.wait_all_tasks_blocked()
        (peer,) = server.peers
        if overflow is Overflow.BLOCK:  # the room waits for this reader: all arrive
            got = await texts(client, 10)
        else:
            got = await close_from_server(server, client)
        dropped = peer.statistics().outbound.dropped
    assert kept_by(overflow, got, 10, 2), got
    assert dropped == 10 - len(got)


@pytest.mark.parametrize("overflow", [Overflow.DROP_NEWEST, Overflow.DROP_OLDEST])
async def test_the_outbound_policy_applies_to_what_the_handler_sends(
    autojump_clock: trio.testing.MockClock, overflow: Overflow
) -> None:
    async def burst(peer: WebSocketPeer) -> None:
        for n in range(10):
            await peer.send(n)

    options = {**QUIET, "outbound_capacity": 2, "outbound_overflow": overflow}
    async with (
        running_server(burst, **options) as server,
        in_memory(server, lockstep=True) as client,
    ):
        await trio.testing.wait_all_tasks_blocked()
        got = await until_close(client)  # the handler returned: a close frame follows
    assert kept_by(overflow, got, 10, 2), got


async def test_frames_split_by_full_sockets_arrive_whole(open_raw: OpenRaw) -> None:
    hub, big = Hub(), "x" * 30_000
    handler, joined = joiner(hub, 2, capacity=64, overflow=Overflow.BLOCK)
    async with running_server(handler, hub=hub, outbound_overflow=Overflow.BLOCK) as server:
        clients = []
        for _ in range(2):
            client = await open_raw(server.port)
            assert isinstance(client.stream, trio.SocketStream)
            client.stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            assert isinstance(await client.handshake("/"), AcceptConnection)
            clients.append(client)
        with trio.fail_after(20):
            await joined.wait()
            assert server.subscribers("t") == 2
            for n in range(10):  # a burst: the room takes them in batches
                await hub.publish("t", Event(json.dumps([n, big])))
            got: list[list[int]] = []

            async def read(client: RawClient) -> None:  # both at once: the room waits for each
                got.append([item[0] for item in await texts(client, 10)])

            async with trio.open_nursery() as nursery:
                for client in clients:
                    nursery.start_soon(read, client)
            assert got == [list(range(10))] * 2


async def test_control_frames_wait_their_turn_behind_queued_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def burst(peer: WebSocketPeer) -> None:
        for n in range(5):
            await peer.send(n)
        await peer.wait_closed()

    async with (
        running_server(burst, **QUIET) as server,
        in_memory(server, lockstep=True) as client,
    ):
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send, Ping(payload=b"hi"))
            assert await texts(client, 5) == [0, 1, 2, 3, 4]
        assert await client.next_event() == Pong(payload=b"hi")


async def test_resuming_while_events_keep_coming_loses_and_repeats_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    first = await hub.publish("t", Event(json.dumps(0)))
    for n in range(1, 300):
        await hub.publish("t", Event(json.dumps(n)))
    handler, joined = joiner(hub)
    async with running_server(handler, hub=hub, **QUIET) as server, trio.open_nursery() as nursery:

        async def keep_publishing() -> None:
            for n in range(300, 400):
                await hub.publish("t", Event(json.dumps(n)))

        nursery.start_soon(keep_publishing)  # also while the replay is being queued
        async with in_memory(server, f"/resume/{first.id}") as client:
            assert await texts(client, 399) == list(range(1, 400))
            assert joined.is_set()


async def test_a_member_that_falls_behind_during_its_replay_is_closed(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    hub = Hub()
    first = await hub.publish("t", Event("0"))
    for n in range(1, 20):
        await hub.publish("t", Event(str(n)))
    handler, _ = joiner(hub, capacity=2)
    options = {**QUIET, "outbound_capacity": 1, "outbound_overflow": Overflow.BLOCK}
    async with (
        running_server(handler, hub=hub, **options) as server,
        trio.open_nursery() as nursery,
    ):

        async def keep_publishing() -> None:
            for n in range(20, 30):
                await hub.publish("t", Event(str(n)))

        async with in_memory(server, f"/resume/{first.id}", lockstep=True) as client:
            await trio.testing.wait_all_tasks_blocked()  # the replay waits for this reader
            nursery.start_soon(keep_publishing)
            await trio.testing.wait_all_tasks_blocked()
            assert await client.close_code() == CloseCode.SLOW_CONSUMER
    assert any("while resuming" in r.getMessage() for r in caplog.records)


async def test_more_members_than_one_step_serves(autojump_clock: trio.testing.MockClock) -> None:
    hub = Hub()
    handler, joined = joiner(hub, 70)
    clients: list[RawClient] = []

    async def member() -> None:
        async with in_memory(server) as client:
            clients.append(client)
            await trio.sleep_forever()

    async with running_server(handler, hub=hub, **QUIET) as server, trio.open_nursery() as nursery:
        for _ in range(70):
            nursery.start_soon(member)
        await joined.wait()
        await hub.publish("t", Event(json.dumps("all")))
        for client in clients:
            assert await texts(client, 1) == ["all"]
        assert hub.statistics().subscribers == 1  # one subscription for the room
        nursery.cancel_scope.cancel()


async def test_rooms_end_with_the_hub_and_with_their_last_member(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    peers: list[WebSocketPeer] = []
    outcomes: list[str] = []

    async def handler(peer: WebSocketPeer) -> None:
        peers.append(peer)
        try:
            await peer.subscribe("t")
            outcomes.append("joined")
        except HubClosedError:
            outcomes.append("hub closed")
        await peer.wait_closed()

    async with running_server(handler, hub=hub, **QUIET) as server, in_memory(server):
        await trio.testing.wait_all_tasks_blocked()
        peers[0].unsubscribe("t")
        await trio.testing.wait_all_tasks_blocked()
        assert hub.statistics().subscribers == 0  # the room left with its last member
        await peers[0].subscribe("t")  # a new room
        assert peers[0].topics == {"t"}
        hub.close()
        await trio.testing.wait_all_tasks_blocked()
        assert peers[0].topics == frozenset()
        assert server.subscribers("t") == 0
        async with in_memory(server):
            await trio.testing.wait_all_tasks_blocked()
    assert outcomes == ["joined", "hub closed"]


class FragileCodec(JsonCodec):
    def encode(self, obj: Any) -> str:
        if isinstance(obj, dict) and obj.get("data") == "boom":
            raise TypeError("cannot encode this")
        return super().encode(obj)


async def test_a_room_that_fails_closes_its_members_and_the_server_goes_on(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    hub = Hub()
    handler, _ = joiner(hub)
    async with running_server(handler, hub=hub, codec=FragileCodec(), **QUIET) as server:
        async with in_memory(server) as client:
            await trio.testing.wait_all_tasks_blocked()
            await hub.publish("t", Event("boom"))
            assert await client.close_code() == CloseCode.INTERNAL_ERROR
        async with in_memory(server) as client:
            await trio.testing.wait_all_tasks_blocked()
            assert server.subscribers("t") == 1  # in a new room
            await hub.publish("t", Event(json.dumps("fine")))
            assert await texts(client, 1) == ["fine"]
    assert any("forwarding failed" in r.getMessage() for r in caplog.records)


async def test_subscribe_checks_its_arguments(autojump_clock: trio.testing.MockClock) -> None:
    errors: list[type[BaseException]] = []

    async def handler(peer: WebSocketPeer) -> None:
        for kwargs in ({"capacity": 0}, {"overflow": "block"}):
            try:
                await peer.subscribe("t", **kwargs)
            except (TypeError, ValueError) as exc:
                errors.append(type(exc))
        await peer.close()
        try:
            await peer.subscribe("t")
        except WebSocketClosed as exc:
            errors.append(type(exc))

    async with running_server(handler, hub=Hub(), **QUIET) as server, in_memory(server) as client:
        assert await client.close_code() == CloseCode.NORMAL_CLOSURE
        await trio.testing.wait_all_tasks_blocked()
    assert errors == [ValueError, TypeError, WebSocketClosed]


async def test_without_inlet_support_a_pump_task_reads(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from trio_stream.websocket import _inlet

    caplog.set_level(logging.INFO, logger="trio_stream.websocket")
    monkeypatch.setattr(_inlet, "inline_supported", lambda: False)

    async def echo(peer: WebSocketPeer) -> None:
        async for message in peer:
            await peer.send({"echo": message})

    async with running_server(echo) as server, in_memory(server) as client:
        with trio.fail_after(10):
            await client.send(TextMessage(data='"hi"'))
            assert await texts(client, 1) == [{"echo": "hi"}]
            await client.send(TextMessage(data="{not json"))
            assert await client.close_code() == CloseCode.INVALID_FRAME_PAYLOAD_DATA
    assert any("not valid JSON" in r.getMessage() for r in caplog.records)
