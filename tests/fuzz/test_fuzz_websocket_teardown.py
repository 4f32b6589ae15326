"""Teardown under abuse: clients that vanish at any moment leave nothing behind.

Found by the soak test (benchmarks/soak.py): after every client has gone, the
server must hold no peer, no room and no Hub subscription; a leak there keeps
tasks, sockets and memory for the life of the process.
"""

from __future__ import annotations

import itertools
import random
from functools import partial

import pytest
import trio
import trio_websocket

from tests.fuzz._fuzz_support import trap_error_logs
from tests.fuzz._fuzz_ws_client import open_fuzz_client
from trio_stream import Event
from trio_stream.core import Hub
from trio_stream.websocket import WebSocketPeer, WebSocketServer, serve_websockets

BOUND = 10.0  # seconds: a safety bound, never a timing assertion


async def _subscribe_then_wait(hub: Hub, peer: WebSocketPeer) -> None:
    await peer.subscribe("room", last_event_id=peer.request.query.get("last_event_id"))
    await peer.wait_closed()


@pytest.mark.parametrize("resume", [False, True])
async def test_clients_gone_while_joining_a_room_leave_no_room_behind(resume: bool) -> None:
    # Regression (found by the soak test): a peer that closed while its room
    # was being opened was added to the room after it had left; nothing ever
    # removed it, so the room's task and Hub subscription outlived every client.
    hub = Hub()
    first = await hub.publish("room", Event("before"))
    target = f"/?last_event_id={first.id}" if resume else "/"
    with trap_error_logs() as errors, trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                partial(
                    serve_websockets,
                    partial(_subscribe_then_wait, hub),
                    host="127.0.0.1",
                    port=0,
                    hub=hub,
                    heartbeat_interval=None,
                    close_timeout=0.5,
                )
            )
            for _ in range(20):  # each one: handshake, then a reset at once
                async with open_fuzz_client(server.port) as client:
                    await client.handshake(target)
                    client.reset()
            while server.statistics().open:  # noqa: ASYNC110  peers end on their own
                await trio.sleep(0.01)
            assert hub.statistics().subscribers == 0
            nursery.cancel_scope.cancel()
    assert not errors


async def _drain_peer(peer: WebSocketPeer) -> None:
    await peer.subscribe("room", capacity=16)
    async for _ in peer:
        pass


async def _reader_cancelled_at(port: int, seconds: float, frozen: bool) -> None:
    # Cancelled at any point: while connecting, in the handshake, or reading.
    with trio.move_on_after(seconds):
        async with trio_websocket.open_websocket_url(
            f"ws://127.0.0.1:{port}/", message_queue_size=4
        ) as ws:
            while not frozen:
                await ws.get_message()
            await trio.sleep_forever()


# trio-websocket's client, cancelled while it connects, leaves its socket to the
# garbage collector (a ResourceWarning in the client, not in the server under
# test): such a silent, never-closed connection is part of what the server must
# survive here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("frozen", [False, True])
async def test_clients_leaving_at_random_moments_leave_no_peer_behind(frozen: bool) -> None:
    # Found by the soak test: clients that go away at arbitrary points (here:
    # cancelled, as at the end of a page's life) must all be noticed; a peer
    # left open keeps its handler, its room and the room's Hub subscription.
    hub = Hub()
    rng = random.Random(7)
    with trap_error_logs() as errors, trio.fail_after(BOUND * 3):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                partial(
                    serve_websockets,
                    _drain_peer,
                    host="127.0.0.1",
                    port=0,
                    hub=hub,
                    heartbeat_interval=1.0,
                    pong_timeout=1.0,
                    close_timeout=0.5,
                    outbound_capacity=16,
                    send_timeout=1.0,
                )
            )
            nursery.start_soon(_publish_forever, hub)
            async with trio.open_nursery() as clients:
                for _ in range(60):
                    seconds = rng.uniform(0.0, 1.5)
                    clients.start_soon(_reader_cancelled_at, server.port, seconds, frozen)
            # A dead peer is noticed within heartbeat + pong timeout (2 s) at most.
            with trio.move_on_after(BOUND):
                await trio.lowlevel.checkpoint()
                while server.statistics().open:  # noqa: ASYNC110  peers end on their own
                    await trio.sleep(0.05)
            assert server.statistics().open == 0, "peers outlived their clients"
            assert hub.statistics().subscribers == 0
            nursery.cancel_scope.cancel()
    assert not errors


async def _publish_forever(hub: Hub) -> None:
    count = itertools.count()
    while True:
        await hub.publish("room", Event("x" * 500 + str(next(count))))
        await trio.sleep(0.01)
