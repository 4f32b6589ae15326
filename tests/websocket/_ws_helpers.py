"""Helpers for the WebSocket tests: a server on port 0 and a bare wsproto client.

The bare client sends exactly what a test tells it to and answers no ping by
itself: it plays rude, broken, frozen or hostile peers that a well-behaved
library client never would.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    RejectConnection,
    RejectData,
    Request,
)

from trio_stream.websocket import WebSocketPeer, WebSocketServer, serve_websockets

Handler = Callable[[WebSocketPeer], Awaitable[object]]


@asynccontextmanager
async def running_server(handler: Handler, **options: Any) -> AsyncIterator[WebSocketServer]:
    """``serve_websockets(handler, host="127.0.0.1", port=0, **options)`` for a block.

    ``close_timeout`` defaults to 0.5 s: bare test clients often do not answer
    the server's shutdown close frame, and the server waits that long for them.
    """
    options.setdefault("close_timeout", 0.5)
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(serve_websockets, handler, host="127.0.0.1", port=0, **options)
        )
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


class RawClient:
    """A wsproto client over any trio stream, driven step by step by a test."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._events: deque[Event] = deque()
        self.eof = False

    @classmethod
    async def open(cls, port: int) -> RawClient:
        """A TCP connection to 127.0.0.1:port, before any handshake."""
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def handshake(
        self, path: str = "/", headers: Sequence[tuple[str, str]] = ()
    ) -> AcceptConnection | RejectConnection:
        """Send the opening handshake; return the server's accept or rejection."""
        extra = [(k.encode(), v.encode()) for k, v in headers]
        await self.stream.send_all(
            self.ws.send(Request(host="127.0.0.1", target=path, extra_headers=extra))
        )
        event = await self.next_event()
        assert isinstance(event, AcceptConnection | RejectConnection), event
        return event

    async def next_event(self) -> Event | None:
        """The next protocol event from the server; None at end of stream."""
        await trio.lowlevel.checkpoint()
        while not self._events:
            if self.eof:
                return None
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self.eof = True
                self.ws.receive_data(None)
            else:
                self.ws.receive_data(bytes(data))
            self._events.extend(self.ws.events())
        return self._events.popleft()

    async def reject_body(self) -> bytes:
        """The body of a rejection (call after ``handshake`` returned RejectConnection)."""
        body = b""
        while True:
            event = await self.next_event()
            assert isinstance(event, RejectData), event
            body += event.data
            if event.body_finished:
                return body

    async def close_code(self) -> int | None:
        """Read until the server's close frame (answering it) or EOF; its code, or None."""
        while True:
            event = await self.next_event()
            if event is None:
                return None
            if isinstance(event, CloseConnection):
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await self.send(event.response())
                return event.code

    async def wait_eof(self) -> None:
        """Read (and drop) everything until the server closes the TCP connection."""
        while await self.next_event() is not None:
            pass

    async def send(self, event: Event) -> None:
        """Encode ``event`` with wsproto and send it."""
        await self.stream.send_all(self.ws.send(event))

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (hand-made or partial frames)."""
        await self.stream.send_all(data)

    def reset(self) -> None:
        """Close the TCP connection with a RST (SO_LINGER 0): the rudest goodbye."""
        assert isinstance(self.stream, trio.SocketStream)
        self.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.stream.socket.close()

    async def aclose(self) -> None:
        """Close the transport without a close handshake."""
        await trio.aclose_forcefully(self.stream)


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame built by hand (mask of zeros), for frames wsproto would refuse to send."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload
