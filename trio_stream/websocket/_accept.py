"""Each accepted TCP connection: the handshake and its policy, then the handler.

The connection's nursery holds everything of it: trio-websocket's reader, a
drain task while frames are queued (``_outbox``), a ping while one is in
flight; the handler runs in the connection's own task. Messages go from the
reader straight into the peer's inbox (``_inlet``), so an idle connection
costs two tasks: its own and the reader. trio-websocket's ``serve_websocket``
would run every reader in one server-wide nursery, where one reader failure
(e.g. trio-websocket #184: a ping arriving while we close raises
``LocalProtocolError`` in the reader) takes the whole server down; here it
ends only its own connection, and is logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest
from wsproto.utilities import LocalProtocolError

from ._errors import HandshakeRejected
from ._frames import EventFrameCache
from ._handshake import ConnectionLimiter, HandshakeRequest, OriginPolicy
from ._heartbeat import HeartbeatWheel
from ._inlet import open_server_connection
from ._link import Link, LinkSettings
from ._outbox import Outbox
from ._peer import Handler, WebSocketPeer
from ._records import PeerSettings
from ._rooms import Rooms

if TYPE_CHECKING:
    from ._server import WebSocketServer

__all__ = ["Authenticate", "Connections"]

logger = logging.getLogger("trio_stream.websocket")

Authenticate = Callable[[HandshakeRequest], Awaitable[Any]]

_REJECT_BODIES = {
    401: b"unauthorized\n",
    403: b"forbidden\n",
    429: b"too many connections from this address\n",
    500: b"internal error\n",
    503: b"server full\n",
}


@dataclass(eq=False)
class Connections:
    """Runs every accepted TCP connection: handshake policy, then the handler."""

    handler: Handler
    server: WebSocketServer
    authenticate: Authenticate | None
    origins: OriginPolicy
    subprotocols: tuple[str, ...]
    max_message_size: int
    handshake_timeout: float
    limiter: ConnectionLimiter
    link_settings: LinkSettings
    peer_settings: PeerSettings
    frames: EventFrameCache
    rooms: Rooms | None = None  # set once the server's nursery runs (with a hub)
    wheel: HeartbeatWheel | None = None  # None: heartbeats off
    count: int = 0

    async def handle_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one connection until it is over; never raises for connection errors."""
        await trio.lowlevel.checkpoint()
        self.count += 1
        client = _client_address(stream)
        name = f"ws#{self.count} {client[0]}:{client[1]}" if client else f"ws#{self.count}"
        try:
            async with trio.open_nursery() as nursery:
                if await self._serve(nursery, stream, client, name):
                    # trio-websocket's reader ends by itself once the closing
                    # handshake is done (a pending close waits for it to read
                    # the peer's reply); bound the wait.
                    nursery.cancel_scope.deadline = min(
                        nursery.cancel_scope.deadline,
                        trio.current_time() + self.link_settings.close_timeout,
                    )
                else:
                    nursery.cancel_scope.cancel()  # refused: stop the reader now
        except* LocalProtocolError:
            logger.info("%s: peer pinged while we were closing (trio-websocket #184)", name)
        except* Exception as group:
            logger.error("%s: connection failed", name, exc_info=group)

    async def _serve(
        self,
        nursery: trio.Nursery,
        stream: trio.abc.Stream,
        client: tuple[str, int] | None,
        name: str,
    ) -> bool:
        deadline = trio.current_time() + self.handshake_timeout
        outbox = Outbox(
            stream,
            nursery,
            capacity=self.peer_settings.outbound_capacity,
            overflow=self.peer_settings.outbound_overflow,
            send_timeout=self.link_settings.send_timeout,
        )
        opened = None
        with trio.move_on_at(deadline):
            # trio-websocket writes through the outbox (see _outbox), in turn
            # with the frames the server writes itself.
            opened = await open_server_connection(nursery, outbox, self.max_message_size)
        if opened is None:
            logger.info("%s: no complete handshake within %gs", name, self.handshake_timeout)
            return False
        request, inline = opened
        handshake = HandshakeRequest.build(
            request.path, request.headers, client, request.proposed_subprotocols
        )
        address = client[0] if client else ""
        status = self.limiter.admit(address)
        if status is not None:
            with trio.move_on_at(deadline):
                await self._reject(request, status, name, "connection limit reached")
            return False
        try:
            verdict: tuple[Any, str | None] | None = None
            with trio.move_on_at(deadline) as scope:
                verdict = await self._check(request, handshake, name)
            if scope.cancelled_caught:
                logger.warning("%s: handshake checks took over %gs", name, self.handshake_timeout)
            if verdict is None:
                return False
            identity, subprotocol = verdict
            if inline is not None:  # messages may follow the handshake at once: bind first
                ws, inlet = inline
                peer = self._peer(ws, outbox, nursery, handshake, identity, name)
                inlet.bind(peer._link, peer._inbox, peer._convert, nursery, peer._ended)
                await request.accept(subprotocol=subprotocol)
            else:
                ws = await request.accept(subprotocol=subprotocol)
                peer = self._peer(ws, outbox, nursery, handshake, identity, name)
                nursery.start_soon(peer._pump)
            outbox.ws = ws
            self.server._opened(peer)
            try:
                await peer._run(self.handler, self.wheel)
            finally:
                self.server._ended(peer)
        finally:
            self.limiter.release(address)
        return True

    def _peer(
        self,
        ws: WebSocketConnection,
        outbox: Outbox,
        nursery: trio.Nursery,
        handshake: HandshakeRequest,
        identity: Any,
        name: str,
    ) -> WebSocketPeer:
        link = Link(ws, outbox, self.link_settings, name)
        peer = WebSocketPeer(
            link,
            outbox,
            handshake,
            identity,
            self.peer_settings,
            self.frames,
            self.rooms,
            nursery,
        )
        outbox.on_stall = peer._stalled
        return peer

    async def _check(
        self, request: WebSocketRequest, handshake: HandshakeRequest, name: str
    ) -> tuple[Any, str | None] | None:
        await trio.lowlevel.checkpoint()
        if not self.origins.allows(handshake.origin):
            await self._reject(request, 403, name, f"origin {handshake.origin!r} not allowed")
            return None
        identity = None
        if self.authenticate is not None:
            try:
                identity = await self.authenticate(handshake)
            except HandshakeRejected as exc:
                await self._reject(request, exc.status_code, name, str(exc), exc.body)
                return None
            except Exception:
                logger.exception("%s: authenticate hook failed", name)
                await self._reject(request, 500, name, "authenticate hook failed")
                return None
            if identity is None:
                await self._reject(request, 401, name, "not authenticated")
                return None
        offered = request.proposed_subprotocols
        return identity, next((p for p in self.subprotocols if p in offered), None)

    async def _reject(
        self, request: WebSocketRequest, status: int, name: str, why: str, body: bytes = b""
    ) -> None:
        self.server._rejected[status] += 1
        logger.warning("%s: handshake rejected with %d: %s", name, status, why)
        await trio.lowlevel.checkpoint()
        with contextlib.suppress(ConnectionClosed):  # the client may be gone already
            await request.reject(status, body=body or _REJECT_BODIES.get(status, b"rejected\n"))


def _client_address(stream: trio.abc.Stream) -> tuple[str, int] | None:
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        try:
            host, port = stream.socket.getpeername()[:2]
        except OSError:  # the client already left
            return None
        return str(host), int(port)
    return None
