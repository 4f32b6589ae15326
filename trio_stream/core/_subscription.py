"""A Hub subscription: replayed events first, then live ones, each exactly once."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import trio

from ..protocol import Event
from ._queue import BoundedQueue, QueueStatistics

__all__ = ["PACED_GAP", "Subscription", "TopicActivity"]

PACED_GAP = 0.01
"""Seconds without an event after which a topic's next event may go to sinks.

A topic publishing faster than 100 events per second gains more from its
consumers gathering events into large batches than from each event being
written as it comes."""

# The sinks' writes may take at most 1/_INLINE_SHARE of a paced topic's time.
_INLINE_SHARE = 5.0
# See TopicActivity.delivered.
_GROWTH = 4.0
# A topic kept from its sinks only by the cost of its inline deliveries tries
# again after this many events: its fan-out may have shrunk since.
_RETRY_AFTER = 8


class TopicActivity:
    """What the subscribers of one topic share to gather events into large batches (internal).

    ``published`` counts the events delivered on the topic. Subscribers
    waiting in :meth:`Subscription.wait_queued` park in ``waiting``, except
    one, the ``watcher``, which checks every scheduler round whether the
    topic still grows and wakes them all once it stopped: one task per
    topic pays a round per event, not every subscriber.

    :meth:`paced` decides whether an event is offered to the subscribers'
    sinks (see :meth:`Subscription.set_sink`).
    """

    __slots__ = (
        "_delivered_at",
        "_held_back",
        "_inline_cost",
        "published",
        "waiting",
        "watched",
    )

    def __init__(self) -> None:
        self.published = 0
        self.waiting: dict[BoundedQueue[Event], None] = {}
        self.watched = False
        # trio's clock starts at 0 or later: a topic's first event is paced.
        self._delivered_at = -PACED_GAP
        self._inline_cost = 0.0
        self._held_back = 0

    def paced(self, now: float) -> bool:
        """Whether the event delivered at ``now`` goes to sinks; call once per delivery.

        Yes when the topic published nothing for :data:`PACED_GAP` seconds, and
        for five times as long as the last delivery with sinks took (see
        :meth:`delivered`): the sinks' writes, done by the publisher, then
        take at most a fifth of the topic's time. A burst, or a fan-out so
        large that writing it inline would slow the publisher down, is
        queued instead, and its consumers gather it into large batches.
        Every eighth event held back by that cost alone goes to the sinks
        all the same, measuring it again (see :meth:`delivered`).
        """
        gap = now - self._delivered_at
        self._delivered_at = now
        if gap < PACED_GAP:
            return False
        if gap >= _INLINE_SHARE * self._inline_cost:
            return True
        self._held_back += 1
        return self._held_back % _RETRY_AFTER == 0

    def delivered(self, cost: float) -> None:
        """Record how long the last paced delivery took (seconds).

        The estimate follows a cheaper delivery at once, a dearer one by at
        most ``_GROWTH`` times: one delivery stalled by something else (the
        garbage collector, another process on the core) does not hold the
        topic back, and a fan-out that really grew is known within a few.
        """
        previous = self._inline_cost
        self._inline_cost = min(cost, _GROWTH * previous) if previous else cost
        self._held_back = 0

    async def gather(self, queue: BoundedQueue[Event], count: int) -> None:
        """Wait until ``queue`` holds ``count`` items, it ended, or the topic paused."""
        if len(queue) >= count or queue.closed:
            await trio.lowlevel.checkpoint()
            return
        if self.watched:
            self.waiting[queue] = None
            try:
                await queue.wait_queued(count)
            finally:
                del self.waiting[queue]
            return
        self.watched = True
        try:
            still = 0
            # Paused: nothing published for two rounds (one can fall between
            # the publisher's turn and ours).
            while True:
                seen = self.published
                await trio.lowlevel.checkpoint()
                still = still + 1 if self.published == seen else 0
                if still == 2 or len(queue) >= count or queue.closed:
                    break
        finally:
            # Whatever ended the watch (pause, full batch, cancellation), no
            # one watches any more: the others go and send what they have.
            self.watched = False
            for waiting in self.waiting:
                waiting.release()


class Subscription:
    """One subscriber of a topic, yielded by ``Hub.subscribe``.

    Async-iterable of :class:`Event`; or take what is queued in one step with
    :meth:`receive_batch`. Iteration ends normally when the Hub closes (after
    the queued events); it raises :class:`SubscriberDisconnected` if the
    subscriber fell ``capacity`` events behind under ``Overflow.DISCONNECT``
    - resubscribe with :attr:`last_event_id` to recover from history.

    Only one task may receive at a time (another gets
    :class:`trio.BusyResourceError`).
    """

    def __init__(
        self,
        topic: str,
        queue: BoundedQueue[Event],
        position: Callable[[str], tuple[int, ...] | None],
        *,
        recovered: bool,
        replay: Sequence[Event] = (),
        seen_through: tuple[int, ...] | None = None,
        activity: TopicActivity | None = None,
    ) -> None:
        self._topic = topic
        self._queue = queue
        self._position = position
        self._recovered = recovered
        # Most subscriptions replay nothing: no deque (most of a KiB) for them.
        self._replay: deque[Event] | None = deque(replay) if replay else None
        # Live events at or before this position were already replayed (or
        # seen by the client before it resumed): skipped once, then None.
        self._seen_through = seen_through
        self._last_event_id: str | None = None
        # Shared by the topic's subscribers (None: a subscription built
        # outside a Hub waits for its own queue only).
        self._activity = activity
        self._sink: Callable[[Event], bool] | None = None

    @property
    def topic(self) -> str:
        """The topic subscribed to."""
        return self._topic

    @property
    def recovered(self) -> bool:
        """True if a ``last_event_id`` was given and history covered everything after it."""
        return self._recovered

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event received from this subscription (None before the first)."""
        return self._last_event_id

    @property
    def queued(self) -> int:
        """Live events waiting in the queue now (``statistics().depth``, without the snapshot).

        Cheap enough for a writer to poll every scheduler round.
        """
        return len(self._queue)

    def statistics(self) -> QueueStatistics:
        """The subscriber's queue statistics (live events; replayed ones are not queued)."""
        return self._queue.statistics()

    async def wait_queued(self, count: int) -> None:
        """Wait until ``count`` live events are queued, or the topic paused; take none.

        For a writer that turns a fast topic into large sends. Returns once
        ``count`` events (at most the capacity) are queued, or once nothing
        was published on the topic for two scheduler rounds (the publisher
        paused: what is queued should go out now), at once while replayed
        events remain or when the subscription ended (the next
        :meth:`receive_batch` says how). Bound it with a cancel scope
        (``trio.move_on_at``): a topic that keeps publishing slowly may take
        long to fill ``count``.

        Cheap with many subscribers: all but one of the topic's waiting
        subscribers are parked (no scheduler round per event); the one
        left checks each round whether the topic still grows, and wakes
        the others when it stopped or when its own wait ends. Always a
        checkpoint; cancelling it takes nothing.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        if self._replay:
            await trio.lowlevel.checkpoint()
            return
        count = min(count, self._queue.capacity)
        if self._activity is None:
            await self._queue.wait_queued(count)
        else:
            await self._activity.gather(self._queue, count)

    def set_sink(self, sink: Callable[[Event], bool] | None) -> None:
        """Offer a paced topic's events to ``sink(event)`` in the publishing task.

        While the task receiving from this subscription is parked with
        nothing queued, each live event of a paced topic (nothing published
        for 10 ms before it, and for five times as long as the topic's last
        delivery to sinks took) is first offered to ``sink``, called
        synchronously by whoever delivers it (the
        publisher, or the broker's reader). True: the sink consumed it (it
        counts as received, and :attr:`last_event_id` moves); False: it is
        queued as usual and the receiver wakes. A writer whose socket takes
        the event at once then costs no task switch per event. Never offered
        while replayed events remain or while live events may still
        duplicate the replay. The sink must not raise, and must refuse what
        it cannot take now (for instance while its task waits with a batch
        in hand). ``None`` removes it.
        """
        self._sink = sink
        self._queue.set_sink(None if sink is None else self._offer_to_sink)

    def _offer_to_sink(self, event: Event) -> bool:
        sink = self._sink
        if sink is None or self._replay or self._seen_through is not None or not sink(event):
            return False
        self._last_event_id = event.id
        return True

    async def receive_batch(self, max_events: int | None = None) -> list[Event]:
        """Wait for at least one event, then return up to ``max_events`` at once.

        ``None`` (the default) returns everything available: the rest of the
        replay, or else everything queued (at most the queue's capacity), so
        an adapter can write a backlog in one send. Returns ``[]`` once the
        subscription ended normally (Hub closed or subscription exited).
        Raises :class:`SubscriberDisconnected` if it was disconnected. Always a
        checkpoint; if cancelled, no event was taken.
        """
        if max_events is not None and max_events < 1:
            raise ValueError("max_events must be >= 1")
        if self._replay:
            await trio.lowlevel.checkpoint()
            batch = self._take_replay(self._replay, max_events)
        else:
            while True:
                batch = await self._queue.get_batch(max_events)
                if self._seen_through is None or not batch:
                    break
                batch = self._skip_seen(batch, self._seen_through)
                if batch:
                    break
        if batch:
            self._last_event_id = batch[-1].id
        return batch

    def _take_replay(self, replay: deque[Event], max_events: int | None) -> list[Event]:
        if max_events is None or max_events >= len(replay):
            batch = list(replay)
            self._replay = None
        else:
            batch = [replay.popleft() for _ in range(max_events)]
        return batch

    def _skip_seen(self, batch: list[Event], seen_through: tuple[int, ...]) -> list[Event]:
        # Deliveries come in id order, so the duplicates are a prefix.
        for index, event in enumerate(batch):
            position = self._position(event.id) if event.id is not None else None
            if position is None or position > seen_through:
                self._seen_through = None
                return batch[index:]
        return []

    async def receive(self) -> Event:
        """Wait for and return the next event; :class:`trio.EndOfChannel` once ended."""
        batch = await self.receive_batch(1)
        if not batch:
            raise trio.EndOfChannel
        return batch[0]

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        batch = await self.receive_batch(1)
        if not batch:
            raise StopAsyncIteration
        return batch[0]
