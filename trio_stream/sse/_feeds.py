"""Where a response's items come from: a producer behind a bounded channel, or a Hub topic.

A *feed* hands the socket writer batches of items (events for an
:class:`EventStream`, encoded chunks for a :class:`StreamingResponse`):
everything queued, up to a limit, so that a backlog goes out in one send.
``[]`` means the stream ended.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, Protocol, TypeVar

import trio

from ..protocol import Event

__all__ = [
    "Feed",
    "FeedFactory",
    "Producer",
    "ProducerFeed",
    "Pump",
    "StreamSource",
    "encode_events",
    "producer_from",
    "send_each",
]

logger = logging.getLogger("trio_stream.sse")

T = TypeVar("T")

Producer = Callable[[trio.MemorySendChannel[Event]], Awaitable[None]]
"""An ``async def producer(send_channel)`` that sends events; returning ends the stream."""

StreamSource = AsyncIterable[Event] | AbstractAsyncContextManager[AsyncIterable[Event]] | Producer
"""What :class:`EventStream` streams.

An async iterable of events; an async context manager yielding one (such as
a generator decorated with ``trio.as_safe_channel``); or a :data:`Producer`.
"""

# How long an abandoned async generator gets to run its ``finally`` blocks.
_ACLOSE_GRACE = 5.0


class Feed(Protocol[T]):
    """The writer's view of a source (internal)."""

    failed: bool

    async def next_batch(self, max_events: int) -> list[T]:
        """Wait for one item, return it with whatever else is queued; ``[]`` at the end."""

    async def run(self) -> None:
        """The producer task (run in the response's nursery); may do nothing."""

    def backlog(self) -> tuple[int, int]:
        """Items queued for the writer now, and the most that can be."""


def encode_events(batch: list[Event]) -> bytes:
    """The wire form of ``batch`` in one buffer (each event encoded once, cached)."""
    if len(batch) == 1 and isinstance(batch[0], Event):
        return batch[0].encode()  # a paced topic's event, once per subscriber: no join
    for event in batch:
        if not isinstance(event, Event):
            raise TypeError(f"an event source produced {type(event).__name__}, not Event")
    return b"".join([event.encode() for event in batch])


class FeedFactory(Generic[T]):
    """A source that opens its feed per request, given the client's last event id.

    What :meth:`EventStream.from_hub` passes to :class:`EventStream` (a Hub
    subscription must be opened when, and as, the request asks). ``encode``
    turns a batch of the feed's items into the bytes of one write;
    ``max_last_event_id_length`` is the longest ``Last-Event-ID`` the request
    may carry (a multi-topic id is longer than a single topic's).
    """

    __slots__ = ("encode", "max_last_event_id_length", "open")

    def __init__(
        self,
        open_feed: Callable[[str | None], AbstractAsyncContextManager[Feed[T]]],
        *,
        encode: Callable[[list[T]], bytes] | None = None,
        max_last_event_id_length: int | None = None,
    ) -> None:
        self.open = open_feed
        self.encode: Callable[[list[Any]], bytes] = encode if encode is not None else encode_events
        self.max_last_event_id_length = max_last_event_id_length


Pump = Callable[[AsyncIterator[Any], Any], Awaitable[None]]
"""Moves the items of an iterator into a send channel (see :func:`producer_from`)."""


async def send_each(iterator: AsyncIterator[Any], send_channel: Any) -> None:
    """The default pump: ``await send_channel.send(item)`` for each item."""
    async for item in iterator:
        await send_channel.send(item)


def producer_from(source: Any, pump: Pump = send_each) -> Callable[[Any], Awaitable[None]]:
    """Adapt ``source`` to a producer ``async def producer(send_channel)``.

    An async iterable is moved into the channel by ``pump``; when the
    response ends early, an async generator is closed (``aclose``) within a
    bounded, shielded grace period, so its ``finally`` blocks run. An async
    context manager is entered in the producer task and exited. A callable
    is taken to be a producer already.
    """
    if isinstance(source, AbstractAsyncContextManager):
        manager: AbstractAsyncContextManager[AsyncIterable[Any]] = source

        async def enter_and_pump(send_channel: Any) -> None:
            async with manager as items:
                await _pump_closing(items, send_channel, pump)

        return enter_and_pump
    if not isinstance(source, AsyncIterable):
        if not callable(source):
            raise TypeError("a stream source is an async iterable or a producer")
        producer: Callable[[Any], Awaitable[None]] = source
        return producer
    iterable: AsyncIterable[Any] = source

    async def pump_iterable(send_channel: Any) -> None:
        await _pump_closing(iterable, send_channel, pump)

    return pump_iterable


async def _pump_closing(iterable: AsyncIterable[Any], send_channel: Any, pump: Pump) -> None:
    await trio.lowlevel.checkpoint()
    iterator: AsyncIterator[Any] = aiter(iterable)
    try:
        await pump(iterator, send_channel)
    finally:
        aclose: Callable[[], Awaitable[object]] | None = getattr(iterator, "aclose", None)
        if aclose is not None:
            with trio.move_on_after(_ACLOSE_GRACE) as scope:
                scope.shield = True
                await aclose()


class ProducerFeed(Generic[T]):
    """A producer task writing into a bounded memory channel read by the writer.

    ``capacity`` bounds the items in flight between producer and socket:
    when the client reads slowly the producer waits in ``send`` (the
    ``Overflow.BLOCK`` policy: backpressure reaches the producer). A producer
    that raises is logged with its traceback; ``failed`` is then set and the
    items it sent before still go out.
    """

    def __init__(
        self, producer: Callable[[trio.MemorySendChannel[T]], Awaitable[None]], capacity: int
    ) -> None:
        self._producer = producer
        self._send, self._receive = trio.open_memory_channel[T](capacity)
        self.failed = False

    async def run(self) -> None:
        """Run the producer; closing the channel afterwards ends the stream after a drain."""
        await trio.lowlevel.checkpoint()
        with self._send:
            try:
                await self._producer(self._send)
            except Exception:
                logger.exception("SSE event producer failed; ending the stream")
                self.failed = True

    async def next_batch(self, max_events: int) -> list[T]:
        """Wait for an item, then take up to ``max_events`` queued ones without waiting."""
        try:
            batch = [await self._receive.receive()]
        except trio.EndOfChannel:
            await trio.lowlevel.checkpoint()
            return []
        while len(batch) < max_events:
            try:
                batch.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch

    def backlog(self) -> tuple[int, int]:
        """Items in the channel now, and its capacity."""
        stats = self._receive.statistics()
        return stats.current_buffer_used, int(stats.max_buffer_size)

    def close(self) -> None:
        """Close both ends (idempotent)."""
        self._send.close()
        self._receive.close()
