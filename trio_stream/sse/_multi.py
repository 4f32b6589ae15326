"""Several Hub topics on one SSE connection, resumable as a whole (see ``_multi_ids``).

Browsers allow six HTTP/1.1 connections per origin: a page following many
topics needs them on one stream. Each event keeps its own ``event:`` type
and ``data:``; its ``id:`` carries the stream's position in every topic and
the index of the event's topic (the format is in ``_multi_ids``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from ..core import (
    BrokerError,
    Hub,
    HubClosedError,
    InvalidTopicError,
    Overflow,
    SubscriberDisconnected,
    Subscription,
    validate_topic,
)
from ..core._heads import topic_heads
from ..protocol import Event
from ._feeds import Feed, FeedFactory
from ._hub import broker_unavailable
from ._multi_ids import TopicPositions, TopicsEventId, max_topics_event_id_length
from ._request import RequestRejected

__all__ = ["DEFAULT_MAX_TOPICS", "TOPIC_RESET_EVENT", "check_topics", "hub_topics_feed_factory"]

logger = logging.getLogger("trio_stream.sse")

DEFAULT_MAX_TOPICS = 32
"""Topics one stream may follow: a page's worth; each costs a subscriber queue."""

TOPIC_RESET_EVENT = Event(
    '{"reason":"history does not reach back to your last event id"}', event="reset"
)
"""Sent, with the topic's index in its id, for each topic that could not be resumed."""


def check_topics(topics: Sequence[str], max_topics: int) -> tuple[str, ...]:
    """``topics`` as a tuple if a stream may follow them; else :class:`RequestRejected` (400)."""
    if not topics:
        raise RequestRejected(400, "no topic")
    if len(topics) > max_topics:
        raise RequestRejected(400, "too many topics")
    for topic in topics:
        try:
            validate_topic(topic)
        except InvalidTopicError:
            raise RequestRejected(400, "invalid topic") from None
    if len(set(topics)) != len(topics):
        raise RequestRejected(400, "duplicate topic")
    return tuple(topics)


def _splice_id(event: Event, new_id: str) -> bytes:
    """``event``'s wire form with its id replaced, reusing its cached encoding.

    The Hub encoded the event once for every subscriber; only the id line
    differs per stream, so the (possibly large) data is not encoded again.
    """
    encoded = event.encode()
    offset = len(f"event: {event.event}\n".encode()) if event.event is not None else 0
    old_line = f"id: {event.id}\n".encode()
    if event.id is not None and encoded.startswith(old_line, offset):
        line = f"id: {new_id}\n".encode()
        return encoded[:offset] + line + encoded[offset + len(old_line) :]
    return event.with_id(new_id).encode()  # pragma: no cover - an event the Hub did not stamp


