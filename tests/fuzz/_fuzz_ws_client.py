"""A bare wsproto client for the WebSocket fuzz tests: sends exactly what it is told.

It answers no ping and validates nothing it sends, so it can play a hostile
peer: oversized, fragmented, undecodable or outright malformed frames.
"""

from __future__ import annotations

import itertools
import socket
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Request,
    TextMessage,
)

_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)


@dataclass
class Outcome:
    """What the server did: the messages it sent (whole), and its close code (None: no frame)."""

    messages: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None


class FuzzClient:
    """One TCP connection to a WebSocket server on 127.0.0.1, driven step by step."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._parts: list[str | bytes] = []

    async def handshake(self, target: str = "/") -> None:
        """Send the opening handshake for ``target`` and wait for the server to accept it."""
        await self.send_raw(self.ws.send(Request(host="127.0.0.1", target=target)))
        while True:
            events = await self._receive()
            assert events is not None, "the server closed during the handshake"
            if any(isinstance(event, AcceptConnection) for event in events):
                return

    async def send_raw(self, data: bytes) -> bool:
        """Send bytes as they are; False if the server already closed the connection."""
        try:
            await self.stream.send_all(data)
        except _GONE:
            await trio.lowlevel.checkpoint()
            return False
        return True

    async def send_message(self, payload: str | bytes, fragments: Sequence[int] = ()) -> bool:
        """Send one message, split into frames at the given offsets (sorted, in range)."""
        cuts = [0, *sorted({c for c in fragments if 0 < c < len(payload)}), len(payload)]
        wire = b""
        for start, end in itertools.pairwise(cuts):
            piece, last = payload[start:end], end == len(payload)
            if isinstance(piece, str):
                wire += self.ws.send(TextMessage(piece, message_finished=last))
            else:
                wire += self.ws.send(BytesMessage(piece, message_finished=last))
        return await self.send_raw(wire)

    async def send_eof(self) -> None:
        """Half-close: the server reads end of stream after what was sent."""
        try:
            await self.stream.send_eof()
        except (*_GONE, OSError):
            await trio.lowlevel.checkpoint()

    async def read_until_closed(self, expected: int | None = None) -> Outcome:
        """Collect messages until the server's close frame (answered) or end of stream.

        With ``expected``, return as soon as that many messages arrived (the
        connection stays open).
        """
        await trio.lowlevel.checkpoint()
        outcome = Outcome()
        while expected is None or len(outcome.messages) < expected:
            events = await self._receive()
            if events is None:
                return outcome
            for event in events:
                if isinstance(event, Message):
                    self._parts.append(event.data)
                    if event.message_finished:
                        joiner: str | bytes = "" if isinstance(event.data, str) else b""
                        outcome.messages.append(joiner.join(self._parts))  # type: ignore[arg-type]
                        self._parts.clear()
                elif isinstance(event, CloseConnection):
                    outcome.close_code = event.code
                    if self.ws.state is ConnectionState.REMOTE_CLOSING:
                        await self.send_raw(self.ws.send(event.response()))
                    return outcome
        return outcome

    async def _receive(self) -> list[Event] | None:
        try:
            data = await self.stream.receive_some(65536)
        except _GONE:
            await trio.lowlevel.checkpoint()
            data = b""
        if not data:
            return None
        self.ws.receive_data(bytes(data))
        return list(self.ws.events())

    def reset(self) -> None:
        """Make the close that ends the connection a TCP reset (SO_LINGER 0): the rudest exit."""
        self.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@asynccontextmanager
async def open_fuzz_client(port: int) -> AsyncIterator[FuzzClient]:
    """A TCP connection to 127.0.0.1:port (no handshake yet), closed at once on exit."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        yield FuzzClient(stream)
    finally:
        await trio.aclose_forcefully(stream)
