"""The sending half of a server connection: overflow policies, and closing early.

:class:`Delivery` is the base class of ``WebSocketPeer``: everything that
decides what happens to an outgoing frame - written now, queued, dropped,
waited for, or the end of a slow connection - before the outbox takes it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

from ..core import Overflow
from ..protocol import CloseCode
from ._errors import WebSocketClosed
from ._link import Link
from ._outbox import ACCEPTED, CLOSED, FULL, Outbox
from ._records import PeerSettings

if TYPE_CHECKING:
    from ._rooms import Membership

__all__ = ["Delivery"]

logger = logging.getLogger("trio_stream.websocket")


class Delivery:
    """Policies between a connection's senders (handler, rooms) and its :class:`Outbox`.

    Two limits apply to a frame, in this order: its room membership's own
    ``capacity`` (a topic's frames not yet written) with the membership's
    ``overflow``, then the outbound queue's ``outbound_capacity`` with
    ``outbound_overflow``. ``DISCONNECT`` closes the connection with
    ``CloseCode.SLOW_CONSUMER``; ``DROP_NEWEST`` drops the new frame,
    ``DROP_OLDEST`` the oldest one waiting (when all are being written
    already, the new one is kept: at most one chunk more); ``BLOCK`` makes
    the sender wait.
    """

    __slots__ = ("_ending", "_link", "_nursery", "_outbox", "_settings")

    def __init__(
        self, link: Link, outbox: Outbox, settings: PeerSettings, nursery: trio.Nursery
    ) -> None:
        self._link = link
        self._outbox = outbox
        self._settings = settings
        self._nursery = nursery
        self._ending: tuple[int, str] | None = None

    @property
    def name(self) -> str:
        """A short label for logs: connection number and client address."""
        return self._link.name

    def _leave_rooms(self) -> None:
        raise NotImplementedError  # pragma: no cover - WebSocketPeer's

    async def _send_frame(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        outcome = self._deliver(data, None)
        while outcome == FULL:
            await self._outbox.wait_for_room()
            outcome = self._deliver(data, None)
        await trio.lowlevel.cancel_shielded_checkpoint()
        if outcome == CLOSED:
            raise self._closed_error()

    def _deliver(self, data: bytes, member: Membership | None) -> int:
        """Apply the policies to one frame (see the class) and offer it: ACCEPTED/FULL/CLOSED."""
        outbox = self._outbox
        if self._ending is not None or outbox.closed:
            return CLOSED
        if member is not None and member.pending >= member.capacity:
            if member.overflow is Overflow.BLOCK:
                return FULL
            if member.overflow is Overflow.DISCONNECT:
                self._end_slow_consumer(
                    f"fell {member.capacity} events behind on {member.topic!r}"
                )
                return CLOSED
            if member.overflow is Overflow.DROP_NEWEST:
                outbox.dropped += 1
                return ACCEPTED
            outbox.drop_oldest(member)
        if outbox.full:
            overflow = self._settings.outbound_overflow
            if overflow is Overflow.BLOCK:
                return FULL
            if overflow is Overflow.DISCONNECT:
                self._end_slow_consumer(f"outbound queue full, capacity {outbox.capacity}")
                return CLOSED
            if overflow is Overflow.DROP_NEWEST:
                outbox.dropped += 1
                return ACCEPTED
            outbox.drop_oldest(None)
        return ACCEPTED if outbox.offer(data, member) else CLOSED

    def _deliver_batch(self, wires: Sequence[bytes], blob: bytes, member: Membership) -> bool:
        """A room's fast path: the whole batch in one write, when no policy can apply."""
        if self._ending is not None:
            return True  # closing: nothing more goes out
        outbox, count = self._outbox, len(wires)
        if member.pending + count > member.capacity or outbox.frames + count > outbox.capacity:
            return False
        outbox.offer_batch(wires, blob, member)
        return True

    def _feed_now(self, data: bytes) -> int:
        """Offer a replayed frame: FULL means wait for room, whatever the policy."""
        if self._ending is not None or self._outbox.closed:
            return CLOSED
        if self._outbox.full:
            return FULL
        return ACCEPTED if self._outbox.offer(data) else CLOSED

    def _end_slow_consumer(self, why: str) -> None:
        logger.warning(
            "%s: too slow (%s); closing with %d so it reconnects",
            self.name,
            why,
            CloseCode.SLOW_CONSUMER,
        )
        self._outbox.disconnected = True
        self._begin_close(CloseCode.SLOW_CONSUMER, "too slow; reconnect")

    def _begin_close(self, code: int, reason: str) -> None:
        if self._ending is None:
            self._ending = (code, reason)
            self._outbox.discard()  # queued frames are not worth sending any more
            self._leave_rooms()
            with contextlib.suppress(RuntimeError):  # RuntimeError: torn down already
                self._nursery.start_soon(self._link.close, code, reason)

    def _closed_error(self) -> WebSocketClosed:
        if self._link.close_code is not None:
            return WebSocketClosed(self._link.close_code, self._link.close_reason)
        code, reason = self._ending or (CloseCode.ABNORMAL_CLOSURE, "")
        return WebSocketClosed(code, reason)

    async def _stalled(self) -> None:
        # The outbox's drain could not write within send_timeout.
        logger.warning(
            "%s: a send took over %gs (peer not reading); aborting",
            self.name,
            self._link.settings.send_timeout,
        )
        await self._link.abort(CloseCode.ABNORMAL_CLOSURE, "send timeout")
