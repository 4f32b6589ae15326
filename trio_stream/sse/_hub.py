"""A Hub topic as the event source of a response: subscribe, resume, batch, end."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType

import trio

from ..core import (
    BrokerError,
    Hub,
    HubClosedError,
    InvalidTopicError,
    Overflow,
    SubscriberDisconnected,
    Subscription,
)
from ..protocol import Event
from ._feeds import Feed, FeedFactory
from ._request import RequestRejected

__all__ = ["BROKER_RETRY_AFTER", "SubscriptionFeed", "broker_unavailable", "hub_feed_factory"]

logger = logging.getLogger("trio_stream.sse")

BROKER_RETRY_AFTER = 2
"""``Retry-After`` seconds of the 503 answered while the broker is unavailable:
long enough not to hammer a recovering backend, short enough to resume quickly."""


def broker_unavailable(topic: str, error: BrokerError) -> RequestRejected:
    """Log a subscribe that failed in the broker; the 503 (``Retry-After``) to answer.

    The client sees a fixed phrase, never the error's text; the log line has
    the error's message but no traceback (an outage is expected, not a bug).
    """
    logger.warning("subscribing to %r failed: %s", topic, error)
    return RequestRejected(503, "temporarily unavailable", retry_after=BROKER_RETRY_AFTER)


class SubscriptionFeed:
    """A hub subscription as a feed: its queue is the bounded buffer, drained in batches.

    A subscriber the hub disconnected for being too slow
    (:class:`SubscriberDisconnected`) ends the stream; the client reconnects
    with its last event id and resumes from history.
    """

    __slots__ = ("_capacity", "_first", "_subscription", "failed")

    has_task = False
    """No producer task: the hub fills the queue, so the response starts none."""

    def __init__(self, subscription: Subscription, first: list[Event]) -> None:
        self.failed = False
        self._subscription = subscription
        self._first = first
        self._capacity = subscription.statistics().capacity

    async def run(self) -> None:
        """Nothing to run: the hub fills the subscription's queue."""
        await trio.lowlevel.checkpoint()

    def backlog(self) -> tuple[int, int]:
        """Events in the subscriber's queue now, and its capacity."""
        # Polled every scheduler round while coalescing: no statistics snapshot.
        return self._subscription.queued + len(self._first), self._capacity

    async def wait_backlog(self, count: int) -> None:
        """Wait until ``count`` events are queued, or the subscription ended; take none.

        The writer's coalescing wait (see ``pump``), bounded by its cancel
        scope: parked in the subscriber's queue, it costs nothing per
        published event until the batch is large enough.
        """
        if self._first:
            await trio.lowlevel.checkpoint()
            return
        await self._subscription.wait_queued(count)

    def set_sink(self, sink: Callable[[Event], bool] | None) -> None:
        """Offer live events to ``sink`` while the writer waits (:meth:`Subscription.set_sink`)."""
        self._subscription.set_sink(sink)

    async def next_batch(self, max_events: int) -> list[Event]:
        """Up to ``max_events`` queued events, ``[]`` when the subscription ended."""
        if self._first:
            await trio.lowlevel.checkpoint()
            batch, self._first = self._first, []
            return batch
        try:
            return await self._subscription.receive_batch(max_events=max_events)
        except SubscriberDisconnected:
            logger.info(
                "SSE subscriber to %r too slow: disconnected; it resumes on reconnect",
                self._subscription.topic,
            )
            await trio.lowlevel.checkpoint()
            return []


def hub_feed_factory(
    hub: Hub,
    topic: str,
    last_event_id: str | None,
    capacity: int,
    overflow: Overflow | None,
    reset_event: Event | None,
    on_resume: Callable[[Subscription], object] | None = None,
) -> FeedFactory[Event]:
    """The source :meth:`EventStream.from_hub` streams: subscribes once per request.

    A broker failure at subscribe time (:class:`BrokerUnavailableError`, or
    any :class:`BrokerError`) is answered 503 with ``Retry-After``. When the
    request asked to resume, ``on_resume(subscription)`` is called once
    subscribed (its ``recovered`` says whether history covered the gap).
    """
    opener = _HubFeedOpener(
        hub,
        topic,
        last_event_id,
        capacity,
        overflow if overflow is not None else Overflow.DISCONNECT,
        reset_event,
        on_resume,
    )
    return FeedFactory(opener)


# Classes, not a closure over an @asynccontextmanager generator: one of each
# lives as long as its stream, and their slots take a fraction of the memory
# of a closure's cells, a generator frame and its context manager.


class _HubFeedOpener:
    __slots__ = (
        "capacity",
        "hub",
        "last_event_id",
        "on_resume",
        "overflow",
        "reset_event",
        "topic",
    )

    def __init__(
        self,
        hub: Hub,
        topic: str,
        last_event_id: str | None,
        capacity: int,
        overflow: Overflow,
        reset_event: Event | None,
        on_resume: Callable[[Subscription], object] | None,
    ) -> None:
        self.hub = hub
        self.topic = topic
        self.last_event_id = last_event_id
        self.capacity = capacity
        self.overflow = overflow
        self.reset_event = reset_event
        self.on_resume = on_resume

    def __call__(self, request_last_event_id: str | None) -> _OpenHubFeed:
        resume_from = (
            self.last_event_id if self.last_event_id is not None else request_last_event_id
        )
        return _OpenHubFeed(self, resume_from)


class _OpenHubFeed:
    """``async with``: the request's subscription as a feed; errors while subscribing mapped."""

    __slots__ = ("_opener", "_resume_from", "_subscribing")

    def __init__(self, opener: _HubFeedOpener, resume_from: str | None) -> None:
        self._opener = opener
        self._resume_from = resume_from
        self._subscribing: AbstractAsyncContextManager[Subscription] | None = None

    async def __aenter__(self) -> Feed[Event]:
        opener, resume_from = self._opener, self._resume_from
        subscribing = opener.hub.subscribe(
            opener.topic,
            last_event_id=resume_from,
            capacity=opener.capacity,
            overflow=opener.overflow,
        )
        try:
            subscription = await subscribing.__aenter__()
        except InvalidTopicError:
            raise RequestRejected(400, "invalid topic") from None
        except HubClosedError:
            raise RequestRejected(503, "server shutting down") from None
        except BrokerError as error:
            raise broker_unavailable(opener.topic, error) from None
        try:
            if opener.on_resume is not None and resume_from is not None:
                opener.on_resume(subscription)
        except BaseException as exc:
            # Detaching is synchronous (Hub.subscribe's exit never waits).
            await subscribing.__aexit__(type(exc), exc, exc.__traceback__)  # noqa: ASYNC102
            raise
        self._subscribing = subscribing
        first = []
        reset = opener.reset_event
        if reset is not None and resume_from is not None and not subscription.recovered:
            first.append(reset)
        return SubscriptionFeed(subscription, first)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        subscribing, self._subscribing = self._subscribing, None
        assert subscribing is not None, "exited without being entered"
        # Detaching is synchronous (Hub.subscribe's exit never waits).
        return await subscribing.__aexit__(exc_type, exc, traceback)  # noqa: ASYNC102
