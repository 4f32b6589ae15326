"""A Hub topic as the event source of a response: subscribe, resume, batch, end."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

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

    @asynccontextmanager
    async def open_feed(request_last_event_id: str | None) -> AsyncIterator[Feed[Event]]:
        resume_from = last_event_id if last_event_id is not None else request_last_event_id
        # No AsyncExitStack (its deque costs most of a KiB per open stream):
        # errors are mapped only while subscribing, never from the body.
        subscribed = False
        try:
            async with hub.subscribe(
                topic,
                last_event_id=resume_from,
                capacity=capacity,
                overflow=overflow if overflow is not None else Overflow.DISCONNECT,
            ) as subscription:
                subscribed = True
                if on_resume is not None and resume_from is not None:
                    on_resume(subscription)
                first = []
                if (
                    reset_event is not None
                    and resume_from is not None
                    and not subscription.recovered
                ):
                    first.append(reset_event)
                yield SubscriptionFeed(subscription, first)
        except InvalidTopicError:
            if subscribed:
                raise
            raise RequestRejected(400, "invalid topic") from None
        except HubClosedError:
            if subscribed:
                raise
            raise RequestRejected(503, "server shutting down") from None
        except BrokerError as error:
            if subscribed:
                raise
            raise broker_unavailable(topic, error) from None

    return FeedFactory(open_feed)
