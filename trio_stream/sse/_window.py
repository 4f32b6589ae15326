"""The export window: a bounded buffer of encoded chunks whose room is freed by the socket.

A trio memory channel frees a slot as soon as the writer *takes* an item, so
a producer can refill it while that item is still being written: it runs
up to ``capacity`` plus one write ahead of the socket. Here a chunk keeps its
slot until the write carrying it has returned (:meth:`ChunkWindow.release`),
so the source is never more than ``capacity`` chunks ahead of the socket,
and the memory held by a stream is at most ``capacity`` chunks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

import trio

__all__ = ["ChunkSender", "ChunkWindow"]

T = TypeVar("T")


class ChunkWindow:
    """At most ``capacity`` chunks between a source and the socket: queued or being written.

    One consumer (the writer) takes chunks with :meth:`take` (up to
    ``write_size`` bytes per write) and frees their room with :meth:`release`
    once the write returned; producers wait in :meth:`wait_for_room`, then
    :meth:`put_nowait`. :meth:`close_sending` ends the stream after a drain;
    :meth:`close` ends it at once (producers then get
    :class:`trio.BrokenResourceError`).
    """

    def __init__(self, capacity: int, write_size: int) -> None:
        self.capacity = capacity
        self.write_size = write_size
        self._items: deque[bytes] = deque()
        self._in_hand = 0
        self.in_hand_bytes = 0
        self._room = trio.lowlevel.ParkingLot()
        self._arrived = trio.lowlevel.ParkingLot()
        self._sending_closed = False
        self._closed = False
        self.produced = 0
        self.peak_in_flight = 0

    @property
    def queued(self) -> int:
        """Chunks waiting for the writer."""
        return len(self._items)

    @property
    def in_flight(self) -> int:
        """Chunks queued or being written: never more than ``capacity``."""
        return len(self._items) + self._in_hand

    # -- producer side ---------------------------------------------------------

    async def wait_for_room(self) -> None:
        """Wait until a chunk may be put; always a checkpoint.

        Raises :class:`trio.BrokenResourceError` once the window was closed
        (the response ended), :class:`trio.ClosedResourceError` once sending
        was closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.in_flight >= self.capacity and not self._closed:
            while self.in_flight >= self.capacity and not self._closed:
                await self._room.park()
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
        self._check_open()

    def put_nowait(self, chunk: bytes) -> None:
        """Queue ``chunk``; :class:`trio.WouldBlock` when there is no room."""
        self._check_open()
        if self.in_flight >= self.capacity:
            raise trio.WouldBlock
        self._items.append(chunk)
        self.produced += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self._arrived.unpark_all()

    def _check_open(self) -> None:
        if self._closed:
            raise trio.BrokenResourceError("the response ended")
        if self._sending_closed:
            raise trio.ClosedResourceError("the export's send channel is closed")

    def close_sending(self) -> None:
        """The source is done: the writer drains what is queued, then the stream ends."""
        self._sending_closed = True
        self._arrived.unpark_all()

    # -- consumer side ---------------------------------------------------------

    async def take(self, max_items: int) -> list[bytes]:
        """Wait for a chunk, then take queued chunks for one write.

        Takes at most ``max_items`` chunks, and stops once the chunks taken
        and not yet released hold ``write_size`` bytes (the first one
        is taken whatever its size). ``[]`` once the stream ended, or when
        the chunks in hand already fill a write. Always a checkpoint.
        """
        while not self._items and not self._sending_closed and not self._closed:
            await self._arrived.park()
        await trio.lowlevel.checkpoint()  # one per write: cheap next to the send
        batch: list[bytes] = []
        items = self._items
        while items and len(batch) < max_items and not self._closed:
            if self._in_hand and self.in_hand_bytes >= self.write_size:
                break
            chunk = items.popleft()
            batch.append(chunk)
            self._in_hand += 1
            self.in_hand_bytes += len(chunk)
        return batch

    def release(self) -> None:
        """The write carrying the chunks taken so far returned (or failed): free their room."""
        self._in_hand = 0
        self.in_hand_bytes = 0
        self._room.unpark_all()

    def close(self) -> None:
        """End the window at once (idempotent): queued chunks are dropped."""
        self._closed = True
        self._items.clear()
        self._arrived.unpark_all()
        self._room.unpark_all()


class ChunkSender(trio.abc.SendChannel[T], Generic[T]):
    """The send channel an export producer writes to: ``await send_channel.send(item)``.

    Each item is encoded (``encode``) into a chunk in the producer's task, so
    an item that cannot be encoded fails the producer, not the writer.
    :meth:`send` waits while the window is full (backpressure from the
    socket). Closing it (``async with send_channel:``, or returning from
    the producer) ends the export after what was sent.
    """

    def __init__(self, window: ChunkWindow, encode: Callable[[T], bytes]) -> None:
        self._window = window
        self._encode = encode

    async def send(self, value: T) -> None:
        """Wait for room, then queue ``value`` encoded. A checkpoint."""
        await self._window.wait_for_room()
        self._window.put_nowait(self._encode(value))

    async def fill_from(self, iterator: AsyncIterator[T]) -> None:
        """Send every item of ``iterator``, pulling the next one only when there is room.

        Waits for room *before* asking the iterator, so the source is never
        more than the window's capacity ahead of the socket. While there is
        room it does not stop at a checkpoint per item (the window then
        fills in one go, which is what makes large writes); it still
        checkpoints at least once per ``capacity`` items, for fairness.
        """
        window = self._window
        since_checkpoint = 0
        while True:
            if window.in_flight >= window.capacity or since_checkpoint >= window.capacity:
                await window.wait_for_room()
                since_checkpoint = 0
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                break
            window.put_nowait(self._encode(item))
            since_checkpoint += 1
        await trio.lowlevel.checkpoint()

    def send_nowait(self, value: T) -> None:
        """Queue ``value`` encoded, or raise :class:`trio.WouldBlock` when full."""
        self._window.put_nowait(self._encode(value))

    def close(self) -> None:
        """End the export after what was sent (idempotent, synchronous)."""
        self._window.close_sending()

    async def aclose(self) -> None:
        """:meth:`close`, as an async method (a checkpoint)."""
        self.close()
        await trio.lowlevel.checkpoint()

    def __enter__(self) -> ChunkSender[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
