"""A bounded single-consumer queue with an overflow policy.

A list plus a parked consumer task is cheaper per item than a trio memory
channel (no checkpoint per put, no per-item wake-up when the consumer is
busy), supports dropping the oldest item, and lets the consumer take
everything queued in one step. The Hub puts one queue behind every
subscriber; adapters may use one directly as a per-connection outbox.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

from ._errors import SubscriberDisconnected

__all__ = ["DEFAULT_CAPACITY", "BoundedQueue", "Overflow", "QueueStatistics"]

T = TypeVar("T")

#: Default per-subscriber capacity. 256 events absorb a burst while a
#: client's socket is briefly stalled (a full TCP window, a GC pause) and cost
#: only 256 references: queued events are shared, already-encoded objects, not
#: copies. A reader further behind than that is better served by the
#: ``DISCONNECT`` policy and a resume from history (1000 events by default).
DEFAULT_CAPACITY = 256

_OPEN, _CLOSED, _DISCONNECTED = 0, 1, 2


class Overflow(enum.Enum):
    """What a :class:`BoundedQueue` does with a new item when it is full.

    * ``DISCONNECT`` (the fan-out default): detach the consumer at once, free
      its queued items; its next receive raises :class:`SubscriberDisconnected`
      and its client resumes from history with its last event id. Nothing is
      lost while history covers the gap.
    * ``DROP_OLDEST``: discard the oldest queued item (the queue keeps the
      newest ones): for "latest value wins" feeds such as tickers.
    * ``DROP_NEWEST``: discard the new item (the queue keeps the oldest ones).
    * ``BLOCK``: the producer waits for room. The only policy that can slow a
      producer: meant for single-consumer streams (one LLM answer to one
      client), so that backpressure reaches the producer and, from there, the
      upstream socket.

    Drops are counted in :meth:`BoundedQueue.statistics`.
    """

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    DISCONNECT = "disconnect"


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """A snapshot of one queue's counters.

    ``depth`` items are queued now; ``peak`` is the largest depth seen (at most
    ``capacity``; under ``BLOCK`` at most ``capacity`` plus the producers that
    raced past a wait for room, never more than twice ``capacity``);
    ``delivered`` items went to the consumer; ``dropped`` were discarded by a
    ``DROP_*`` policy; ``disconnected`` is true once the queue
    overflowed under ``DISCONNECT`` (or :meth:`BoundedQueue.disconnect` was
    called); ``closed`` once it accepts nothing more (closed or disconnected).
    """

    capacity: int
    overflow: Overflow
    depth: int
    peak: int
    delivered: int
    dropped: int
    disconnected: bool
    closed: bool


class BoundedQueue(Generic[T]):
    """A queue of at most ``capacity`` items for ONE consuming task.

    ``capacity`` (default :data:`DEFAULT_CAPACITY`, 256; must be at least 1)
    bounds memory; ``overflow`` (default ``Overflow.DISCONNECT``) says what
    happens when it is full. Only one task may receive at a time (a second
    gets :class:`trio.BusyResourceError`); any number may put.

    Putting never waits except under ``Overflow.BLOCK`` (:meth:`put`).
    :meth:`close` ends the queue normally: the consumer drains what is queued,
    then :meth:`get_batch` returns ``[]``. :meth:`disconnect` ends it at once:
    queued items are freed and the next receive raises
    :class:`SubscriberDisconnected`.
    """

    __slots__ = (
        "_capacity",
        "_delivered",
        "_dropped",
        "_items",
        "_limit",
        "_overflow",
        "_peak",
        "_reason",
        "_room",
        "_sink",
        "_state",
        "_waiter",
        "_wake_at",
    )

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, overflow: Overflow = Overflow.DISCONNECT
    ) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError("capacity must be an int >= 1")
        if not isinstance(overflow, Overflow):
            raise TypeError("overflow must be an Overflow member")
        self._capacity = capacity
        # The fast-path bound: equal to capacity while open, -1 once closed so
        # that every put falls through to the slow path that checks the state.
        self._limit = capacity
        self._overflow = overflow
        # A list, not a deque: an empty deque keeps a 512-byte block, and an
        # idle subscriber's queue is empty. Taking everything (the common
        # case) is a slice; the front removals (DROP_OLDEST, partial takes)
        # are bounded by the capacity.
        self._items: list[T] = []
        self._peak = 0
        self._delivered = 0
        self._dropped = 0
        self._state = _OPEN
        self._reason: str | None = None
        self._waiter: trio.lowlevel.Task | None = None
        # The depth at which a put wakes the parked consumer: 1, except while
        # it waits in wait_queued() for a larger batch.
        self._wake_at = 1
        # Producers waiting for room: only BLOCK queues ever have any, and
        # the parking lot is made by the first (most queues never fill).
        self._room: trio.lowlevel.ParkingLot | None = None
        # Offered each item first while the consumer is parked and nothing is
        # queued (see set_sink): None for almost every queue.
        self._sink: Callable[[T], bool] | None = None

    @property
    def capacity(self) -> int:
        """The most items the queue holds (see :class:`Overflow` for ``BLOCK``)."""
        return self._capacity

    @property
    def overflow(self) -> Overflow:
        """The queue's overflow policy."""
        return self._overflow

    def __len__(self) -> int:
        return len(self._items)

    # -- producer side -------------------------------------------------------

    def put_nowait(self, item: T) -> bool:
        """Queue ``item`` without waiting; never a checkpoint.

        Returns False if the queue is closed or disconnected (the item is not
        queued; under ``DISCONNECT`` this put may be the one that overflowed),
        True otherwise, including when a ``DROP_*`` policy dropped an item.
        Under ``BLOCK`` a full queue raises :class:`trio.WouldBlock`.
        """
        if (
            self._overflow is Overflow.BLOCK
            and self._state == _OPEN
            and len(self._items) >= self._capacity
        ):
            raise trio.WouldBlock
        return self._offer(item)

    async def put(self, item: T) -> bool:
        """Queue ``item``; under ``Overflow.BLOCK`` wait for room first.

        Other policies never wait (see :meth:`put_nowait`). Always a
        checkpoint. If cancelled while waiting, the item was not queued.
        Returns False if the queue is (or became) closed or disconnected.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._overflow is Overflow.BLOCK and self._is_full():
            while self._is_full():
                await self._parking_lot().park()
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return self._offer(item)

    def _is_full(self) -> bool:
        return self._state == _OPEN and len(self._items) >= self._capacity

    async def _wait_for_room(self) -> None:
        # Park until the consumer takes something (or the queue ends); the
        # caller re-checks. Used by the Hub for BLOCK subscribers.
        assert self._overflow is Overflow.BLOCK, "only BLOCK queues wait for room"
        await self._parking_lot().park()

    def _parking_lot(self) -> trio.lowlevel.ParkingLot:
        if self._room is None:
            self._room = trio.lowlevel.ParkingLot()
        return self._room

    def set_sink(self, sink: Callable[[T], bool] | None) -> None:
        """Offer items to ``sink(item)`` before queueing them, while the consumer waits.

        While the consuming task is parked (in :meth:`get_batch` or
        :meth:`wait_queued`) and nothing is queued, a put first calls
        ``sink(item)`` in the putting task. True means the sink consumed the
        item: it counts as delivered, is not queued, and the consumer stays
        parked (no task switch). False queues it as usual. For a consumer
        that can finish an item synchronously, such as a writer whose socket
        takes the bytes at once; it must not raise, and it must refuse
        (False) whatever it cannot take now, including while its task waits
        with a batch in hand. ``None`` removes the sink.
        """
        self._sink = sink

    def _offer(self, item: T) -> bool:
        # The per-item, per-subscriber hot path of a fan-out: keep it short.
        items = self._items
        if len(items) < self._limit:
            sink = self._sink
            if sink is not None and not items and self._waiter is not None and sink(item):
                self._delivered += 1
                return True
            items.append(item)
            if len(items) > self._peak:
                self._peak = len(items)
            waiter = self._waiter
            if waiter is not None and len(items) >= self._wake_at:
                self._waiter = None
                trio.lowlevel.reschedule(waiter)
            return True
        return self._offer_full(item)

    def _offer_full(self, item: T) -> bool:
        if self._state != _OPEN:
            return False
        overflow = self._overflow
        if overflow is Overflow.DROP_OLDEST:
            del self._items[0]
            self._items.append(item)
            self._dropped += 1
        elif overflow is Overflow.DROP_NEWEST:
            self._dropped += 1
        elif overflow is Overflow.BLOCK and len(self._items) < 2 * self._capacity:
            # Reached by producers that waited for room and then raced each
            # other (the Hub with an async broker): at most one item each.
            # Past twice the capacity something delivers without waiting for
            # room at all; disconnecting keeps memory bounded and is loud.
            self._items.append(item)
            self._peak = max(self._peak, len(self._items))
        else:
            self.disconnect()
            return False
        return True

    # -- consumer side -------------------------------------------------------

    async def get_batch(self, max_items: int | None = None) -> list[T]:
        """Wait for at least one item, then take up to ``max_items`` at once.

        ``max_items=None`` takes everything queued (at most ``capacity``).
        Returns ``[]`` when the queue was closed and is drained; raises
        :class:`SubscriberDisconnected` once disconnected. Always a
        checkpoint; if cancelled, nothing was taken.
        """
        if max_items is not None and max_items < 1:
            raise ValueError("max_items must be >= 1")
        if self._items or self._state != _OPEN:
            await trio.lowlevel.checkpoint()
        else:
            # Blocking is a checkpoint: trio delivers a pending cancellation
            # here, so no separate checkpoint_if_cancelled() is needed.
            self._claim_wakeup()
            await trio.lowlevel.wait_task_rescheduled(self._abort_receive)
        # Read after the waits: a take swaps the list for a new one.
        while not self._items and self._state == _OPEN:
            # Another task took the items while we were rescheduled.
            self._claim_wakeup()
            await trio.lowlevel.wait_task_rescheduled(self._abort_receive)
        items = self._items
        if max_items is None and items:
            # The common case, inlined: take everything.
            batch, self._items = items, []
            self._delivered += len(batch)
            if self._room is not None and self._room:
                self._room.unpark_all()
            return batch
        return self.get_batch_nowait(max_items)

    async def wait_queued(self, count: int) -> None:
        """Wait until at least ``count`` items are queued (or the queue ended); take none.

        ``count`` is capped at ``capacity``. For a consumer that writes in
        batches and prefers one large batch to many small ones: it stays
        parked, costing no scheduler round, while a fast producer fills the
        queue; then :meth:`get_batch_nowait` takes the lot. Bound the wait
        with a cancel scope (``trio.move_on_at``): a producer that stops
        short of ``count`` never wakes it. Always a checkpoint; one receiving
        task at a time, like :meth:`get_batch`.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        count = min(count, self._capacity)
        if len(self._items) >= count or self._state != _OPEN:
            await trio.lowlevel.checkpoint()
            return
        self._claim_wakeup()
        self._wake_at = count
        try:
            await trio.lowlevel.wait_task_rescheduled(self._abort_receive)
        finally:
            self._wake_at = 1

    def release(self) -> None:
        """Return a consumer waiting in :meth:`wait_queued` at once (no effect otherwise).

        Synchronous, never a checkpoint: for whoever knows that no more
        items are coming soon (a paused producer).
        """
        waiter = self._waiter
        if waiter is not None and self._wake_at > 1:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)

    def _claim_wakeup(self) -> None:
        if self._waiter is not None:
            raise trio.BusyResourceError("another task is already receiving from this queue")
        self._waiter = trio.lowlevel.current_task()

    def _abort_receive(self, _: object) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def get_batch_nowait(self, max_items: int | None = None) -> list[T]:
        """Take up to ``max_items`` queued items without waiting.

        Raises :class:`trio.WouldBlock` when the queue is open and empty,
        :class:`SubscriberDisconnected` when disconnected; returns ``[]`` when
        closed and drained.
        """
        if max_items is not None and max_items < 1:
            raise ValueError("max_items must be >= 1")
        items = self._items
        if items:
            if max_items is None or len(items) <= max_items:
                batch, self._items = items, []
            else:
                batch = items[:max_items]
                del items[:max_items]
            self._delivered += len(batch)
            if self._room is not None and self._room:
                self._room.unpark_all()
            return batch
        if self._state == _DISCONNECTED:
            if self._reason is not None:
                raise SubscriberDisconnected(
                    f"disconnected: {self._reason}; resume from the last event id"
                )
            raise SubscriberDisconnected(
                f"disconnected: more than {self._capacity} items behind;"
                " resume from the last event id"
            )
        if self._state == _CLOSED:
            return []
        raise trio.WouldBlock

    # -- ending --------------------------------------------------------------

    def close(self) -> None:
        """End the queue normally: no more puts; the consumer drains, then gets ``[]``.

        Synchronous, so it cannot be cancelled. Idempotent; no effect on a
        disconnected queue.
        """
        if self._state == _OPEN:
            self._state = _CLOSED
            self._end()

    def disconnect(self, reason: str | None = None) -> None:
        """End the queue at once: free queued items; the next receive raises.

        What ``Overflow.DISCONNECT`` does on overflow (then without
        ``reason``). ``reason`` (e.g. "the broker is unavailable") goes into
        the :class:`SubscriberDisconnected` message instead of "N items
        behind". Synchronous; idempotent (the first reason stays).
        """
        if self._state != _DISCONNECTED:
            self._state = _DISCONNECTED
            self._reason = reason
            self._items.clear()
            self._end()

    def _end(self) -> None:
        self._limit = -1
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)
        if self._room is not None:
            self._room.unpark_all()

    @property
    def closed(self) -> bool:
        """True once the queue accepts no more items (closed or disconnected)."""
        return self._state != _OPEN

    @property
    def disconnected(self) -> bool:
        """True once the queue was disconnected (overflow under ``DISCONNECT``)."""
        return self._state == _DISCONNECTED

    def statistics(self) -> QueueStatistics:
        """Return a :class:`QueueStatistics` snapshot (cheap; no checkpoint)."""
        return QueueStatistics(
            capacity=self._capacity,
            overflow=self._overflow,
            depth=len(self._items),
            peak=self._peak,
            delivered=self._delivered,
            dropped=self._dropped,
            disconnected=self._state == _DISCONNECTED,
            closed=self._state != _OPEN,
        )
