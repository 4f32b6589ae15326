"""Interoperability with another implementation: the ``websockets`` library (trio flavour)."""

from __future__ import annotations

import contextlib
import json
from functools import partial

import msgpack
import trio
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection, serve

from tests.websocket._ws_helpers import running_server
from trio_stream.protocol import Backoff, CloseCode
from trio_stream.websocket import (
    ClientSession,
    MsgPackCodec,
    WebSocketPeer,
    open_websocket_client,
)


async def echo(peer: WebSocketPeer) -> None:
    async for message in peer:
        await peer.send({"echo": message, "user": peer.identity})


async def test_websockets_client_against_our_server() -> None:
    async def authenticate(request: object) -> str:
        await trio.lowlevel.checkpoint()
        return "ann"

    async with running_server(echo, authenticate=authenticate) as server:
        with trio.fail_after(10):
            async with connect(server.url + "/chat?x=1", compression=None) as ws:
                await ws.send(json.dumps({"n": 1}))
                assert json.loads(await ws.recv()) == {"echo": {"n": 1}, "user": "ann"}
                pong = await ws.ping()
                await pong.wait()  # our server answers pings
                await ws.send(b'{"binary": true}')  # JSON in a binary frame is fine
                assert json.loads(await ws.recv())["echo"] == {"binary": True}
            assert ws.close_code == CloseCode.NORMAL_CLOSURE


async def test_websockets_client_with_msgpack_and_a_size_limit() -> None:
    options = {"codec": MsgPackCodec(), "max_message_size": 64}
    async with running_server(echo, **options) as server:
        with trio.fail_after(10):
            async with connect(server.url) as ws:
                await ws.send(msgpack.packb([1, "two"]))
                assert msgpack.unpackb(await ws.recv()) == {"echo": [1, "two"], "user": None}
                await ws.send(msgpack.packb("x" * 100))
                with contextlib.suppress(WebsocketsClosed):
                    await ws.recv()
            assert ws.close_code == CloseCode.MESSAGE_TOO_BIG


async def test_our_client_against_a_websockets_server() -> None:
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await ws.aclose(CloseCode.SERVICE_RESTART, "restarting")  # reconnect code
            return
        async for message in ws:
            await ws.send(json.dumps({"echo": json.loads(message)}))

    sessions: list[int] = []

    async def on_connect(session: ClientSession) -> None:
        sessions.append(session.index)
        await session.send({"resubscribe": session.index})

    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(serve, handler, 0, host="127.0.0.1"))
        port = server.listeners[0].socket.getsockname()[1]
        async with open_websocket_client(
            f"ws://127.0.0.1:{port}",
            backoff=Backoff(initial=0.01, maximum=0.02),
            on_connect=on_connect,
            heartbeat_interval=0.05,  # websockets answers our pings
        ) as client:
            with trio.fail_after(10):
                assert await client.__anext__() == {"echo": {"resubscribe": 1}}
                await trio.sleep(0.3)  # several heartbeats pass without dropping the link
                await client.send([1, 2, 3])
                assert await client.__anext__() == {"echo": [1, 2, 3]}
            assert client.statistics().connections == 2
        nursery.cancel_scope.cancel()
    assert sessions == [0, 1]
