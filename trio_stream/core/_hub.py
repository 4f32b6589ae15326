"""The Hub: topics, local fan-out, resume from history."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from ..protocol import Event, TrioStreamError
from ._broker import Broker
from ._errors import HubClosedError
from ._groups import collapse_group, reraise
from ._memory import MemoryBroker
from ._queue import DEFAULT_CAPACITY, BoundedQueue, Overflow
from ._subscription import Subscription, TopicActivity
from ._topics import validate_topic

__all__ = ["Hub", "HubStatistics", "open_hub"]

logger = logging.getLogger("trio_stream.core")


@dataclass(frozen=True, slots=True)
class HubStatistics:
    """A snapshot of a :class:`Hub`.

    ``topics`` with at least one local subscriber, ``subscribers`` attached
    now, events ``published`` through this Hub, and totals over the Hub's
    life: events ``dropped`` by ``DROP_*`` policies, subscribers
    ``disconnected`` for being too slow.
    """

    topics: int
    subscribers: int
    published: int
    dropped: int
    disconnected: int
    closed: bool


def _first_full(queues: list[BoundedQueue[Event]]) -> BoundedQueue[Event] | None:
    # Over every BLOCK subscriber, after a queue filled up (_Topic.maybe_full):
    # the queue's fields read directly (_limit is the capacity while open, -1
    # once closed).
    for queue in queues:
        limit = queue._limit
        if len(queue._items) >= limit > 0:
            return queue
    return None


class _Topic:
    __slots__ = ("activity", "blocking", "fanout", "maybe_full", "queues")

    def __init__(self) -> None:
        self.activity = TopicActivity()
        self.queues: dict[BoundedQueue[Event], None] = {}
        # Snapshot iterated by deliver(); rebuilt lazily after (de)attachments
        # so that a subscriber leaving mid-delivery cannot disturb the loop.
        self.fanout: tuple[BoundedQueue[Event], ...] | None = ()
        self.blocking: list[BoundedQueue[Event]] = []
        # Set by deliver() when a queue reached its capacity; until then no
        # BLOCK subscriber can be full and publish() skips looking for one
        # (a pass over every subscriber, before the event's first write).
        self.maybe_full = False


class Hub:
    """Topics with local fan-out, bounded history and resume, over a :class:`Broker`.

    ``Hub()`` uses an embedded :class:`MemoryBroker` and needs no background
    task: ``await hub.publish(...)`` and ``async with hub.subscribe(...)``
    work at once. A broker with background work (Redis) needs
    ``await nursery.start(hub.run)``, or use ``async with open_hub(broker)``.

    :meth:`publish` never waits on a subscriber, except on one that chose
    ``Overflow.BLOCK``. Every subscriber has its own bounded queue
    (:class:`BoundedQueue`) and overflow policy; an event is encoded once,
    by the publisher, and the same object (with its cached bytes) is queued
    for every subscriber.
    """

    def __init__(self, broker: Broker | None = None) -> None:
        self._broker: Broker = broker if broker is not None else MemoryBroker()
        self._topics: dict[str, _Topic] = {}
        self._closed = False
        self._published = 0
        self._retired_dropped = 0
        self._disconnected = 0
        self._broker.bind(self)

    @property
    def broker(self) -> Broker:
        """The broker that stores and distributes this Hub's events."""
        return self._broker

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    # -- publishing ----------------------------------------------------------

    async def publish(self, topic: str, event: Event) -> Event:
        """Publish ``event`` on ``topic``; return it carrying its assigned id.

        Never waits on a subscriber, except an ``Overflow.BLOCK`` one without
        room: then it waits for that subscriber to read (backpressure for a
        single-consumer stream). Subscribers under other policies are never
        awaited: a full ``DISCONNECT`` one is detached on the spot.

        Always a checkpoint. If cancelled (before the event reached the
        broker, e.g. while waiting for a ``BLOCK`` subscriber), nothing was
        published. Raises :class:`InvalidTopicError` for a bad topic name,
        :class:`HubClosedError` once the Hub is closed.
        """
        # A topic with subscribers was checked when they subscribed.
        state = self._topics.get(topic) if type(topic) is str else None
        if state is None:
            validate_topic(topic)
        if not isinstance(event, Event):
            raise TypeError("publish() takes an Event")
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        if state is not None and state.maybe_full:
            await self._wait_until_not_full(state)
        stamped = await self._broker.publish(topic, event)
        self._published += 1
        await trio.lowlevel.cancel_shielded_checkpoint()
        return stamped

    def deliver(self, topic: str, event: Event) -> None:
        """Fan ``event`` out to this process's subscribers of ``topic`` (called by the broker).

        Encodes the event once (its bytes are cached on it and shared by all
        subscribers), then puts it in each subscriber's queue without waiting.
        """
        event.encode()
        state = self._topics.get(topic)
        if state is None:
            return
        activity = state.activity
        activity.published += 1
        now = trio.current_time()
        paced = activity.paced(now)
        fanout = state.fanout
        if fanout is None:
            fanout = state.fanout = tuple(state.queues)
        ended = None
        reschedule = trio.lowlevel.reschedule
        for queue in fanout:
            # BoundedQueue._offer's fast path, inlined: this loop runs once per
            # event per subscriber, so a method call saved here counts.
            items = queue._items
            if len(items) < queue._limit:
                sink = queue._sink
                # Nothing queued and the consumer parked: its sink may take it at once.
                if (
                    paced
                    and sink is not None
                    and not items
                    and queue._waiter is not None
                    and sink(event)
                ):
                    queue._delivered += 1
                    continue
                items.append(event)
                size = len(items)
                if size > queue._peak:
                    queue._peak = size
                if size >= queue._limit:
                    state.maybe_full = True
                waiter = queue._waiter
                if waiter is not None and len(items) >= queue._wake_at:
                    queue._waiter = None
                    reschedule(waiter)
            else:
                state.maybe_full = True  # it was full already
                if queue._offer_full(event):
                    continue
                if ended is None:
                    ended = []
                ended.append(queue)
        if paced:
            activity.delivered(trio.current_time() - now)
        if ended is not None:
            for queue in ended:
                self._detach(topic, queue)

    async def wait_for_room(self, topic: str) -> None:
        """Wait until every ``Overflow.BLOCK`` subscriber of ``topic`` has room.

        For brokers that deliver from a background task (see
        :class:`LocalFanout`). Always a checkpoint; raises
        :class:`HubClosedError` if the Hub closes meanwhile.
        """
        state = self._topics.get(topic)
        if state is not None and state.maybe_full:
            await self._wait_until_not_full(state)
        await trio.lowlevel.checkpoint()

    async def _wait_until_not_full(  # noqa: ASYNC910  its callers checkpoint after it
        self, state: _Topic
    ) -> None:
        while (full := _first_full(state.blocking)) is not None:
            await full._wait_for_room()
            self._check_open()
        state.maybe_full = False

    def disconnect_subscribers(self, topic: str, reason: str) -> int:
        """End every local subscriber of ``topic`` now, as if each had overflowed.

        Each subscription's next receive raises :class:`SubscriberDisconnected`
        with ``reason`` in its message (queued events are released: the client
        resumes them from history with its last event id). Brokers call it when
        they cannot deliver ``topic`` any more (see :class:`LocalFanout`);
        counted in ``statistics().disconnected``. Synchronous (cannot be
        cancelled); returns the number of subscribers ended.
        """
        state = self._topics.get(topic)
        if state is None:
            return 0
        queues = list(state.queues)
        for queue in queues:
            queue.disconnect(reason)
            self._detach(topic, queue)
        logger.info("topic %s: disconnected %d subscriber(s): %s", topic, len(queues), reason)
        return len(queues)

    # -- subscribing ---------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self,
        topic: str,
        *,
        last_event_id: str | None = None,
        capacity: int = DEFAULT_CAPACITY,
        overflow: Overflow = Overflow.DISCONNECT,
    ) -> AsyncIterator[Subscription]:
        """Subscribe to ``topic``: ``async with hub.subscribe(topic) as sub: ...``.

        ``capacity`` (default 256, see :data:`DEFAULT_CAPACITY`) bounds the
        subscriber's queue; ``overflow`` (default ``DISCONNECT``, right for
        fan-out) says what happens when it is full (see :class:`Overflow`).

        With ``last_event_id`` (e.g. from ``Last-Event-ID``), the subscription
        first replays what the topic published after it, then live events,
        with no gap and no duplicate: the queue is attached before history is
        read, and live events already covered by the replay are skipped. If
        the id is unknown or older than the history, ``sub.recovered`` is
        False and it starts live. ``""`` counts as no id.

        Leaving the block detaches the subscriber synchronously (it cannot be
        cancelled); the Subscription then ends. Raises
        :class:`InvalidTopicError` or :class:`HubClosedError` on entry.
        """
        validate_topic(topic)
        queue: BoundedQueue[Event] = BoundedQueue(capacity, overflow)
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        self._attach(topic, queue)
        try:
            await self._broker.watch(topic)
            try:
                subscription = await self._resume(topic, queue, last_event_id or None)
                yield subscription
            finally:
                self._broker.unwatch(topic)
        finally:
            self._detach(topic, queue)

    async def _resume(
        self, topic: str, queue: BoundedQueue[Event], last_event_id: str | None
    ) -> Subscription:
        position = self._broker.position
        state = self._topics.get(topic)
        activity = state.activity if state is not None else None
        if last_event_id is None:
            await trio.lowlevel.checkpoint()
            return Subscription(topic, queue, position, recovered=False, activity=activity)
        replayed = await self._broker.replay(topic, last_event_id)
        if replayed is None:
            logger.info("topic %s: last event id not in history, starting live", topic)
            await trio.lowlevel.checkpoint()
            return Subscription(topic, queue, position, recovered=False, activity=activity)
        last = replayed[-1].id if replayed else last_event_id
        seen = position(last) if last is not None else None
        await trio.lowlevel.checkpoint()
        return Subscription(
            topic,
            queue,
            position,
            recovered=True,
            replay=replayed,
            seen_through=seen,
            activity=activity,
        )

    def _attach(self, topic: str, queue: BoundedQueue[Event]) -> None:
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = _Topic()
        state.queues[queue] = None
        state.fanout = None
        if queue.overflow is Overflow.BLOCK:
            state.blocking.append(queue)

    def _detach(self, topic: str, queue: BoundedQueue[Event]) -> None:
        # Idempotent: a queue leaves once (overflow, hub close or block exit).
        queue.close()
        state = self._topics.get(topic)
        if state is None or queue not in state.queues:
            return
        del state.queues[queue]
        state.fanout = None
        if queue.overflow is Overflow.BLOCK:
            state.blocking.remove(queue)
        if not state.queues:
            del self._topics[topic]
        stats = queue.statistics()
        self._retired_dropped += stats.dropped
        if stats.disconnected:
            self._disconnected += 1
            if queue._reason is None:  # overflow; disconnect_subscribers logs its own
                logger.info(
                    "topic %s: disconnected a subscriber %d events behind", topic, stats.capacity
                )

    # -- lifecycle -----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise HubClosedError("the hub is closed")

    def close(self) -> None:
        """Close the Hub: every subscription ends normally (after draining its queue).

        Later :meth:`publish` / :meth:`subscribe` raise :class:`HubClosedError`;
        publishers waiting for a ``BLOCK`` subscriber wake up and raise it.
        Synchronous and idempotent.
        """
        if self._closed:
            return
        self._closed = True
        for topic, state in list(self._topics.items()):
            for queue in list(state.queues):
                self._detach(topic, queue)

    async def aclose(self) -> None:
        """:meth:`close`, as an async method (a checkpoint; closes even if cancelled)."""
        self.close()
        await trio.lowlevel.checkpoint()

    async def run(  # noqa: ASYNC114, ASYNC128  started() is called by the broker's run()
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the broker's background tasks; closes the Hub when it ends.

        Startable: ``await nursery.start(hub.run)`` returns once the broker is
        ready. Not needed with the default :class:`MemoryBroker`.
        """
        try:
            await self._broker.run(task_status=task_status)
        finally:
            self.close()

    def statistics(self) -> HubStatistics:
        """Return a :class:`HubStatistics` snapshot (no checkpoint)."""
        subscribers = 0
        dropped = self._retired_dropped
        for state in self._topics.values():
            subscribers += len(state.queues)
            for queue in state.queues:
                dropped += queue.statistics().dropped
        return HubStatistics(
            topics=len(self._topics),
            subscribers=subscribers,
            published=self._published,
            dropped=dropped,
            disconnected=self._disconnected,
            closed=self._closed,
        )


@asynccontextmanager
async def open_hub(broker: Broker | None = None) -> AsyncIterator[Hub]:
    """A :class:`Hub` whose broker runs in a nursery of its own for the block's duration.

    On exit the Hub is closed (subscriptions end normally) and the broker's
    tasks are cancelled. Errors come out as themselves, not wrapped in an
    ExceptionGroup; several at once become one :class:`TrioStreamError`.
    """
    hub = Hub(broker)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            try:
                yield hub
            finally:
                hub.close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        single = collapse_group(group)
        if single is None:
            raise TrioStreamError("open_hub failed with several errors") from group
        reraise(single)
