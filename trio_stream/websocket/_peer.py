"""The server side of one accepted connection: what a handler is given."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..core import (
    DEFAULT_CAPACITY,
    BoundedQueue,
    Hub,
    Overflow,
    SubscriberDisconnected,
)
from ..protocol import CloseCode, Event
from ._errors import WebSocketClosed
from ._frames import EventFrameCache
from ._handshake import HandshakeRequest
from ._link import Link, Violation
from ._ratelimit import TokenBucket
from ._records import PeerSettings, PeerStatistics

__all__ = ["WebSocketPeer"]

logger = logging.getLogger("trio_stream.websocket")

Handler = Callable[["WebSocketPeer"], Awaitable[object]]


class WebSocketPeer:
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
    event id). Only one task may iterate a peer at a time.

    Once the connection has closed, the handler gets ``close_timeout`` to
    return (its iteration has ended, sends raise :class:`WebSocketClosed`);
    after that it is cancelled.
    """

    def __init__(
        self,
        link: Link,
        request: HandshakeRequest,
        identity: Any,
        settings: PeerSettings,
        frames: EventFrameCache,
        hub: Hub | None,
    ) -> None:
        self._link = link
        #: The :class:`HandshakeRequest` the connection was opened with.
        self.request = request
        #: What the ``authenticate`` hook returned (``None`` without a hook).
        self.identity = identity
        self._settings = settings
        self._frames = frames
        self._hub = hub
        self._inbound: BoundedQueue[Any] = BoundedQueue(settings.inbound_capacity, Overflow.BLOCK)
        self._outbound: BoundedQueue[str | bytes] = BoundedQueue(
            settings.outbound_capacity, settings.outbound_overflow
        )
        self._bucket = (
            None
            if settings.rate_limit is None
            else TokenBucket(settings.rate_limit, settings.rate_burst, trio.current_time())
        )
        self._rooms: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._ending: tuple[int, str] | None = None
        self._writer_done = trio.Event()

    def __repr__(self) -> str:
        return f"<WebSocketPeer {self._link.name}>"

    @property
    def name(self) -> str:
        """A short label for logs: connection number and client address."""
        return self._link.name

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
        return frozenset(self._rooms)

    # -- receiving -------------------------------------------------------------

    def __aiter__(self) -> WebSocketPeer:
        return self

    async def __anext__(self) -> Any:
        batch = await self._inbound.get_batch(1)
        if not batch:
            raise StopAsyncIteration
        return batch[0]

    async def receive(self) -> Any:
        """The next decoded message; raises :class:`WebSocketClosed` after the last one."""
        batch = await self._inbound.get_batch(1)
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
        ``TypeError`` if the codec cannot encode ``obj``.
        """
        await self._enqueue(self._settings.codec.encode(obj))

    async def send_event(self, event: Event) -> None:
        """Queue a topic event as ``{"id", "event", "data"}``, encoded once per event object."""
        await self._enqueue(self._frames.frame(event))

    async def _enqueue(self, frame: str | bytes) -> None:
        if self.closed:
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        if not await self._outbound.put(frame):
            if self._outbound.disconnected:
                self._end_slow_consumer("outbound queue full")
            raise self._closed_error()

    def _end_slow_consumer(self, why: str) -> None:
        logger.warning(
            "%s: too slow (%s, capacity %d); closing with %d so it reconnects",
            self.name,
            why,
            self._settings.outbound_capacity,
            CloseCode.SLOW_CONSUMER,
        )
        self._begin_close(CloseCode.SLOW_CONSUMER, "too slow; reconnect")

    def _begin_close(self, code: int, reason: str) -> None:
        if self._ending is None and self._nursery is not None:
            self._ending = (code, reason)
            self._outbound.disconnect()  # queued frames are not worth sending any more
            self._nursery.start_soon(self._link.close, code, reason)

    def _closed_error(self) -> WebSocketClosed:
        if self._link.close_code is not None:
            return WebSocketClosed(self._link.close_code, self._link.close_reason)
        code, reason = self._ending or (CloseCode.ABNORMAL_CLOSURE, "")
        return WebSocketClosed(code, reason)

    async def _writer(self) -> None:
        try:
            while batch := await self._next_batch():
                for frame in batch:
                    if not await self._link.send(frame):
                        return
        finally:
            self._outbound.close()  # wakes senders blocked on a full queue
            self._writer_done.set()

    async def _next_batch(self) -> list[str | bytes]:
        try:
            return await self._outbound.get_batch()
        except SubscriberDisconnected:  # disconnected: the close is under way
            await trio.lowlevel.checkpoint()
            return []

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
        with ``True`` when ``last_event_id`` was found in history and the
        missed events are being replayed (they may already be queued ahead
        of what the handler sends next). ``capacity``/``overflow`` configure
        the Hub-side queue; a peer the Hub detached for being slow is closed
        with ``CloseCode.SLOW_CONSUMER`` when its forwarder next reads (with
        ``outbound_overflow=BLOCK`` that is once the socket drains, or the
        ``send_timeout`` abort comes first). Raises ``ValueError`` for an
        invalid topic or one already joined, ``RuntimeError`` without a hub.
        """
        if self._hub is None or self._nursery is None:
            raise RuntimeError("serve_websockets(hub=...) is needed to subscribe to topics")
        if topic in self._rooms:
            raise ValueError(f"already subscribed to {topic!r}")
        if self.closed:
            raise self._closed_error()
        recovered: bool = await self._nursery.start(
            self._forward, self._hub, topic, last_event_id, capacity, overflow
        )
        return recovered

    def unsubscribe(self, topic: str) -> None:
        """Leave ``topic`` (no effect if not subscribed). Synchronous."""
        scope = self._rooms.pop(topic, None)
        if scope is not None:
            scope.cancel()

    async def _forward(  # noqa: ASYNC114  started only through WebSocketPeer.subscribe
        self,
        hub: Hub,
        topic: str,
        last_event_id: str | None,
        capacity: int,
        overflow: Overflow,
        task_status: trio.TaskStatus[bool] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with trio.CancelScope() as scope:
            try:
                async with hub.subscribe(
                    topic, last_event_id=last_event_id, capacity=capacity, overflow=overflow
                ) as subscription:
                    self._rooms[topic] = scope
                    task_status.started(subscription.recovered)
                    while batch := await subscription.receive_batch(max_events=capacity):
                        for event in batch:
                            await self.send_event(event)
            except SubscriberDisconnected:
                self._end_slow_consumer(f"fell {capacity} events behind on {topic!r}")
                await trio.lowlevel.checkpoint()
            except WebSocketClosed:
                await trio.lowlevel.checkpoint()
            finally:
                if self._rooms.get(topic) is scope:
                    del self._rooms[topic]

    async def publish(self, topic: str, event: Event) -> Event:
        """Publish ``event`` on ``topic`` through the server's hub; returns it with its id."""
        if self._hub is None:
            raise RuntimeError("serve_websockets(hub=...) is needed to publish")
        return await self._hub.publish(topic, event)

    # -- closing -------------------------------------------------------------------

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection with ``code`` (bounded by the server's ``close_timeout``)."""
        if self._ending is None:
            self._ending = (code, reason)
        await self._link.close(code, reason)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by either side, or lost)."""
        await self._link.closed.wait()

    def statistics(self) -> PeerStatistics:
        """A :class:`PeerStatistics` snapshot (cheap, no checkpoint)."""
        return PeerStatistics(
            messages_received=self._link.received,
            messages_sent=self._link.sent,
            inbound=self._inbound.statistics(),
            outbound=self._outbound.statistics(),
            topics=tuple(sorted(self._rooms)),
            close_code=self._link.close_code,
        )

    # -- lifecycle (driven by the server) --------------------------------------------

    async def _run(self, handler: Handler) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._pump)
                nursery.start_soon(self._writer)
                nursery.start_soon(self._link.heartbeat)
                handler_scope = trio.CancelScope()
                nursery.start_soon(self._cancel_after_close, handler_scope)
                code: int = CloseCode.NORMAL_CLOSURE
                reason = ""
                with handler_scope:
                    code, reason = await self._call(handler)
                if handler_scope.cancelled_caught:
                    logger.info("%s: handler outlived the connection; cancelled it", self.name)
                await self._finish(code, reason)
                nursery.cancel_scope.cancel()
        finally:
            if self._link.ws.closed is None:  # cancelled (server shutdown) or crashed
                shutting_down = trio.current_effective_deadline() == -math.inf
                await self._link.close(  # noqa: ASYNC102  shields itself, bounded by close_timeout
                    CloseCode.GOING_AWAY if shutting_down else CloseCode.INTERNAL_ERROR,
                    "server shutting down" if shutting_down else "internal error",
                )

    async def _pump(self) -> None:
        try:
            await self._link.pump(self._inbound, self._convert)
        finally:
            # The connection is over: iteration ends after what arrived, and
            # senders waiting for room (Overflow.BLOCK) wake up and raise.
            self._inbound.close()
            self._outbound.close()

    async def _call(self, handler: Handler) -> tuple[int, str]:
        await trio.lowlevel.checkpoint()
        try:
            await handler(self)
        except WebSocketClosed:
            pass
        except Exception:
            logger.exception("%s: handler raised; closing with 1011", self.name)
            return CloseCode.INTERNAL_ERROR, "internal error"
        return CloseCode.NORMAL_CLOSURE, ""

    async def _cancel_after_close(self, handler_scope: trio.CancelScope) -> None:
        await self._link.closed.wait()
        await trio.sleep(self._link.settings.close_timeout)
        handler_scope.cancel()

    async def _finish(self, code: int, reason: str) -> None:
        for scope in self._rooms.values():
            scope.cancel()
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        # Let the writer flush what the handler queued, then say goodbye.
        self._outbound.close()
        with trio.move_on_after(self._link.settings.close_timeout):
            await self._writer_done.wait()
        await self.close(code, reason)
