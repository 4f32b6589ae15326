"""A ping in flight when our own inbox fills is waived, not failed.

While the inbox is full, the reader cannot take the peer's pong; counting
that as a dead peer would punish the client for the server's slowness. Once
reading resumes, an unanswering peer is still detected.
"""

from __future__ import annotations

import json

import trio
import trio.testing
from wsproto.events import AcceptConnection, CloseConnection, Ping, TextMessage

from tests.websocket._ws_helpers import RawClient, running_server
from trio_stream.protocol import CloseCode
from trio_stream.websocket import WebSocketPeer


async def test_a_stall_waives_the_ping_in_flight_but_a_dead_peer_is_still_found(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()
    got: list[object] = []
    released_at: list[float] = []

    async def slow(peer: WebSocketPeer) -> None:
        await release.wait()
        released_at.append(trio.current_time())
        async for message in peer:
            got.append(message)

    options = {"heartbeat_interval": 5.0, "pong_timeout": 3.0, "inbound_capacity": 1}
    async with running_server(slow, **options) as server:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_stream, server_stream)
            client = RawClient(client_stream)  # answers no ping at all
            assert isinstance(await client.handshake(), AcceptConnection)
            assert isinstance(await client.next_event(), Ping)  # the server waits for its pong
            for n in range(3):  # the second one fills the inbox while the ping is in flight
                await client.stream.send_all(client.ws.send(TextMessage(json.dumps(n))))
            await trio.sleep(30)  # ten pong timeouts while the handler is stuck
            (peer,) = server.peers
            assert not peer.closed
            release.set()
            while (event := await client.next_event()) is not None:
                if isinstance(event, CloseConnection):
                    break
            detected = trio.current_time()
        assert got == [0, 1, 2]
        assert peer.close_code == CloseCode.HEARTBEAT_TIMEOUT
        assert released_at[0] < detected <= released_at[0] + 5.0 + 3.0
