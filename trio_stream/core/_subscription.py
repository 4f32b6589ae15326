"""A Hub subscription: replayed events first, then live ones, each exactly once."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import trio

from ..protocol import Event
from ._queue import BoundedQueue, QueueStatistics

__all__ = ["Subscription"]


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
