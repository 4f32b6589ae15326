"""The server side of one accepted connection: what a handler is given."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..core import (
    DEFAULT_CAPACITY,
    BoundedQueue,
    Hub,
    Overflow,
    QueueStatistics,
    validate_topic,
)
from ..protocol import CloseCode, Event
from ._delivery import Delivery
from ._errors import WebSocketClosed
from ._frames import EventFrameCache, wire_frame
from ._handshake import HandshakeRequest
from ._heartbeat import HeartbeatWheel, Slot
from ._link import Link, Violation
from ._outbox import Outbox
from ._ratelimit import TokenBucket
from ._records import PeerSettings, PeerStatistics
from ._rooms import Membership, Rooms

__all__ = ["WebSocketPeer"]

logger = logging.getLogger("trio_stream.websocket")

Handler = Callable[["WebSocketPeer"], Awaitable[object]]


class WebSocketPeer(Delivery):
    """One accepted WebSocket connection, as a :func:`serve_websockets` handler sees it.

    Iterate it for the peer's decoded messages (iteration ends when the
    connection closes); :meth:`send` objects to it; :meth:`subscribe` joins
    Hub topics ("rooms"), whose events are sent as ``{"id", "event", "data"}``.

    Incoming messages wait in a queue of ``inbound_capacity``: while the
    handler is not taking them the connection stops reading (backpressure to
    the peer). Outgoing frames wait in a queue of ``outbound_capacity`` with
    the server's overflow policy; under the default ``Overflow.DISCONNECT`` a
    peer that falls that far behind is closed with
    ``CloseCode.SLOW_CONSUMER`` and reconnects (resuming topics from its last
    event id). Only one task may iterate a peer at a time. A frame goes to
    the socket at once when nothing is queued before it.

    Once the connection has closed, the handler gets ``close_timeout`` to
    return (its iteration has ended, sends raise :class:`WebSocketClosed`);
    after that it is cancelled.
    """

    __slots__ = (
        "_bucket",
        "_frames",
        "_hub",
        "_inbound",
        "_memberships",
        "_probing",
        "_rooms",
        "_slot",
        "identity",
        "request",
    )

    def __init__(
        self,
        link: Link,
        outbox: Outbox,
        request: HandshakeRequest,
        identity: Any,
        settings: PeerSettings,
        frames: EventFrameCache,
        rooms: Rooms | None,
        nursery: trio.Nursery,
    ) -> None:
        super().__init__(link, outbox, settings, nursery)
        #: The :class:`HandshakeRequest` the connection was opened with.
        self.request = request
        #: What the ``authenticate`` hook returned (``None`` without a hook).
        self.identity = identity
        self._frames = frames
        self._rooms = rooms
        self._hub: Hub | None = rooms.hub if rooms is not None else None
        self._inbound: BoundedQueue[Any] | None = None  # created on first use
        self._bucket = (
            None
            if settings.rate_limit is None
            else TokenBucket(settings.rate_limit, settings.rate_burst, trio.current_time())
        )
        self._memberships: dict[str, Membership] = {}
        self._slot: Slot | None = None
        self._probing = False

    def __repr__(self) -> str:
        return f"<WebSocketPeer {self._link.name}>"

    @property
    def closed(self) -> bool:
        """True once the connection is closed or closing."""
        return self._ending is not None or self._link.closed.is_set()

    @property
    def close_code(self) -> int | None:
        """The close code (sent or received; 1006 when the connection was lost)."""
        return self._link.close_code

    @property
    def topics(self) -> frozenset[str]:
        """The topics this connection is subscribed to."""
        return frozenset(self._memberships)

    # -- receiving -------------------------------------------------------------

    def _inbox(self) -> BoundedQueue[Any]:
        if self._inbound is None:
            self._inbound = BoundedQueue(self._settings.inbound_capacity, Overflow.BLOCK)
        return self._inbound

    def __aiter__(self) -> WebSocketPeer:
        return self

    async def __anext__(self) -> Any:
        batch = await self._inbox().get_batch(1)
        if not batch:
            raise StopAsyncIteration
        return batch[0]

    async def receive(self) -> Any:
        """The next decoded message; raises :class:`WebSocketClosed` after the last one."""
        batch = await self._inbox().get_batch(1)
        if not batch:
            raise self._closed_error()
        return batch[0]

    def _convert(self, frame: str | bytes) -> Any:
        if self._bucket is not None and not self._bucket.take(trio.current_time()):
            raise Violation(
                CloseCode.RATE_LIMITED,
                "rate limit exceeded",
                f"over the rate limit ({self._bucket.rate:g}/s, burst {self._bucket.burst})",
            )
        try:
            message = self._settings.codec.decode(frame)
        except ValueError as exc:
            raise Violation(
                CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid message", str(exc)
            ) from None
        if self._settings.validate is not None:
            try:
                message = self._settings.validate(message)
            except (ValueError, TypeError) as exc:
                raise Violation(
                    CloseCode.INVALID_FRAME_PAYLOAD_DATA,
                    "invalid message",
                    f"message rejected: {exc}",
                ) from None
        return message

    # -- sending -----------------------------------------------------------------

    async def send(self, obj: Any) -> None:
        """Encode ``obj`` with the server's codec and queue it for the peer.

        Waits only under ``Overflow.BLOCK`` (for room in the outbound queue).
        Raises :class:`WebSocketClosed` if the connection is closed, or was
        just closed because this send overflowed its queue (``DISCONNECT``).
        ``TypeError`` if the codec cannot encode ``obj``, ``UnicodeEncodeError``
        for text holding a lone surrogate.
        """
        await self._send_frame(wire_frame(self._settings.codec.encode(obj)))

    async def send_event(self, event: Event) -> None:
        """Queue a topic event as ``{"id", "event", "data"}``, encoded once per event object."""
        await self._send_frame(self._frames.wire(event))

    # -- rooms -------------------------------------------------------------------

    async def subscribe(
        self,
        topic: str,
        *,
        last_event_id: str | None = None,
        capacity: int = DEFAULT_CAPACITY,
        overflow: Overflow = Overflow.DISCONNECT,
    ) -> bool:
        """Join ``topic``: its events are sent to this peer until it leaves or disconnects.

        Returns once subscribed (events published after that are delivered),
        with ``True`` when ``last_event_id`` was found in history: the missed
        events are then queued before it returns (waiting for room whatever
        the policy), ahead of what the handler sends next, and live events
        follow with no gap and no duplicate; live events that arrive during
        the replay are held meanwhile, at most ``capacity`` of them (past that
        the connection is closed with ``CloseCode.SLOW_CONSUMER``).

        ``capacity`` bounds this topic's events waiting for this peer (in
        its outbound queue, not yet written); past it ``overflow`` applies:
        ``DISCONNECT`` closes the connection with ``CloseCode.SLOW_CONSUMER``
        (its client resumes from its last id), ``DROP_OLDEST`` /
        ``DROP_NEWEST`` drop one of them, ``BLOCK`` makes the topic's room
        wait (and, once the room's own queue of 256 events is full, the
        publisher). The outbound queue's own capacity and policy apply too.
        All subscribers of a topic on this server share one Hub subscription
        and one forwarder task. If cancelled, it is not subscribed (part of a
        replay may have been queued already).

        Raises ``ValueError`` for an invalid topic or one already joined,
        ``RuntimeError`` without a hub, what the Hub raises (e.g.
        :class:`HubClosedError`) and :class:`WebSocketClosed` once closed.
        """
        if self._rooms is None:
            raise RuntimeError("serve_websockets(hub=...) is needed to subscribe to topics")
        validate_topic(topic)
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError("capacity must be an int >= 1")
        if not isinstance(overflow, Overflow):
            raise TypeError("overflow must be an Overflow member")
        if topic in self._memberships:
            raise ValueError(f"already subscribed to {topic!r}")
        if self.closed:
            raise self._closed_error()
        member = self._memberships[topic] = Membership(self, topic, capacity, overflow)
        try:
            return await self._rooms.join(member, last_event_id)
        except BaseException:
            self._left(member)
            member.leave()
            raise

    def unsubscribe(self, topic: str) -> None:
        """Leave ``topic`` (no effect if not subscribed). Synchronous."""
        member = self._memberships.pop(topic, None)
        if member is not None:
            member.leave()

    def _left(self, member: Membership) -> None:
        if self._memberships.get(member.topic) is member:
            del self._memberships[member.topic]

    def _leave_rooms(self) -> None:
        members = list(self._memberships.values())
        self._memberships.clear()
        for member in members:
            member.leave()

    async def publish(self, topic: str, event: Event) -> Event:
        """Publish ``event`` on ``topic`` through the server's hub; returns it with its id."""
        if self._hub is None:
            raise RuntimeError("serve_websockets(hub=...) is needed to publish")
        return await self._hub.publish(topic, event)

    # -- closing -------------------------------------------------------------------

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection with ``code`` (bounded by the server's ``close_timeout``).

        Frames already queued go out first, then the close frame.
        """
        if self._ending is None:
            self._ending = (code, reason)
        await self._link.close(code, reason)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by either side, or lost)."""
        await self._link.closed.wait()

    def statistics(self) -> PeerStatistics:
        """A :class:`PeerStatistics` snapshot (cheap, no checkpoint)."""
        inbound = self._inbound
        return PeerStatistics(
            messages_received=self._link.received,
            messages_sent=self._outbox.sent,
            inbound=inbound.statistics() if inbound is not None else self._no_inbox(),
            outbound=self._outbox.statistics(),
            topics=tuple(sorted(self._memberships)),
            close_code=self._link.close_code,
        )

    def _no_inbox(self) -> QueueStatistics:
        return QueueStatistics(
            capacity=self._settings.inbound_capacity,
            overflow=Overflow.BLOCK,
            depth=0,
            peak=0,
            delivered=0,
            dropped=0,
            disconnected=False,
            closed=self.closed,
        )

    # -- lifecycle (driven by the server) --------------------------------------------

    async def _run(self, handler: Handler, wheel: HeartbeatWheel | None) -> None:
        # The handler runs in the connection's task, under its nursery's own
        # cancel scope (see _ended).
        if wheel is not None:
            self._slot = wheel.add(self._beat)
        try:
            await trio.lowlevel.checkpoint()
            try:
                await handler(self)
            except WebSocketClosed:
                pass
            except Exception:
                logger.exception("%s: handler raised; closing with 1011", self.name)
                await self._finish(CloseCode.INTERNAL_ERROR, "internal error")
                return
            except trio.Cancelled:
                if self._nursery.cancel_scope.deadline <= trio.current_time():
                    logger.info("%s: handler outlived the connection; cancelled it", self.name)
                raise
            await self._finish(CloseCode.NORMAL_CLOSURE, "")
        finally:
            if self._slot is not None:
                self._slot.clear()
            self._link.stop_probe()
            self._leave_rooms()
            if self._link.ws.closed is None:  # cancelled (server shutdown) or crashed
                shutting_down = trio.current_effective_deadline() <= trio.current_time()
                await self._link.close(  # noqa: ASYNC102  shields itself, bounded by close_timeout
                    CloseCode.GOING_AWAY if shutting_down else CloseCode.INTERNAL_ERROR,
                    "server shutting down" if shutting_down else "internal error",
                )

    async def _pump(self) -> None:
        # Only where trio-websocket's internals differ from what _inlet expects.
        try:
            await self._link.pump(self._inbox, self._convert)
        finally:
            self._ended()

    def _ended(self) -> None:
        # The WebSocket is over: iteration ends after what arrived, rooms stop
        # sending, and the handler has close_timeout left to return (then the
        # connection's nursery, the handler with it, is cancelled).
        self._inbox().close()
        self._leave_rooms()
        scope = self._nursery.cancel_scope
        scope.deadline = min(
            scope.deadline, trio.current_time() + self._link.settings.close_timeout
        )

    def _beat(self) -> None:
        # Called by the heartbeat wheel when a ping is due: one at a time.
        if self._probing or self.closed:
            return
        try:
            self._nursery.start_soon(self._probe)
        except RuntimeError:  # the connection is being torn down
            return
        self._probing = True

    async def _probe(self) -> None:
        try:
            await self._link.probe()
        finally:
            self._probing = False

    async def _finish(self, code: int, reason: str) -> None:
        self._leave_rooms()
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        # What the handler queued goes out before the close frame (one queue).
        await self.close(code, reason)
