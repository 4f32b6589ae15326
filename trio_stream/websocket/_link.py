"""One open trio-websocket connection, driven the same way on both sides.

A :class:`Link` owns the parts that the server's peers and the reconnecting
client share: the *pump* that drains trio-websocket's receive queue into our
own bounded inbox (trio-websocket's reader stops answering pings while its
queue is full, so it must never be left full), the heartbeat, bounded sends,
and a close that always ends: a close frame within ``close_timeout``, else the
TCP connection is aborted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection

from ..core import BoundedQueue, heartbeat
from ..protocol import CloseCode

__all__ = ["Link", "LinkSettings", "Violation"]

logger = logging.getLogger("trio_stream.websocket")


class _NoPong(Exception):
    """A ping went unanswered for ``pong_timeout``."""


class Violation(Exception):
    """Raised by a link's frame converter: close the connection with ``code``.

    Internal: the message is logged, ``reason`` (short, fixed text) goes to the
    peer in the close frame.
    """

    def __init__(self, code: int, reason: str, log_message: str) -> None:
        super().__init__(log_message)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Timing knobs shared by server peers and client connections (seconds)."""

    heartbeat_interval: float | None
    pong_timeout: float
    send_timeout: float
    close_timeout: float

    def __post_init__(self) -> None:
        if self.heartbeat_interval is not None and self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive (or None to disable)")
        for name in ("pong_timeout", "send_timeout", "close_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


class Link:
    """Drives one :class:`trio_websocket.WebSocketConnection` over a stream we own.

    ``stream`` is the transport under ``ws``: owning it lets the link abort a
    connection whose peer stopped reading (a close frame cannot get through a
    full socket) and guarantees the socket is closed however the link ends.
    """

    __slots__ = (
        "_ping_scope",
        "_ping_waived",
        "_stalled",
        "_stopped",
        "_stream",
        "close_code",
        "close_reason",
        "closed",
        "name",
        "received",
        "sent",
        "settings",
        "ws",
    )

    def __init__(
        self, ws: WebSocketConnection, stream: trio.abc.Stream, settings: LinkSettings, name: str
    ) -> None:
        self.ws = ws
        self.name = name
        self.settings = settings
        self._stream = stream
        #: Set once the WebSocket is closed (or lost) and the pump has stopped.
        self.closed = trio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.received = 0
        self.sent = 0
        self._stalled = False
        self._stopped = False  # no more pings: the connection is being torn down
        self._ping_scope: trio.CancelScope | None = None
        self._ping_waived = False  # the ping in flight was cancelled by a stall

    # -- receiving -------------------------------------------------------------

    async def pump(
        self, inbox: Callable[[], BoundedQueue[Any]], convert: Callable[[str | bytes], Any]
    ) -> None:
        """Move every incoming frame, through ``convert``, into ``inbox()`` until the close.

        ``inbox()`` returns the queue, created on first use by the server (an
        idle connection never needs one); it must use ``Overflow.BLOCK``:
        when the application falls
        behind, the pump waits (TCP backpressure reaches the peer) and the
        heartbeat's pong deadline is suspended meanwhile, so that our own
        slowness is never mistaken for a dead peer. ``convert`` raises
        :class:`Violation` to close the connection with its code.
        """
        try:
            while (frame := await self._next_frame()) is not None:
                violation = await self.receive_frame(frame, inbox, convert)
                if violation is not None:
                    await self.close(violation.code, violation.reason)
                    return
        finally:
            self.closed.set()

    async def receive_frame(
        self,
        frame: str | bytes,
        inbox: Callable[[], BoundedQueue[Any]],
        convert: Callable[[str | bytes], Any],
    ) -> Violation | None:
        """Count, convert and queue one incoming frame (see :meth:`pump`).

        Returns the :class:`Violation` (already logged) when ``convert``
        refused the frame: the caller closes the connection with its code.
        """
        self.received += 1
        try:
            item = convert(frame)
        except Violation as violation:
            logger.warning("%s: %s; closing with %d", self.name, violation, violation.code)
            await trio.lowlevel.checkpoint()
            return violation
        queue = inbox()
        try:
            queue.put_nowait(item)
        except trio.WouldBlock:
            await self._put_stalled(queue, item)
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return None

    async def _next_frame(self) -> str | bytes | None:
        try:
            return await self.ws.get_message()
        except ConnectionClosed as exc:
            reason = exc.reason
            self.record_close(reason.code if reason else CloseCode.ABNORMAL_CLOSURE, reason)
            await trio.lowlevel.checkpoint()  # get_message may raise without one
            return None

    async def _put_stalled(self, inbox: BoundedQueue[Any], item: Any) -> None:
        self._stalled = True
        if self._ping_scope is not None:
            # While our inbox is full the reader cannot take a pong: the ping in
            # flight is waived, not failed (our slowness is not a dead peer).
            self._ping_waived = True
            self._ping_scope.cancel()
        try:
            await inbox.put(item)
        finally:
            self._stalled = False
            if self._ping_scope is not None:
                # A ping sent during the stall has no deadline yet: the peer
                # gets a full pong_timeout from the moment we read again.
                self._ping_scope.deadline = trio.current_time() + self.settings.pong_timeout

    def record_close(self, code: int, reason: CloseReason | None) -> None:
        """Note how the WebSocket ended (a close we started keeps the code we sent)."""
        if self.close_code is None:
            self.close_code = int(code)
            self.close_reason = (reason.reason if reason else None) or ""
        if self.close_code == CloseCode.MESSAGE_TOO_BIG:
            logger.warning("%s: message over the size limit; closed with 1009", self.name)
        elif self.close_code == CloseCode.ABNORMAL_CLOSURE:
            logger.info("%s: connection lost without a close frame", self.name)
        else:
            logger.debug("%s: closed with %d", self.name, self.close_code)

    # -- heartbeat -------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Ping every ``heartbeat_interval``; abort if no pong within ``pong_timeout``.

        A dead or frozen peer is detected within ``interval + pong_timeout``.
        Returns when the connection closes (or at once if the heartbeat is off).
        """
        interval = self.settings.heartbeat_interval
        if interval is None:
            await trio.lowlevel.checkpoint()
            return
        try:
            await heartbeat(self._ping_once, interval=interval, immediate=False)
        except ConnectionClosed:
            await trio.lowlevel.checkpoint()
        except _NoPong:
            await self._dead()

    async def probe(self) -> None:
        """Ping once; abort the connection if no pong comes within ``pong_timeout``.

        What the server's heartbeat wheel starts when a connection's ping is
        due. Returns at once when the connection is closed, or when
        :meth:`stop_probe` is called meanwhile.
        """
        try:
            await self._ping_once()
        except ConnectionClosed:
            await trio.lowlevel.checkpoint()
        except _NoPong:
            await self._dead()

    async def _dead(self) -> None:
        logger.warning(
            "%s: no pong within %gs; peer is dead, aborting", self.name, self.settings.pong_timeout
        )
        await self.abort(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")

    def stop_probe(self) -> None:
        """Stop a ping in flight (trio-websocket does not end them on close) and any later one."""
        self._stopped = True
        if self._ping_scope is not None:
            self._ping_scope.cancel()

    async def _ping_once(self) -> None:
        if self._stopped:
            await trio.lowlevel.checkpoint()
            return
        self._ping_waived = False
        with trio.CancelScope() as scope:
            self._ping_scope = scope
            if not self._stalled:  # else the deadline is set when reading resumes
                scope.deadline = trio.current_time() + self.settings.pong_timeout
            try:
                await self.ws.ping()
            finally:
                self._ping_scope = None
        if scope.cancelled_caught and not self._stopped and not self._ping_waived:
            raise _NoPong

    # -- sending and closing -----------------------------------------------------

    async def send(self, frame: str | bytes) -> bool:
        """Send one frame within ``send_timeout``; False if the connection is gone.

        A peer that does not take a frame within ``send_timeout`` has stopped
        reading: the connection is aborted (no close frame can get through).
        """
        with trio.move_on_after(self.settings.send_timeout):
            try:
                await self.ws.send_message(frame)
            except ConnectionClosed:
                await trio.lowlevel.checkpoint()  # send_message may raise without one
                return False
            self.sent += 1
            return True
        logger.warning(
            "%s: a send took over %gs (peer not reading); aborting",
            self.name,
            self.settings.send_timeout,
        )
        await self.abort(CloseCode.ABNORMAL_CLOSURE, "send timeout")
        return False

    async def close(self, code: int, reason: str = "") -> None:
        """Close with ``code``: send a close frame, wait for the peer's, at most ``close_timeout``.

        Idempotent. If the handshake does not finish in time the connection is
        aborted. When the calling task is being cancelled (a server shutting
        down) the close is shielded, still bounded by ``close_timeout``.
        """
        if self.close_code is None and self.ws.closed is None:
            self.close_code, self.close_reason = code, reason
        cancelled = trio.current_effective_deadline() <= trio.current_time()
        with trio.move_on_after(self.settings.close_timeout) as scope:
            scope.shield = cancelled
            await self.ws.aclose(code, reason)
        if scope.cancelled_caught:
            logger.info(
                "%s: no close reply within %gs; aborting", self.name, self.settings.close_timeout
            )
            await self.abort(code, reason)

    async def abort(self, code: int, reason: str) -> None:
        """Close the TCP connection at once, without a close handshake."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        await trio.aclose_forcefully(self._stream)
