"""A connection's outgoing side: one bounded FIFO of frames in front of the socket.

The server hands trio-websocket an :class:`Outbox` as the stream to wrap, so
its handshake, control and close frames come through :meth:`Outbox.send_all`;
the server queues its data frames with :meth:`Outbox.offer`, already framed
(``wire_frame``). One FIFO for both keeps every frame whole and in order
without sharing trio-websocket's send lock (private, and a task switch per
frame), and lets a batch of frames go out in ONE write.

When nothing is queued and the transport is a plain TCP socket, bytes go to
the socket at once, synchronously: no task switch, one ``send`` for a whole
batch. What the kernel does not take is queued, and a drain task - started
then, gone once the queue is empty - writes the rest with ``send_all``, each
step bounded by ``send_timeout``. TLS and in-memory streams always go through
the drain task (so do all streams on Windows).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import trio
from trio_websocket import WebSocketConnection

from ..core import Overflow, QueueStatistics

__all__ = ["ACCEPTED", "CLOSED", "FULL", "Outbox", "Tally"]

# What an offer of a frame came to (see WebSocketPeer._deliver).
ACCEPTED, FULL, CLOSED = 0, 1, 2

# The most bytes one drain step joins into a single send_all: big enough to
# batch a backlog of small frames, small enough not to copy megabytes at once.
_CHUNK = 65536


class Tally:
    """What queued frames are charged to: counts its frames not written yet."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = 0


# A queued item: bytes, and who it is charged to - None (the handler), a Tally
# (a room membership), or an int: the sequence number of a control write that
# trio-websocket is waiting for. A memoryview is the rest of a frame whose
# beginning is already on the wire: it is never dropped.
_Item = tuple[bytes | memoryview, Tally | int | None]


