"""A Hub topic as the event source of a response: subscribe, resume, batch, end."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from ..core import (
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

__all__ = ["SubscriptionFeed", "hub_feed_factory"]

logger = logging.getLogger("trio_stream.sse")


class SubscriptionFeed:
    """A hub subscription as a feed: its queue is the bounded buffer, drained in batches.

    A subscriber the hub disconnected for being too slow
    (:class:`SubscriberDisconnected`) ends the stream; the client reconnects
    with its last event id and resumes from history.
    """

    failed = False

    def __init__(self, subscription: Subscription, first: list[Event]) -> None:
        self._subscription = subscription
        self._first = first

    async def run(self) -> None:
        """Nothing to run: the hub fills the subscription's queue."""
        await trio.lowlevel.checkpoint()

    def backlog(self) -> tuple[int, int]:
        """Events in the subscriber's queue now, and its capacity."""
        stats = self._subscription.statistics()
        return stats.depth + len(self._first), stats.capacity

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
) -> FeedFactory[Event]:
    """The source :meth:`EventStream.from_hub` streams: subscribes once per request."""

    @asynccontextmanager
    async def open_feed(request_last_event_id: str | None) -> AsyncIterator[Feed[Event]]:
        resume_from = last_event_id if last_event_id is not None else request_last_event_id
        async with AsyncExitStack() as stack:
            try:
                subscription = await stack.enter_async_context(
                    hub.subscribe(
                        topic,
                        last_event_id=resume_from,
                        capacity=capacity,
                        overflow=overflow if overflow is not None else Overflow.DISCONNECT,
                    )
                )
            except InvalidTopicError:
                raise RequestRejected(400, "invalid topic") from None
            except HubClosedError:
                raise RequestRejected(503, "server shutting down") from None
            first = []
            if reset_event is not None and resume_from is not None and not subscription.recovered:
                first.append(reset_event)
            yield SubscriptionFeed(subscription, first)

    return FeedFactory(open_feed)
