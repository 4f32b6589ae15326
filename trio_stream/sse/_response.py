"""`EventStream` and `sse_response`: one Server-Sent Events response as an ASGI app."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from ..protocol import Event, encode_preamble
from ._asgi import Scope
from ._compress import SyncFlushGzip
from ._feeds import Feed, FeedFactory, ProducerFeed, StreamSource, producer_from
from ._lifetime import DEFAULT_LIFETIME_JITTER
from ._multi import DEFAULT_MAX_TOPICS, TOPIC_RESET_EVENT
from ._request import MAX_LAST_EVENT_ID_LENGTH, last_event_id_from
from ._streaming import ResponseBase
from ._writer import Ending, Writer

if TYPE_CHECKING:
    from ..core import Hub, Overflow, Subscription

__all__ = ["DEFAULT_ERROR_EVENT", "EventStream", "StreamStatistics", "sse_response"]

logger = logging.getLogger("trio_stream.sse")

DEFAULT_ERROR_EVENT = Event("internal error", event="error")
"""Sent when the producer fails: a fixed text, never the exception's."""

_BASE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(frozen=True, slots=True)
class StreamStatistics:
    """A snapshot of one :class:`EventStream` response.

    ``events`` and ``keepalives`` written so far, in ``writes`` body sends
    (a backlog goes out in one); ``queued`` events wait between the source
    and the socket, out of ``capacity``; ``streaming`` while the body is
    being written.
    """

    events: int
    writes: int
    keepalives: int
    queued: int
    capacity: int
    streaming: bool