class Outbox(trio.abc.Stream):
    """The byte stream trio-websocket wraps, and the server's queue of data frames.

    ``capacity`` bounds the data frames waiting (``outbound_capacity``);
    control frames are never refused nor counted. ``overflow`` is only
    reported in :meth:`statistics`: the peer applies the policy. A drain
    step over ``send_timeout`` closes it (see :attr:`on_stall`).
    """

    __slots__ = (
        "_closed",
        "_controls_queued",
        "_controls_sent",
        "_draining",
        "_frames",
        "_items",
        "_lot",
        "_nursery",
        "_refusing",
        "_send_timeout",
        "_socket",
        "_stream",
        "capacity",
        "disconnected",
        "dropped",
        "on_stall",
        "overflow",
        "peak",
        "sent",
        "ws",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        nursery: trio.Nursery,
        *,
        capacity: int,
        overflow: Overflow,
        send_timeout: float,
    ) -> None:
        self._stream = stream
        # Direct writes need a plain TCP socket's descriptor (TLS must encrypt;
        # on Windows a socket is not a file descriptor).
        self._socket: trio.socket.SocketType | None = None
        if isinstance(stream, trio.SocketStream) and os.name == "posix":
            self._socket = stream.socket
        self._nursery = nursery
        self.capacity = capacity
        self.overflow = overflow
        self._send_timeout = send_timeout
        #: Awaited when a write takes over ``send_timeout`` (the peer logs and
        #: aborts); until set, the transport is just closed.
        self.on_stall: Callable[[], Awaitable[None]] | None = None
        #: Set once accepted: data frames go out only while the WebSocket is open.
        self.ws: WebSocketConnection | None = None
        self._items: deque[_Item] | None = None  # created on the first backlog
        self._frames = 0  # data frames queued
        self._draining = False  # a drain task owns the socket's writes
        self._closed = False
        self._refusing = False  # disconnected: no more data frames
        self._lot: trio.lowlevel.ParkingLot | None = None
        self._controls_queued = 0
        self._controls_sent = 0
        self.sent = 0  # data frames written
        self.peak = 0
        self.dropped = 0
        self.disconnected = False

    # -- data frames (the server) ------------------------------------------------

    @property
    def full(self) -> bool:
        """True when ``capacity`` data frames are waiting."""
        return self._frames >= self.capacity

    @property
    def frames(self) -> int:
        """Data frames waiting (not counting a chunk being written)."""
        return self._frames

    @property
    def closed(self) -> bool:
        """True once data frames are refused (closed transport or WebSocket, disconnected)."""
        return not self._accepting()

    def _accepting(self) -> bool:
        ws = self.ws
        return not (self._closed or self._refusing or ws is None or ws.closed is not None)

    def offer(self, data: bytes, owner: Tally | None = None) -> bool:
        """Write ``data`` (one whole frame) now or queue it; False once closed.

        Never waits and ignores ``capacity``: the caller checked :attr:`full`.
        """
        if not self._accepting():
            return False
        if self._draining or self._socket is None:
            self._queue(data, owner)
            self._start_drain()
            return True
        written = self._write_now(data)
        if written == len(data):
            self.sent += 1
            return True
        if written < 0:
            return False
        self._queue(memoryview(data)[written:] if written else data, owner)
        self._start_drain()
        return True

    def offer_batch(self, frames: Sequence[bytes], blob: bytes, owner: Tally) -> bool:
        """:meth:`offer` for several frames, ``blob`` being their concatenation: ONE write."""
        if not self._accepting():
            return False
        if self._draining or self._socket is None:
            for frame in frames:
                self._queue(frame, owner)
            self._start_drain()
            return True
        written = self._write_now(blob)
        if written == len(blob):
            self.sent += len(frames)
            return True
        if written < 0:
            return False
        offset = 0
        for frame in frames:
            end = offset + len(frame)
            if end <= written:
                self.sent += 1
            elif offset >= written:
                self._queue(frame, owner)
            else:
                self._queue(memoryview(frame)[written - offset :], owner)
            offset = end
        self._start_drain()
        return True

    def drop_oldest(self, owner: Tally | None) -> bool:
        """Drop the oldest queued data frame (of ``owner``, unless None) not yet started."""
        items = self._items
        if not items:
            return False
        for index, (data, charged) in enumerate(items):
            if isinstance(charged, int) or isinstance(data, memoryview):
                continue
            if owner is None or charged is owner:
                del items[index]
                self._frames -= 1
                self.dropped += 1
                if charged is not None:
                    charged.pending -= 1
                return True
        return False

    def discard(self) -> None:
        """Refuse data frames from now on and drop the queued ones (a disconnect).

        Control frames and the rest of a frame already started stay, so the
        close frame that follows is well-formed.
        """
        self._refusing = True
        items = self._items
        if items:
            kept = [item for item in items if type(item[1]) is int or type(item[0]) is memoryview]
            items.clear()
            items.extend(kept)
            self._frames = sum(type(item[1]) is not int for item in kept)

    async def wait_for_room(self) -> None:
        """Wait until the drain made progress or the outbox closed; the caller re-checks."""
        if not self._draining or self._closed:
            await trio.lowlevel.checkpoint()
            return
        if self._lot is None:
            self._lot = trio.lowlevel.ParkingLot()
        await self._lot.park()

    def statistics(self) -> QueueStatistics:
        """The data frames' queue, as a :class:`QueueStatistics` snapshot."""
        return QueueStatistics(
            capacity=self.capacity,
            overflow=self.overflow,
            depth=self._frames,
            peak=self.peak,
            delivered=self.sent,
            dropped=self.dropped,
            disconnected=self.disconnected,
            closed=self.closed,
        )

    # -- the queue and its drain task ---------------------------------------------

    def _queue(self, data: bytes | memoryview, owner: Tally | None) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append((data, owner))
        if owner is not None:
            owner.pending += 1
        self._frames += 1
        if self._frames > self.peak:
            self.peak = self._frames

    def _write_now(self, data: bytes | memoryview) -> int:
        assert self._socket is not None
        try:
            # fileno() is -1 once the socket is closed, so a reused number is never hit.
            return os.write(self._socket.fileno(), data)
        except BlockingIOError:
            return 0
        except OSError:  # reset, broken pipe, closed: the connection is lost
            self._close_now()
            self._socket.close()  # the reader sees it too, and ends the WebSocket (1006)
            return -1

    def _start_drain(self) -> None:
        if self._draining or self._closed:
            return
        try:
            self._nursery.start_soon(self._drain)
        except RuntimeError:  # the connection's nursery is closing: nothing more goes out
            self._close_now()
            return
        self._draining = True

    async def _drain(self) -> None:  # noqa: ASYNC910  only started with items queued
        items = self._items
        assert items is not None
        try:
            while items and not self._closed:
                chunk, frames, owners, control = self._take(items)
                with trio.move_on_after(self._send_timeout) as scope:
                    await self._stream.send_all(chunk)
                if scope.cancelled_caught:
                    self._close_now()
                    if self.on_stall is not None:
                        await self.on_stall()
                    else:
                        await trio.aclose_forcefully(self._stream)
                    return
                self.sent += frames
                for owner in owners:
                    owner.pending -= 1
                if control:
                    self._controls_sent = control
                self._wake()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._close_now()
        finally:
            self._draining = False
            self._wake()

    def _take(self, items: deque[_Item]) -> tuple[bytes | memoryview, int, list[Tally], int]:
        parts: list[bytes | memoryview] = []
        owners: list[Tally] = []
        size = frames = control = 0
        while items and (not parts or size + len(items[0][0]) <= _CHUNK):
            data, owner = items.popleft()
            parts.append(data)
            size += len(data)
            if type(owner) is int:
                control = owner
            else:
                frames += 1
                if owner is not None:
                    owners.append(owner)  # type: ignore[arg-type]
        self._frames -= frames
        self._wake()  # room in the queue already
        return (parts[0] if len(parts) == 1 else b"".join(parts)), frames, owners, control

    def _wake(self) -> None:
        if self._lot:
            self._lot.unpark_all()

    def _close_now(self) -> None:
        self._closed = True
        if self._items:
            self._items.clear()
            self._frames = 0
        self._wake()

    # -- trio.abc.Stream, for trio-websocket -------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write trio-websocket's bytes in turn with the queued frames; wait until written."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("the connection is closed")
        pending: bytes | memoryview = bytes(data)
        if not self._draining and self._socket is not None:
            written = self._write_now(pending)
            if written == len(pending):
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            if written < 0:
                raise trio.BrokenResourceError("the connection was lost")
            pending = memoryview(pending)[written:]
        if self._items is None:
            self._items = deque()
        self._controls_queued += 1
        ticket = self._controls_queued
        self._items.append((pending, ticket))
        self._start_drain()
        while self._controls_sent < ticket:
            if self._closed:
                raise trio.BrokenResourceError("the connection was lost")
            if self._lot is None:
                self._lot = trio.lowlevel.ParkingLot()
            await self._lot.park()
        await trio.lowlevel.cancel_shielded_checkpoint()  # (the loop always parks; for linters)

    async def wait_send_all_might_not_block(self) -> None:
        """Part of the Stream interface; trio-websocket does not use it."""
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Read from the transport (trio-websocket's reader task)."""
        return await self._stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        """Close the transport; queued bytes are dropped, waiting writers fail."""
        self._close_now()
        await self._stream.aclose()
