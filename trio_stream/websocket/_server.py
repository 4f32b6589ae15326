"""``serve_websockets``: a hardened WebSocket server on trio-websocket.

Each TCP connection runs in its own nursery (see ``_accept``): one failure
(e.g. trio-websocket #184) ends only its own connection. Server-wide tasks
run beside them: one heartbeat wheel, and one forwarder per Hub topic that
has subscribers here (``_rooms``).
"""

from __future__ import annotations

import logging
import ssl
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any, NoReturn

import trio

from ..core import DEFAULT_CAPACITY, Hub, Overflow
from ..protocol import CloseCode
from ._accept import Authenticate, Connections
from ._codec import Codec, JsonCodec
from ._frames import EventFrameCache
from ._handshake import ConnectionLimiter, OriginPolicy
from ._heartbeat import HeartbeatWheel
from ._link import LinkSettings
from ._peer import Handler, WebSocketPeer
from ._records import PeerSettings, WebSocketServerStatistics
from ._rooms import Rooms

__all__ = ["WebSocketServer", "serve_websockets"]

logger = logging.getLogger("trio_stream.websocket")


class WebSocketServer:
    """What ``await nursery.start(serve_websockets, ...)`` returns: where it listens, counters."""

    def __init__(self, listeners: Sequence[trio.SocketListener], secure: bool) -> None:
        self.addresses: list[tuple[str, int]] = [
            tuple(listener.socket.getsockname()[:2]) for listener in listeners
        ]
        self._scheme = "wss" if secure else "ws"
        self._peers: set[WebSocketPeer] = set()
        self._accepted = 0
        self._rejected: Counter[int] = Counter()
        self._closed: Counter[int] = Counter()
        self._received = 0
        self._sent = 0
        self._connections: Connections

    @property
    def port(self) -> int:
        """The bound port (of the first listener)."""
        return self.addresses[0][1]

    @property
    def url(self) -> str:
        """``ws://host:port`` of the first listener (IPv6 hosts in brackets)."""
        host, port = self.addresses[0]
        return f"{self._scheme}://{f'[{host}]' if ':' in host else host}:{port}"

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one already-accepted byte stream as a WebSocket connection.

        The same path as a TCP connection accepted by the server's listener,
        for streams from elsewhere: your own listener, or an in-memory stream
        pair in tests. Returns when the connection is over; never raises for
        connection-level errors (they are logged). The caller closes
        ``stream``.
        """
        await self._connections.handle_stream(stream)

    def subscribers(self, topic: str) -> int:
        """How many open connections are subscribed to ``topic`` now (cheap: no scan)."""
        rooms = self._connections.rooms
        return rooms.size(topic) if rooms is not None else 0

    @property
    def peers(self) -> frozenset[WebSocketPeer]:
        """The open connections (a snapshot)."""
        return frozenset(self._peers)

    def statistics(self) -> WebSocketServerStatistics:
        """A :class:`WebSocketServerStatistics` snapshot (cheap, no checkpoint)."""
        live = [peer.statistics() for peer in self._peers]
        return WebSocketServerStatistics(
            open=len(self._peers),
            accepted=self._accepted,
            rejected=MappingProxyType(dict(self._rejected)),
            closed=MappingProxyType(dict(self._closed)),
            slow_consumers=self._closed[CloseCode.SLOW_CONSUMER],
            messages_received=self._received + sum(s.messages_received for s in live),
            messages_sent=self._sent + sum(s.messages_sent for s in live),
        )

    async def _close_all(self, code: int, reason: str) -> None:
        async with trio.open_nursery() as nursery:
            for peer in self._peers:
                nursery.start_soon(peer.close, code, reason)

    def _opened(self, peer: WebSocketPeer) -> None:
        self._accepted += 1
        self._peers.add(peer)

    def _ended(self, peer: WebSocketPeer) -> None:
        self._peers.discard(peer)
        stats = peer.statistics()
        self._received += stats.messages_received
        self._sent += stats.messages_sent
        self._closed[stats.close_code or CloseCode.ABNORMAL_CLOSURE] += 1


async def serve_websockets(  # noqa: ASYNC114  (configure flake8-async's list to add it)
    handler: Handler,
    *,
    host: str,
    port: int,
    hub: Hub | None = None,
    authenticate: Authenticate | None = None,
    allowed_origins: Collection[str] | None = None,
    subprotocols: Sequence[str] = (),
    codec: Codec | None = None,
    validate: Callable[[Any], Any] | None = None,
    max_message_size: int = 2**20,
    heartbeat_interval: float | None = 20.0,
    pong_timeout: float = 20.0,
    rate_limit: float | None = 50.0,
    rate_burst: int = 100,
    inbound_capacity: int = 64,
    outbound_capacity: int = DEFAULT_CAPACITY,
    outbound_overflow: Overflow = Overflow.DISCONNECT,
    send_timeout: float = 10.0,
    handshake_timeout: float = 10.0,
    close_timeout: float = 5.0,
    max_connections: int = 10_000,
    max_connections_per_client: int = 100,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve WebSockets on ``host:port``, calling ``await handler(peer)`` per connection.

    Startable: ``server = await nursery.start(serve_websockets, handler,
    host="127.0.0.1", port=0)`` returns a :class:`WebSocketServer` (bound
    ``url``/``port``, ``statistics()``) once listening; runs until cancelled,
    then closes open connections with 1001 (each within ``close_timeout``).

    Before accepting, in this order: ``max_connections`` (503) and
    ``max_connections_per_client`` per client IP (429); the Origin
    ``allowed_origins`` allow-list (403; requests without Origin pass;
    ``None`` disables the check); ``await authenticate(request)`` with a
    :class:`HandshakeRequest`, which returns an identity (``peer.identity``),
    returns ``None`` (401) or raises :class:`HandshakeRejected`. The whole
    handshake must finish within ``handshake_timeout``.

    Per connection: messages over ``max_message_size`` close it with 1009;
    frames the ``codec`` (JSON default, :class:`MsgPackCodec` optional)
    cannot decode, or that ``validate`` rejects (``ValueError``/``TypeError``),
    with 1007; more than ``rate_limit`` messages per second (bursts of
    ``rate_burst``; ``None`` disables) with ``CloseCode.RATE_LIMITED``. A
    ping every ``heartbeat_interval`` (``None`` disables) unanswered within
    ``pong_timeout`` aborts it. Inbound messages wait in a queue of
    ``inbound_capacity`` (backpressure), outbound frames in one of
    ``outbound_capacity`` (default 256 frames, shared references to encoded
    bytes: enough to absorb a burst while a socket is briefly full) with
    ``outbound_overflow``; a write that takes over ``send_timeout`` (peer not
    reading) aborts the connection. ``hub`` enables ``peer.subscribe`` /
    ``peer.publish``.

    Built for many connections: a frame goes to the socket at once when
    nothing is queued before it, a backlog in one write; all subscribers of
    a topic share one Hub subscription and one forwarder task (each event
    is encoded once, into frame bytes, for all of them); one task pings
    every connection on its schedule. An idle connection costs two tasks,
    its own (the handler's) and trio-websocket's reader.

    Every refusal and close is logged on ``trio_stream.websocket``; clients
    get only a status or close code with a fixed reason, never exception
    text. A failing handler or connection never affects the others.
    """
    link_settings = LinkSettings(heartbeat_interval, pong_timeout, send_timeout, close_timeout)
    codec = codec if codec is not None else JsonCodec()
    peer_settings = PeerSettings(
        codec,
        validate,
        rate_limit,
        rate_burst,
        inbound_capacity,
        outbound_capacity,
        outbound_overflow,
    )
    if max_message_size < 1 or handshake_timeout <= 0:
        raise ValueError("max_message_size and handshake_timeout must be positive")
    limiter = ConnectionLimiter(max_connections, max_connections_per_client)
    listeners = await trio.open_tcp_listeners(port, host=host)
    server = WebSocketServer(listeners, secure=ssl_context is not None)
    connections = Connections(
        handler,
        server,
        authenticate=authenticate,
        origins=OriginPolicy(allowed_origins),
        subprotocols=tuple(subprotocols),
        max_message_size=max_message_size,
        handshake_timeout=handshake_timeout,
        limiter=limiter,
        link_settings=link_settings,
        peer_settings=peer_settings,
        frames=EventFrameCache(codec),
    )
    server._connections = connections
    served: list[trio.abc.Listener[Any]] = list(listeners)
    if ssl_context is not None:
        served = [trio.SSLListener(lst, ssl_context, https_compatible=True) for lst in listeners]
    # Connections run shielded from our caller's cancellation, so that on
    # shutdown trio-websocket's readers still run while every connection
    # completes its closing handshake (1001); then they are cancelled.
    stop_connections = trio.CancelScope(shield=True)
    async with trio.open_nursery() as nursery:
        connections_nursery = await nursery.start(_connections_nursery, stop_connections)
        if hub is not None:
            connections.rooms = Rooms(hub, connections_nursery, connections.frames)
        if heartbeat_interval is not None:
            connections.wheel = HeartbeatWheel(heartbeat_interval)
            await connections_nursery.start(connections.wheel.run)
        try:
            await nursery.start(
                partial(
                    trio.serve_listeners,
                    connections.handle_stream,
                    served,
                    handler_nursery=connections_nursery,
                )
            )
            logger.info("serving WebSockets on %s", server.url)
            task_status.started(server)
            await trio.sleep_forever()
        finally:
            with trio.move_on_after(link_settings.close_timeout) as scope:
                scope.shield = True
                await server._close_all(CloseCode.GOING_AWAY, "server shutting down")
            stop_connections.cancel()


async def _connections_nursery(  # noqa: ASYNC114  internal, started right above
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[trio.Nursery]
) -> None:
    with scope:
        async with trio.open_nursery() as nursery:
            task_status.started(nursery)
            await trio.sleep_forever()