class EventStream(ResponseBase):
    """One Server-Sent Events response, as an ASGI application.

    ``source`` is an async iterable of :class:`Event` (an async generator,
    say) or a producer ``async def producer(send_channel)`` that sends events
    into a memory channel; the stream ends when it returns. For a
    :class:`Hub` topic use :meth:`from_hub` (or :func:`sse_response`).

    Serving a request runs one nursery with: the producer (none for a hub
    topic: the hub fills the subscriber's queue); the writer, which sends
    the preamble (a comment that flushes the headers, and ``retry:`` when
    given), then every batch of queued events in ONE body message, and a
    keepalive comment after ``keepalive_interval`` seconds without a write
    (None disables it; its wait for events has that deadline, no task of
    its own); and a watcher of ``receive()`` for ``http.disconnect``. Under
    :func:`serve`, the server's graceful shutdown ends the stream (one
    watcher per server, not per response).

    Cancellation: a client disconnect cancels the producer at once (its
    ``finally`` blocks run; an async generator is ``aclose``d; a hub
    subscription is closed). A send not completed within ``send_timeout``
    seconds (a client that stopped reading) ends the stream. A server
    shutdown ends the stream cleanly. A producer that raises is logged with
    its traceback; the client gets ``error_event`` (no exception text) and
    the end of the stream; the server keeps serving others.

    Backpressure: ``capacity`` (default 64) bounds the channel between the
    producer and the socket; a slow reader makes the producer wait
    (``Overflow.BLOCK``). Up to ``max_batch`` queued events go out per send;
    when the producer is still adding events (the queue grows within two
    scheduler rounds), the writer waits for more before it sends: up to
    half the queue's capacity, until the producer pauses (two rounds
    without a new event), or for at most 50 ms (longer on a server so busy
    that a send takes longer, at most 0.5 s), so that a fast producer's
    events go out in large writes. A hub topic's writers wait parked (one
    per topic watches for the pause); an event from a producer that then
    pauses is not held back by the clock.

    ``compress=True`` gzips the stream for clients that accept it, flushing
    every write (:class:`SyncFlushGzip`), so no event is held back. Extra
    ``headers`` are added to the fixed ``text/event-stream``, ``no-cache``
    and ``x-accel-buffering: no`` ones. HEAD gets the headers only. A
    malformed ``Last-Event-ID`` gets 400 (see :func:`last_event_id_from`).
    The stream owns ``receive()`` once called: for a POST, read the request
    body first. Meant for one response: build one per request.

    Maximum lifetime: with ``max_lifetime`` (seconds; default None: no
    limit), each stream draws its own lifetime, uniform in
    ``[max_lifetime * (1 - lifetime_jitter), max_lifetime]`` (jitter default
    0.2), from ``lifetime_random`` (a ``random.Random``; seed one for
    reproducible tests). When it runs out the stream ends cleanly between
    two writes, never mid-event: events still queued are not sent, and
    the client reconnects with ``Last-Event-ID`` and gets them (from a Hub
    topic's history: no gap, no duplicate). Use it to move long-lived
    clients between server processes (deploys, rebalancing) without a
    thundering herd: the reconnects are spread over ``lifetime_jitter`` of
    the lifetime. A ``retry`` hint keeps the reconnect quick. Only
    resumable sources (a Hub topic, or a producer honouring
    :attr:`last_event_id`) should use it. ``max_lifetime`` not finite and
    > 0, or a jitter outside ``[0, 1)``, raise ``ValueError``.
    """

    def __init__(
        self,
        source: StreamSource | FeedFactory[Any] | None = None,
        *,
        retry: int | None = None,
        keepalive_interval: float | None = 15.0,
        send_timeout: float = 30.0,
        capacity: int = 64,
        max_batch: int = 256,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        compress: bool = False,
        error_event: Event = DEFAULT_ERROR_EVENT,
        shutdown_event: trio.Event | None = None,
        max_lifetime: float | None = None,
        lifetime_jitter: float = DEFAULT_LIFETIME_JITTER,
        lifetime_random: random.Random | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity and max_batch must be >= 1")
        super().__init__(
            keepalive_interval=keepalive_interval,
            send_timeout=send_timeout,
            max_batch=max_batch,
            headers=headers,
            compress=compress,
            shutdown_event=shutdown_event,
            max_lifetime=max_lifetime,
            lifetime_jitter=lifetime_jitter,
            lifetime_random=lifetime_random,
        )
        self._preamble = encode_preamble(retry)
        self._error_event = error_event
        self.last_event_id: str | None = None
        """The client's last event id, known once the request arrived."""
        self._max_id_length = MAX_LAST_EVENT_ID_LENGTH
        self._open_source: Callable[[str | None], AbstractAsyncContextManager[Feed[Any]]]
        if isinstance(source, FeedFactory):
            self._open_source = source.open
            self._encode = source.encode
            if source.max_last_event_id_length is not None:
                self._max_id_length = source.max_last_event_id_length
        elif source is not None:
            producer = producer_from(source)

            @asynccontextmanager
            async def open_producer_feed(_: str | None) -> AsyncIterator[Feed[Event]]:
                feed = ProducerFeed[Event](producer, capacity)
                try:
                    yield feed
                finally:
                    feed.close()

            self._open_source = open_producer_feed
        else:
            raise TypeError("EventStream needs a source (or use EventStream.from_hub)")

    @classmethod
    def from_hub(
        cls,
        hub: Hub,
        topic: str,
        *,
        last_event_id: str | None = None,
        capacity: int = 256,
        overflow: Overflow | None = None,
        reset_event: Event | None = None,
        on_resume: Callable[[Subscription], object] | None = None,
        **options: Any,
    ) -> EventStream:
        """Stream a :class:`Hub` topic: subscribe when the request arrives, resume, fan out.

        The subscription resumes after ``last_event_id`` or, when None, after
        the request's ``Last-Event-ID`` header / ``last_event_id`` query
        parameter. ``capacity`` and ``overflow`` (default
        ``Overflow.DISCONNECT``) configure the subscriber's queue: a client
        too slow for the topic is disconnected and resumes from history when
        it reconnects. If the client asked to resume but the id is not in
        history, ``reset_event`` (when given) is sent first so the page can
        reload its state; ``on_resume(subscription)``, when given, is called
        for every request that asked to resume (``subscription.recovered``
        says whether history covered the gap). Queued events go out in one
        send (``Subscription.receive_batch``). An invalid topic name gets
        400; a broker that is unavailable (Redis down) 503 with
        ``Retry-After``. ``options`` are :class:`EventStream`'s.
        """
        from ._hub import hub_feed_factory

        source = hub_feed_factory(
            hub, topic, last_event_id, capacity, overflow, reset_event, on_resume
        )
        return cls(source, **options)

    @classmethod
    def from_hub_topics(
        cls,
        hub: Hub,
        topics: Sequence[str],
        *,
        last_event_id: str | None = None,
        capacity: int = 256,
        overflow: Overflow | None = None,
        reset_event: Event | None = TOPIC_RESET_EVENT,
        max_topics: int = DEFAULT_MAX_TOPICS,
        **options: Any,
    ) -> EventStream:
        """Stream several :class:`Hub` topics on one connection, resumable as a whole.

        Each event keeps its ``event:`` type and ``data:``; its ``id:`` is a
        multi-topic id (:class:`TopicsEventId`): the stream's position in
        every topic, and the index in ``topics`` of the event's topic. A
        reconnect with that id as ``Last-Event-ID`` (or the
        ``last_event_id`` argument / query parameter) resumes every topic
        with no gap and no duplicate, as far as history reaches. A topic
        that cannot be resumed (history moved on, or the id was issued for
        another topic list) starts afresh, announced by ``reset_event``
        carrying that topic's index in its id (None: no announcement). An
        id that is not a multi-topic id gets 400.

        Per topic, a subscription of ``capacity`` events under ``overflow``
        (default ``Overflow.DISCONNECT``): when one topic is too fast for
        the reader, the stream ends and the client resumes everything. More
        than ``max_topics`` topics (default 32), none, duplicates or invalid
        names get 400. Ids stay within
        :func:`max_topics_event_id_length` of ``max_topics`` characters.
        ``options`` are :class:`EventStream`'s.
        """
        from ._multi import hub_topics_feed_factory

        if isinstance(topics, str):
            raise TypeError("topics is a sequence of topic names, not one string")
        source = hub_topics_feed_factory(
            hub,
            topics,
            last_event_id,
            capacity,
            overflow,
            reset_event,
            max_topics,
            options.get("max_batch", 256),
        )
        return cls(source, **options)

    def _open_feed(self, scope: Scope) -> AbstractAsyncContextManager[Feed[Any]]:
        self.last_event_id = last_event_id_from(scope, max_length=self._max_id_length)
        return self._open_source(self.last_event_id)

    def _base_headers(self, gzip: SyncFlushGzip | None) -> list[tuple[bytes, bytes]]:
        return list(_BASE_HEADERS)

    async def _finish(self, feed: Feed[Any], writer: Writer, ending: Ending) -> None:
        if ending.shutdown:
            logger.debug("SSE stream ended: the server is shutting down")
        # Producer done, slow subscriber detached, or server shutting down:
        # end the body properly so the client sees a clean end and reconnects.
        tail = self._error_event.encode() if feed.failed else b""
        await writer.write(tail, more_body=False, events=1 if feed.failed else 0)

    def statistics(self) -> StreamStatistics:
        """A :class:`StreamStatistics` snapshot of the response (cheap; no checkpoint)."""
        writer, feed = self._writer, self._feed
        queued, capacity = feed.backlog() if feed is not None else (0, 0)
        return StreamStatistics(
            events=writer.events if writer is not None else 0,
            writes=writer.writes if writer is not None else 0,
            keepalives=writer.keepalives if writer is not None else 0,
            queued=queued,
            capacity=capacity,
            streaming=feed is not None,
        )


def sse_response(
    source: StreamSource | None = None,
    *,
    hub: Hub | None = None,
    topic: str | None = None,
    **options: Any,
) -> EventStream:
    """Build an :class:`EventStream`: from ``source``, or from ``hub`` and ``topic``.

    ``sse_response(events())`` streams an async iterable or producer;
    ``sse_response(hub=hub, topic="ticker")`` streams a Hub topic, resuming
    from the request's ``Last-Event-ID`` (see :meth:`EventStream.from_hub`).
    ``options`` are :class:`EventStream`'s (and ``from_hub``'s), such as
    ``max_lifetime=300`` to end each stream cleanly after 4 to 5 minutes.
    """
    if hub is not None:
        if source is not None or topic is None:
            raise TypeError("give either a source, or a hub and a topic")
        return EventStream.from_hub(hub, topic, **options)
    return EventStream(source, **options)