class TopicsFeed:
    """Merges the subscriptions of one stream; gives the writer events with composite ids.

    One forwarder task per topic moves batches from its subscription into
    a channel of one batch per topic (the subscriptions' queues are the
    buffers; ``Overflow`` applies to each). When any subscription ends (the
    Hub closed, or a topic disconnected this slow reader) the whole stream
    ends: the client reconnects and resumes every topic from its last id.
    """

    def __init__(
        self,
        subscriptions: list[Subscription],
        positions: TopicPositions,
        resets: list[int],
        reset_event: Event | None,
        max_batch: int,
    ) -> None:
        self._subscriptions = subscriptions
        self._positions = positions
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[tuple[int, list[Event]]](
            len(subscriptions)
        )
        self._queued = 0
        self.failed = False
        self._first: list[bytes] = []
        if reset_event is not None:
            self._first = [_splice_id(reset_event, positions.encode(i)) for i in resets]

    async def run(self) -> None:
        """Run the forwarders until one subscription ends; then end the stream."""
        with self._send:
            async with trio.open_nursery() as nursery:
                for index, subscription in enumerate(self._subscriptions):
                    nursery.start_soon(self._forward, index, subscription, nursery.cancel_scope)

    async def _forward(
        self, index: int, subscription: Subscription, done: trio.CancelScope
    ) -> None:
        await trio.lowlevel.checkpoint()
        try:
            while batch := await subscription.receive_batch(self._max_batch):
                self._queued += len(batch)
                try:
                    await self._send.send((index, batch))
                except BaseException:
                    self._queued -= len(batch)
                    raise
        except SubscriberDisconnected:
            logger.info(
                "SSE subscriber to %r too slow: disconnected; it resumes on reconnect",
                subscription.topic,
            )
        except Exception:
            logger.exception(
                "multi-topic stream: topic %r failed; ending the stream", subscription.topic
            )
            self.failed = True
        done.cancel()

    async def next_batch(self, max_events: int) -> list[bytes]:
        """The next events as encoded bytes, each with its composite id; ``[]`` at the end."""
        if self._first:
            await trio.lowlevel.checkpoint()
            first, self._first = self._first, []
            return first
        try:
            item = await self._receive.receive()
        except trio.EndOfChannel:
            await trio.lowlevel.checkpoint()
            return []
        out = self._encoded(*item)
        # Without a checkpoint nothing arrives meanwhile: at most one batch per topic waits.
        for _ in range(len(self._subscriptions)):
            if len(out) >= max_events:
                break
            try:
                item = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            out += self._encoded(*item)
        return out

    def _encoded(self, index: int, batch: list[Event]) -> list[bytes]:
        self._queued -= len(batch)
        positions = self._positions
        out = []
        for event in batch:
            if event.id is not None:  # pragma: no branch - the Hub stamps every event
                positions.advance(index, event.id)
            out.append(_splice_id(event, positions.encode(index)))
        return out

    def backlog(self) -> tuple[int, int]:
        """Events waiting (subscriber queues and the merge channel), and the most there can be."""
        depth = sum(sub.statistics().depth for sub in self._subscriptions)
        capacity = sum(sub.statistics().capacity for sub in self._subscriptions)
        return self._queued + depth + len(self._first), capacity


def _encode_joined(batch: list[bytes]) -> bytes:
    return b"".join(batch)


def hub_topics_feed_factory(
    hub: Hub,
    topics: Sequence[str],
    last_event_id: str | None,
    capacity: int,
    overflow: Overflow | None,
    reset_event: Event | None,
    max_topics: int,
    max_batch: int,
) -> FeedFactory[bytes]:
    """The source :meth:`EventStream.from_hub_topics` streams: subscribes once per request."""

    @asynccontextmanager
    async def open_feed(request_last_event_id: str | None) -> AsyncIterator[Feed[bytes]]:
        names = check_topics(topics, max_topics)
        resume_text = last_event_id if last_event_id is not None else request_last_event_id
        wanted: Sequence[str | None] = [None] * len(names)
        if resume_text is not None:
            try:
                parsed = TopicsEventId.parse(resume_text, names)
            except ValueError:
                raise RequestRejected(400, "malformed Last-Event-ID") from None
            if parsed is None:
                logger.info("multi-topic stream: last event id is for other topics; resetting")
            else:
                wanted = parsed.positions
        try:
            heads = await topic_heads(getattr(hub, "broker", None), names)
        except BrokerError as error:  # a backplane's head() (Redis) is down
            raise broker_unavailable(",".join(names), error) from None
        resets: list[int] = []
        starts: list[str | None] = []
        async with AsyncExitStack() as stack:
            subscriptions = []
            for index, topic in enumerate(names):
                position = wanted[index]
                try:
                    subscription = await stack.enter_async_context(
                        hub.subscribe(
                            topic,
                            last_event_id=position if position is not None else heads[index],
                            capacity=capacity,
                            overflow=overflow if overflow is not None else Overflow.DISCONNECT,
                        )
                    )
                except HubClosedError:
                    raise RequestRejected(503, "server shutting down") from None
                except BrokerError as error:
                    raise broker_unavailable(topic, error) from None
                subscriptions.append(subscription)
                if position is not None and subscription.recovered:
                    starts.append(position)
                    continue
                starts.append(heads[index])
                if resume_text is not None:  # asked to resume, and this topic cannot be
                    resets.append(index)
            yield TopicsFeed(
                subscriptions, TopicPositions(names, starts), resets, reset_event, max_batch
            )

    return FeedFactory(
        open_feed,
        encode=_encode_joined,
        max_last_event_id_length=max_topics_event_id_length(max_topics),
    )
